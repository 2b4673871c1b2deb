"""The local transport: the agent in a subprocess, started through the SSH bootstrap."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from types import SimpleNamespace

import pytest

from patchd.agent.package import build_package
from patchd.errors import InventoryError, TransportError
from patchd.transport import (
    LocalTransport,
    RemoteOpError,
    SSHTransport,
    transport_for,
)
from patchd.transport.pool import run_per_host


def test_ping_runs_the_shipped_zip() -> None:
    with LocalTransport("web01").open() as session:
        info = session.info
        assert info["package_sha256"] == build_package().sha256
        assert info["pid"] != os.getpid()
        assert info["uid"] == os.getuid()
        # NOTE: the agent imports patchd from the zip, never from this checkout.
        again = session.run("ping").done
        assert again["pid"] == info["pid"]


def test_items_stream_and_payloads_survive_the_round_trip() -> None:
    payload = {"name": "caf\udce9.php", "nested": [1, "ü", None]}
    with LocalTransport("web01").open() as session:
        result = session.run("echo", {"count": 3, "payload": payload})
    assert [i["seq"] for i in result.items] == [0, 1, 2]
    assert all(i["payload"] == payload for i in result.items)
    assert result.done == {"count": 3}


def test_remote_error_keeps_the_session_usable() -> None:
    with LocalTransport("web01").open() as session:
        with pytest.raises(RemoteOpError) as caught:
            list(session.call("echo", {"count": 2, "fail": "disk on fire"}))
        err = caught.value
        assert err.remote_type == "RuntimeError"
        assert err.remote_message == "disk on fire"
        assert "RuntimeError: disk on fire" in (err.remote_traceback or "")
        assert err.host == "web01" and err.op == "echo"
        with pytest.raises(RemoteOpError, match="unknown op"):
            session.run("no-such-op")
        assert session.run("echo", {"count": 1}).done == {"count": 1}


def test_an_abandoned_call_is_drained_before_the_next() -> None:
    with LocalTransport("web01").open() as session:
        calling = session.call("echo", {"count": 5})
        assert next(calling)["seq"] == 0
        calling.close()
        assert session.run("echo", {"count": 2, "payload": "b"}).items == [
            {"seq": 0, "payload": "b"},
            {"seq": 1, "payload": "b"},
        ]


def test_agent_killed_mid_stream_is_a_transport_error() -> None:
    with LocalTransport("web01").open() as session:
        calling = session.call("echo", {"count": 100, "interval": 0.05})
        next(calling)
        os.kill(session.info["pid"], signal.SIGKILL)
        with pytest.raises(TransportError, match="status -9") as caught:
            list(calling)
        assert caught.value.host == "web01"
        with pytest.raises(TransportError, match="unusable"):
            session.run("ping")


def test_agent_zip_leaves_no_file_even_when_killed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    with LocalTransport("web01").open() as session:
        # NOTE: unlinked at once, imported through the still-open descriptor.
        assert session.info["package_path"].startswith("/proc/self/fd/")
        assert list(tmp_path.iterdir()) == []
        os.kill(session.info["pid"], signal.SIGKILL)
    assert list(tmp_path.iterdir()) == []


def test_missing_python_is_a_transport_error() -> None:
    with pytest.raises(TransportError, match="cannot start /nonexistent/python3"):
        LocalTransport("web01", python="/nonexistent/python3").open()


def test_wrong_python_fails_the_handshake_cleanly(tmp_path: Path) -> None:
    fake = tmp_path / "python3"
    fake.write_text("#!/bin/sh\necho 'not python' >&2\nexit 7\n")
    fake.chmod(0o755)
    with pytest.raises(TransportError, match="status 7: not python"):
        LocalTransport("web01", python=str(fake)).open()


def test_transport_for_maps_inventory_hosts() -> None:
    local = transport_for("web01", SimpleNamespace(transport="local"))
    assert isinstance(local, LocalTransport) and local.host == "web01"
    ssh = transport_for(
        "web02",
        SimpleNamespace(
            transport="ssh",
            hostname="web02.example.net",
            port=2222,
            user="deploy",
            key_file="~/.ssh/k",
            known_hosts="/etc/kh",
            python="/usr/bin/python3.11",
        ),
    )
    assert isinstance(ssh, SSHTransport)
    assert (ssh.hostname, ssh.port, ssh.user) == ("web02.example.net", 2222, "deploy")
    assert ssh.key_file == os.path.expanduser("~/.ssh/k")
    assert ssh.command().startswith("/usr/bin/python3.11 -I -c 'exec(")
    with pytest.raises(InventoryError, match="host web03"):
        transport_for("web03", SimpleNamespace(transport="telnet"))


def test_run_per_host_collects_results_and_bugs_do_not_stop_others() -> None:
    hosts = {"a": LocalTransport("a"), "b": LocalTransport("b", python="/nonexistent/py")}
    results = run_per_host(hosts, lambda s: s.info["pid"], parallel=2)
    assert isinstance(results["a"], int)
    assert isinstance(results["b"], TransportError) and results["b"].host == "b"

    seen: list[str] = []

    def buggy(session):  # type: ignore[no-untyped-def]
        seen.append(session.host)
        if session.host == "a":
            raise KeyError("bug")
        return 1

    with pytest.raises(KeyError) as caught:
        run_per_host({"a": LocalTransport("a"), "c": LocalTransport("c")}, buggy)
    assert sorted(seen) == ["a", "c"]
    assert "host a" in "".join(caught.value.__notes__)
