"""Real OpenSSH servers for tests: ``sshd_factory(n)``, ``sshd_hosts`` and ``kill_connections``.

Each server is a real ``/usr/sbin/sshd -D -e`` on a free port of 127.0.0.1 with its own
ed25519 host key; all of a factory's servers accept one generated client key. Each host is
described by an :class:`SSHHost`, which has the attributes ``patchd.transport.transport_for``
reads (``transport``, ``hostname``, ``port``, ``user``, ``key_file``, ``known_hosts``,
``python``), with a known_hosts file holding exactly that server's key.

The harness fails loudly (never skips) if sshd or ssh-keygen is missing: CI installs
openssh-server, and a silently skipped SSH suite would hide every transport bug.

Register with ``pytest_plugins = ["tests.support.sshd"]`` in the top-level conftest.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import getpass
import itertools
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SSHD = "/usr/sbin/sshd"
PRIVSEP_DIR = Path("/run/sshd")
START_TIMEOUT = 10.0
_PR_SET_PDEATHSIG = 1

_names = itertools.count(1)
_servers: dict[int, SSHServer] = {}


@dataclass(frozen=True)
class SSHHost:
    """One test host, shaped like an inventory ``Host`` with ``transport: ssh``."""

    name: str
    hostname: str
    port: int
    user: str
    key_file: str
    known_hosts: str
    host_key_line: str
    """This server's ``known_hosts`` line (``[127.0.0.1]:PORT ssh-ed25519 AAAA...``)."""
    python: str = sys.executable
    transport: str = "ssh"

    def but(self, **changes: object) -> SSHHost:
        """A copy with some fields changed (e.g. another known_hosts or key_file)."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]


@dataclass
class SSHServer:
    """A running sshd and the files it uses."""

    host: SSHHost
    process: subprocess.Popen[bytes]
    workdir: Path
    log: Path

    def stop(self) -> None:
        """Stop the listener and every connection it serves (again: nothing happens)."""
        if self.host.port not in _servers:
            return
        kill_connections(self.host, include_agents=True)
        stop_process(self.process)
        _servers.pop(self.host.port, None)


def _run(argv: list[str]) -> None:
    """Run a setup command; fail the test run with its output if it fails."""
    done = subprocess.run(argv, capture_output=True, check=False)
    if done.returncode != 0:
        pytest.fail(f"{argv[0]} failed: {done.stderr.decode(errors='replace')}", pytrace=False)


def _require_tools() -> None:
    """Fail (not skip) when OpenSSH is not installed."""
    missing = [tool for tool in (SSHD, "ssh-keygen") if not shutil.which(tool)]
    if missing:
        pytest.fail(
            f"OpenSSH missing ({', '.join(missing)}); install openssh-server", pytrace=False
        )


def make_key(path: Path, comment: str = "patchd-test") -> Path:
    """Generate an unencrypted ed25519 key pair at ``path`` (and ``path.pub``)."""
    _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)])
    return path


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """Terminate ``process`` (kill it after 5 s) and reap it; nothing if it has ended."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM when the test process dies.

    NOTE: a pytest killed by a timeout never runs fixture teardown; without this its
    sshd listeners would live on as orphans holding ports.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for_banner(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    """Wait until the server on ``port`` greets with an SSH banner (fail if it died)."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1.0) as sock:
                if sock.recv(64).startswith(b"SSH-2.0-"):
                    return
        except OSError:
            time.sleep(0.05)
    process.kill()
    pytest.fail(f"sshd on port {port} did not start:\n{log.read_text(errors='replace')}")


_CONFIG = """\
Port {port}
ListenAddress 127.0.0.1
HostKey {host_key}
PidFile {workdir}/sshd.pid
AuthorizedKeysFile {authorized_keys}
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PermitRootLogin prohibit-password
AllowAgentForwarding no
AllowTcpForwarding no
X11Forwarding no
PrintMotd no
MaxStartups 100
MaxSessions 50
LogLevel VERBOSE
"""


class SSHDFactory:
    """Starts sshd servers sharing one client key; ``factory(n)`` returns ``n`` new hosts."""

    def __init__(self, base: Path) -> None:
        _require_tools()
        self.base = base
        base.mkdir(parents=True, exist_ok=True)
        self.client_key = make_key(base / "client_ed25519")
        self.authorized_keys = base / "authorized_keys"
        self.authorized_keys.write_bytes((base / "client_ed25519.pub").read_bytes())
        self.servers: list[SSHServer] = []
        if os.geteuid() == 0:
            # NOTE: sshd refuses to start without its privilege separation folder.
            PRIVSEP_DIR.mkdir(mode=0o755, parents=True, exist_ok=True)

    def __call__(self, n: int = 1) -> list[SSHHost]:
        """Start ``n`` servers and return their hosts."""
        return [self._start().host for _ in range(n)]

    def _start(self) -> SSHServer:
        name = f"sshd{next(_names)}"
        workdir = self.base / name
        workdir.mkdir()
        host_key = make_key(workdir / "ssh_host_ed25519_key", comment=name)
        public = (workdir / "ssh_host_ed25519_key.pub").read_text().split()
        for _attempt in range(3):
            port = _free_port()
            config = workdir / "sshd_config"
            config.write_text(
                _CONFIG.format(
                    port=port,
                    host_key=host_key,
                    workdir=workdir,
                    authorized_keys=self.authorized_keys,
                )
            )
            log = workdir / "sshd.log"
            with log.open("wb") as log_file:
                process = subprocess.Popen(
                    [SSHD, "-D", "-e", "-f", str(config)],
                    stdin=subprocess.DEVNULL,
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                    preexec_fn=_die_with_parent,
                )
            time.sleep(0.05)
            if process.poll() is None or b"Address already in use" not in log.read_bytes():
                break
        _wait_for_banner(port, process, log)
        line = f"[127.0.0.1]:{port} {public[0]} {public[1]}"
        known_hosts = workdir / "known_hosts"
        known_hosts.write_text(line + "\n")
        host = SSHHost(
            name=name,
            hostname="127.0.0.1",
            port=port,
            user=getpass.getuser(),
            key_file=str(self.client_key),
            known_hosts=str(known_hosts),
            host_key_line=line,
        )
        server = SSHServer(host=host, process=process, workdir=workdir, log=log)
        _servers[port] = server
        self.servers.append(server)
        return server

    def server(self, host: SSHHost) -> SSHServer:
        """The running server behind ``host``."""
        return _servers[host.port]

    def stop_all(self) -> None:
        """Stop every server this factory started."""
        for server in self.servers:
            server.stop()
        self.servers.clear()


def _children(pid: int) -> list[int]:
    """Every descendant of ``pid`` (from /proc), parents before children."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rpartition(")")[2].split()[1])
        parents.setdefault(ppid, []).append(int(entry.name))
    found: list[int] = []
    todo = list(parents.get(pid, []))
    while todo:
        child = todo.pop(0)
        found.append(child)
        todo.extend(parents.get(child, []))
    return found


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def kill_connections(host: SSHHost, *, include_agents: bool = False) -> int:
    """SIGKILL the sshd processes serving ``host``'s open connections; return how many.

    The listener keeps running, so new connections still work. By default the processes
    started over those connections (the agents) are left alone, as when a network link
    drops; ``include_agents=True`` kills them too.
    """
    server = _servers[host.port]
    victims = [
        pid for pid in _children(server.process.pid) if include_agents or _comm(pid) == "sshd"
    ]
    for pid in victims:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return len(victims)


@pytest.fixture(scope="session")
def sshd_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SSHDFactory]:
    """A factory of real sshd servers: ``sshd_factory(n)`` -> ``n`` new :class:`SSHHost`."""
    factory = SSHDFactory(tmp_path_factory.mktemp("sshd"))
    yield factory
    factory.stop_all()


@pytest.fixture(scope="session")
def sshd_hosts(sshd_factory: SSHDFactory) -> list[SSHHost]:
    """Three running sshd hosts, shared by the whole session (do not stop them)."""
    return sshd_factory(3)
