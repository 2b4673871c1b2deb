"""The SSH transport against real OpenSSH servers (tests/support/sshd.py)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from patchd.agent.package import build_package
from patchd.errors import TransportError
from patchd.transport import RemoteOpError, transport_for
from patchd.transport.local import LocalTransport
from patchd.transport.pool import run_per_host
from patchd.transport.ssh import SSHTransport
from tests.support.sshd import SSHDFactory, SSHHost, _free_port, kill_connections, make_key


def test_ping_over_three_real_sshd_hosts(sshd_hosts: list[SSHHost]) -> None:
    transports = {h.name: transport_for(h.name, h) for h in sshd_hosts}
    results = run_per_host(transports, lambda session: session.info, parallel=3)
    assert set(results) == {h.name for h in sshd_hosts}
    for info in results.values():
        assert not isinstance(info, TransportError), info
        assert info["package_sha256"] == build_package().sha256
        assert info["package_path"].startswith("/proc/self/fd/")
        assert {"python_version", "uid", "euid", "hostname", "pid"} <= set(info)


def test_unknown_host_key_is_refused(sshd_hosts: list[SSHHost], tmp_path: Path) -> None:
    target, other = sshd_hosts[0], sshd_hosts[1]
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(other.host_key_line + "\n")
    host = target.but(known_hosts=str(known_hosts))
    with pytest.raises(TransportError) as caught:
        transport_for(host.name, host).open()
    message = str(caught.value)
    assert f"host key for [127.0.0.1]:{target.port} not in known_hosts {known_hosts}" in message
    assert message.startswith(f"host {host.name}: ")
    # NOTE: never learned: the file is unchanged and a retry is refused again.
    assert known_hosts.read_text() == other.host_key_line + "\n"
    with pytest.raises(TransportError, match="not in known_hosts"):
        transport_for(host.name, host).open()


def test_changed_host_key_is_refused(sshd_hosts: list[SSHHost], tmp_path: Path) -> None:
    target, other = sshd_hosts[0], sshd_hosts[1]
    wrong_key = other.host_key_line.split(" ", 1)[1]
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(f"[127.0.0.1]:{target.port} {wrong_key}\n")
    host = target.but(known_hosts=str(known_hosts))
    with pytest.raises(TransportError, match=r"host key for \[127.0.0.1\]:\d+ changed"):
        transport_for(host.name, host).open()


def test_missing_known_hosts_file_is_refused(sshd_hosts: list[SSHHost], tmp_path: Path) -> None:
    host = sshd_hosts[0].but(known_hosts=str(tmp_path / "absent"))
    with pytest.raises(TransportError, match=r"known_hosts file .*absent not found"):
        transport_for(host.name, host).open()


def test_wrong_client_key_is_refused(sshd_hosts: list[SSHHost], tmp_path: Path) -> None:
    host = sshd_hosts[0].but(key_file=str(make_key(tmp_path / "stranger")))
    with pytest.raises(TransportError, match=r"authentication as .* failed"):
        transport_for(host.name, host).open()


def test_closed_port_is_a_transport_error(sshd_hosts: list[SSHHost]) -> None:
    host = sshd_hosts[0].but(port=_free_port())
    with pytest.raises(TransportError, match=r"cannot connect to 127.0.0.1:.*[Rr]efused") as caught:
        transport_for(host.name, host).open()
    assert caught.value.host == host.name


def test_unresolvable_name_is_a_transport_error(sshd_hosts: list[SSHHost]) -> None:
    host = sshd_hosts[0].but(hostname="no-such-host.invalid")
    with pytest.raises(TransportError, match=r"cannot resolve no-such-host.invalid"):
        transport_for(host.name, host).open()


def test_missing_remote_python_is_a_transport_error(sshd_hosts: list[SSHHost]) -> None:
    host = sshd_hosts[0].but(python="/nonexistent/python3")
    with pytest.raises(TransportError, match=r"status 127: .*nonexistent/python3"):
        transport_for(host.name, host).open()


def test_one_dead_host_does_not_stop_the_others(sshd_hosts: list[SSHHost]) -> None:
    dead = sshd_hosts[0].but(name="dead", port=_free_port())
    hosts = [*sshd_hosts[:2], dead]
    results = run_per_host(
        {h.name: transport_for(h.name, h) for h in hosts},
        lambda session: session.run("echo", {"count": 2, "payload": session.host}).items,
    )
    for good in sshd_hosts[:2]:
        assert [i["payload"] for i in results[good.name]] == [good.name, good.name]
    assert isinstance(results["dead"], TransportError)
    assert results["dead"].host == "dead"


def test_remote_error_keeps_the_ssh_session_usable(sshd_hosts: list[SSHHost]) -> None:
    host = sshd_hosts[1]
    with transport_for(host.name, host).open() as session:
        with pytest.raises(RemoteOpError, match="RuntimeError: nope") as caught:
            session.run("echo", {"count": 1, "fail": "nope"})
        assert "Traceback" in (caught.value.remote_traceback or "")
        assert session.run("echo", {"count": 1}).done == {"count": 1}


def test_sshd_killed_mid_stream_is_a_transport_error(sshd_factory: SSHDFactory) -> None:
    (host,) = sshd_factory(1)
    with transport_for(host.name, host).open() as session:
        calling = session.call("echo", {"count": 200, "interval": 0.05})
        assert next(calling)["seq"] == 0
        assert kill_connections(host) >= 1
        started = time.monotonic()
        with pytest.raises(TransportError, match=r"SSH connection lost|closed") as caught:
            list(calling)
        assert time.monotonic() - started < 5
        assert caught.value.host == host.name
        with pytest.raises(TransportError, match="unusable"):
            session.run("ping")
    # The listener survives: a new connection works.
    with transport_for(host.name, host).open() as session:
        assert session.run("echo", {"count": 1}).done == {"count": 1}


def test_scan_gives_the_same_items_locally_and_over_ssh(
    sshd_hosts: list[SSHHost], tmp_path: Path
) -> None:
    root = tmp_path / "p10001"
    (root / "html" / "wp-includes").mkdir(parents=True)
    (root / "html" / "wp-includes" / "version.php").write_text(
        "<?php\n/** Version of this build. */\n$wp_version = '6.4.2';\n"
    )
    (root / "html" / "index.php").write_text("<?php\n")
    accounts = [
        {"id": "p10001", "root": str(root), "docroots": None, "max_depth": 4, "php": "8.2"},
        {"id": "p10002", "root": str(tmp_path / "missing"), "docroots": None},
    ]
    with LocalTransport("local").open() as session:
        local = session.run("scan", {"accounts": accounts})
    host = sshd_hosts[2]
    with transport_for(host.name, host).open() as session:
        remote = session.run("scan", {"accounts": accounts})
    assert remote == local
    found, missing = local.items
    assert found["error"] is None
    assert [(i["path"], i["cms"], i["version"]) for i in found["installations"]] == [
        ("html", "wordpress", "6.4.2")
    ]
    assert (found["php"], found["php_source"]) == ("8.2", "inventory")
    assert missing["account"] == "p10002" and "No such file" in missing["error"]


def test_read_timeout_breaks_a_silent_session(sshd_hosts: list[SSHHost]) -> None:
    host = sshd_hosts[0]
    transport = SSHTransport(
        host.name,
        hostname=host.hostname,
        port=host.port,
        user=host.user,
        key_file=host.key_file,
        known_hosts=host.known_hosts,
        python=host.python,
        read_timeout=0.5,
    )
    with transport.open() as session, pytest.raises(TransportError, match="timed out"):
        session.run("echo", {"count": 2, "interval": 3})
