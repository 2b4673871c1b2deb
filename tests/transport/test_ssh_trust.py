"""SSH trust: no agent forwarding is ever requested and no local ssh-agent is consulted."""

from __future__ import annotations

import paramiko
import pytest

from patchd.transport import transport_for
from tests.support.sshd import SSHHost


def test_no_agent_forwarding_and_no_local_agent(
    sshd_hosts: list[SSHHost], monkeypatch: pytest.MonkeyPatch
) -> None:
    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("patchd touched SSH agent machinery")

    # Any use of a local agent or a forwarding request fails the test loudly.
    monkeypatch.setattr(paramiko.Channel, "request_forward_agent", forbidden)
    monkeypatch.setattr(paramiko.agent.AgentRequestHandler, "__init__", forbidden)
    monkeypatch.setattr(paramiko.Agent, "__init__", forbidden)
    monkeypatch.setenv("SSH_AUTH_SOCK", "/nonexistent/agent.sock")
    host = sshd_hosts[0]
    with transport_for(host.name, host).open() as session:
        info = session.run("ping", {}).done
    assert info["package_sha256"]  # the agent really ran over that connection
