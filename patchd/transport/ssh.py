"""The ``ssh`` transport: the agent on a remote host, over one paramiko SSH channel.

The controller connects once per host, runs ``python3 -I -c BOOTSTRAP`` on one channel,
sends the agent's zip, and then streams requests and results over that channel.

Trust: the host key is checked against the host's ``known_hosts`` file only; an unknown or
changed key is refused loudly, never learned (THREATS.md: "no silent auto-accept").
Authentication uses only the configured key file (no SSH agent, no ~/.ssh guessing), and
nothing is forwarded.
"""

from __future__ import annotations

import os
import shlex
import socket
import time
from pathlib import Path

import paramiko

from patchd.agent.package import bootstrap_argv
from patchd.errors import TransportError
from patchd.transport.interface import AgentSession, StderrTail, Transport

DEFAULT_CONNECT_TIMEOUT = 15.0
DEFAULT_KEEPALIVE = 15
_EXIT_WAIT = 5.0


class _UnknownHostKeyError(paramiko.SSHException):
    """Raised by :class:`_RefuseUnknownKey` inside ``SSHClient.connect``."""


class _RefuseUnknownKey(paramiko.MissingHostKeyPolicy):
    """Refuse any host whose key is not in the loaded known_hosts file.

    NOTE: paramiko's own ``RejectPolicy`` does the same; this one only adds a message that
    names the known_hosts file and the offered key, so the operator knows what to check.
    """

    def __init__(self, known_hosts: str) -> None:
        self.known_hosts = known_hosts

    def missing_host_key(
        self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey
    ) -> None:
        """Always refuse."""
        raise _UnknownHostKeyError(
            f"host key for {hostname} not in known_hosts {self.known_hosts} "
            f"(server offered {key.get_name()} {key.fingerprint})"
        )


class ChannelPipe:
    """An :class:`~patchd.transport.interface.AgentPipe` over one SSH exec channel."""

    def __init__(self, host: str, client: paramiko.SSHClient, channel: paramiko.Channel) -> None:
        self._host = host
        self._client = client
        self._channel = channel
        self._stdout = channel.makefile("rb")
        self._stderr = StderrTail(channel.recv_stderr)
        self._closed = False

    def write(self, data: bytes) -> None:
        """Send ``data`` to the agent's stdin."""
        try:
            self._channel.sendall(data)
        except (paramiko.SSHException, EOFError) as exc:
            raise TransportError(f"SSH channel lost while sending: {exc}", host=self._host) from exc

    def readline(self) -> bytes:
        """Read one line of the agent's stdout (``b""`` when the channel ended)."""
        try:
            return self._stdout.readline()
        except (paramiko.SSHException, EOFError) as exc:
            raise TransportError(f"SSH channel lost: {exc}", host=self._host) from exc

    def close(self) -> None:
        """Send EOF so the agent ends, wait briefly for it, then close the connection."""
        if self._closed:
            return
        self._closed = True
        try:
            self._channel.shutdown_write()
            deadline = time.monotonic() + _EXIT_WAIT
            while not self._channel.exit_status_ready() and time.monotonic() < deadline:
                if not self._client.get_transport() or not self._transport_active():
                    break
                time.sleep(0.02)
        except (OSError, paramiko.SSHException, EOFError):
            pass
        finally:
            self._channel.close()
            self._client.close()

    def exit_reason(self) -> str:
        """The remote agent's exit status and last stderr line, or that the link died."""
        deadline = time.monotonic() + 1.0
        while not self._channel.exit_status_ready() and time.monotonic() < deadline:
            if not self._transport_active():
                break
            time.sleep(0.02)
        last = self._stderr.last(0.2)
        if self._channel.exit_status_ready():
            status = self._channel.recv_exit_status()
            return f"agent exited with status {status}" + (f": {last}" if last else "")
        return "SSH connection lost" + (f" (agent stderr: {last})" if last else "")

    def _transport_active(self) -> bool:
        transport = self._client.get_transport()
        return transport is not None and transport.is_active()


class SSHTransport(Transport):
    """Runs the agent on a remote host over SSH, as ``user`` with the key ``key_file``."""

    def __init__(
        self,
        host: str,
        *,
        hostname: str,
        port: int = 22,
        user: str = "root",
        key_file: str | os.PathLike[str] | None,
        known_hosts: str | os.PathLike[str] | None,
        python: str = "python3",
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        read_timeout: float | None = None,
        keepalive: int = DEFAULT_KEEPALIVE,
    ) -> None:
        self.host = host
        self.hostname = hostname
        self.port = int(port)
        self.user = user
        self.key_file = _expand(key_file)
        self.known_hosts = _expand(known_hosts) or str(Path("~/.ssh/known_hosts").expanduser())
        self.python = python
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.keepalive = keepalive

    def command(self) -> str:
        """The remote command line that starts the agent (quoted for the login shell)."""
        return shlex.join(bootstrap_argv(self.python))

    def open(self) -> AgentSession:
        """Connect, start the agent on one channel, and return its checked session."""
        client = self._connect()
        try:
            transport = client.get_transport()
            if transport is None:
                raise paramiko.SSHException("connection closed after login")
            transport.set_keepalive(self.keepalive)
            channel = transport.open_session(timeout=self.connect_timeout)
            # NOTE: the agent's start (login shell, python, unpacking) gets the connect
            # timeout; read_timeout applies to requests only, once the handshake is done.
            channel.settimeout(self.connect_timeout)
            channel.exec_command(self.command())
        except (paramiko.SSHException, OSError, EOFError) as exc:
            client.close()
            raise self._error(f"cannot start the agent: {str(exc) or type(exc).__name__}") from exc
        session = self.start_session(ChannelPipe(self.host, client, channel))
        channel.settimeout(self.read_timeout)
        return session

    def _connect(self) -> paramiko.SSHClient:
        """Open the SSH connection, refusing unknown keys; map every failure to one line."""
        if self.key_file is None:
            raise self._error("no key_file configured for this ssh host")
        if not os.path.isfile(self.key_file):
            raise self._error(f"key file {self.key_file} not found")
        if not os.path.isfile(self.known_hosts):
            raise self._error(
                f"known_hosts file {self.known_hosts} not found (hosts are trusted only "
                "through known_hosts)"
            )
        client = paramiko.SSHClient()
        try:
            client.load_host_keys(self.known_hosts)
        except (OSError, paramiko.SSHException) as exc:
            raise self._error(f"cannot read known_hosts {self.known_hosts}: {exc}") from exc
        client.set_missing_host_key_policy(_RefuseUnknownKey(self.known_hosts))
        try:
            client.connect(
                self.hostname,
                port=self.port,
                username=self.user,
                key_filename=self.key_file,
                allow_agent=False,
                look_for_keys=False,
                timeout=self.connect_timeout,
                banner_timeout=self.connect_timeout,
                auth_timeout=self.connect_timeout,
                channel_timeout=self.connect_timeout,
            )
        except Exception as exc:
            client.close()
            if isinstance(exc, (paramiko.SSHException, OSError, EOFError)):
                raise self._error(self._connect_failure(exc)) from exc
            raise
        return client

    def _connect_failure(self, exc: BaseException) -> str:
        """One line saying why connecting failed."""
        where = f"{self.hostname}:{self.port}"
        if isinstance(exc, _UnknownHostKeyError):
            return str(exc)
        if isinstance(exc, paramiko.BadHostKeyException):
            return (
                f"host key for {self._key_name()} changed: known_hosts {self.known_hosts} has "
                f"{exc.expected_key.get_name()} {exc.expected_key.fingerprint}, the server "
                f"offered {exc.key.get_name()} {exc.key.fingerprint}"
            )
        if isinstance(exc, paramiko.PasswordRequiredException):
            return f"key file {self.key_file} is encrypted; patchd needs an unencrypted key"
        if isinstance(exc, paramiko.AuthenticationException):
            return f"authentication as {self.user} with key {self.key_file} failed on {where}"
        if isinstance(exc, paramiko.ssh_exception.NoValidConnectionsError):
            reasons = {e.strerror or str(e) for e in exc.errors.values()}
            return f"cannot connect to {where}: {'; '.join(sorted(reasons))}"
        if isinstance(exc, socket.gaierror):
            return f"cannot resolve {self.hostname}: {exc.strerror or exc}"
        if isinstance(exc, TimeoutError):
            return f"timed out connecting to {where}"
        if isinstance(exc, OSError):
            return f"cannot connect to {where}: {exc.strerror or exc}"
        if isinstance(exc, EOFError):
            return f"{where} closed the connection during the SSH handshake"
        return f"SSH error with {where}: {str(exc) or type(exc).__name__}"

    def _key_name(self) -> str:
        """The host's name as known_hosts spells it (``[name]:port`` off port 22)."""
        return self.hostname if self.port == 22 else f"[{self.hostname}]:{self.port}"

    def _error(self, reason: str) -> TransportError:
        return TransportError(reason, host=self.host)


def _expand(path: str | os.PathLike[str] | None) -> str | None:
    """``~``-expand a configured path; ``None`` stays ``None``."""
    return None if path is None else os.path.expanduser(os.fspath(path))
