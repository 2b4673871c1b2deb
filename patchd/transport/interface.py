"""The transport seam: how the controller reaches a host's agent.

A :class:`Transport` knows one host and how to start the agent there; :meth:`Transport.open`
starts it and returns an :class:`AgentSession`, which speaks the agent protocol
(:mod:`patchd.agent.protocol`) over an :class:`AgentPipe` (a subprocess's pipes, an SSH
channel). Sessions are for one thread at a time; use one session per host.
"""

from __future__ import annotations

import collections
import itertools
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Protocol

from patchd.agent import protocol
from patchd.agent.package import build_package
from patchd.errors import PatchdError, TransportError

JSONDict = dict[str, Any]


class RemoteOpError(PatchdError):
    """An op raised on the host; carries the remote exception's type, message and traceback.

    The session stays usable after this error.
    """

    exit_code = 1

    def __init__(
        self,
        message: str,
        *,
        host: str,
        op: str,
        remote_type: str,
        remote_traceback: str | None = None,
        remote_where: str | None = None,
    ) -> None:
        where = f"host {host}: op {op}" + (f": {remote_where}" if remote_where else "")
        super().__init__(f"{remote_type}: {message}", where=where)
        self.host = host
        self.op = op
        self.remote_type = remote_type
        self.remote_message = message
        self.remote_traceback = remote_traceback
        self.remote_where = remote_where


class AgentPipe(Protocol):
    """A byte stream to a running agent. Methods raise ``OSError`` or ``TransportError``."""

    def write(self, data: bytes) -> None:
        """Send all of ``data`` to the agent's stdin."""

    def readline(self) -> bytes:
        """Read one line from the agent's stdout; ``b""`` at end of stream."""

    def close(self) -> None:
        """End the agent (close its stdin, wait briefly, then kill) and free resources."""

    def exit_reason(self) -> str:
        """Why the stream ended, for error messages (exit status, last stderr lines)."""


@dataclass(frozen=True)
class OpResult:
    """Everything one request produced: its ``item`` data and its ``done`` data."""

    items: list[JSONDict]
    done: JSONDict = field(default_factory=dict)


class AgentSession:
    """A running agent on one host; a context manager that closes the agent on exit."""

    def __init__(self, host: str, pipe: AgentPipe) -> None:
        self.host = host
        self._pipe = pipe
        self._ids = itertools.count(1)
        self._unfinished: int | None = None
        self._broken: str | None = None
        self.info: JSONDict = {}
        """The agent's ``ping`` data, filled in by :meth:`handshake`."""

    def __enter__(self) -> AgentSession:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def handshake(self, expected_sha256: str | None = None) -> JSONDict:
        """Ping the freshly started agent and check it runs the zip we sent; return ``info``."""
        self.info = self.run("ping").done
        got = self.info.get("package_sha256")
        if expected_sha256 is not None and got != expected_sha256:
            self._fail(f"agent runs package {got}, expected {expected_sha256}")
        return self.info

    def call(self, op: str, args: JSONDict | None = None) -> Generator[JSONDict, None, JSONDict]:
        """Run ``op`` on the host; yield each ``item``'s data; return the ``done`` data.

        Raises :class:`RemoteOpError` if the op fails on the host (the session stays
        usable) and :class:`~patchd.errors.TransportError` if the connection is lost (the
        session is then unusable). Abandoning the iteration early is allowed: the rest of
        that request's answer is skipped at the next call.
        """
        self._settle()
        request_id = next(self._ids)
        self._send(protocol.request(request_id, op, args or {}))
        self._unfinished = request_id
        while True:
            message = self._receive()
            if message.get("id") != request_id:
                self._fail(
                    f"answer for request {message.get('id')!r} while waiting for {request_id}"
                )
            event = message.get("event")
            if event == protocol.ITEM:
                yield message.get("data") or {}
            elif event == protocol.DONE:
                self._unfinished = None
                return message.get("data") or {}
            elif event == protocol.ERROR:
                self._unfinished = None
                raise _remote_error(self.host, op, message.get("error") or {})
            else:
                self._fail(f"unknown event {event!r}")

    def run(self, op: str, args: JSONDict | None = None) -> OpResult:
        """Run ``op`` to completion and return all its items and its ``done`` data."""
        calling = self.call(op, args)
        items: list[JSONDict] = []
        while True:
            try:
                items.append(next(calling))
            except StopIteration as stop:
                return OpResult(items=items, done=stop.value)

    def close(self) -> None:
        """End the agent; safe to call twice."""
        self._broken = self._broken or "session closed"
        self._pipe.close()

    def _settle(self) -> None:
        """Refuse a broken session; skip what is left of an abandoned request's answer."""
        if self._broken is not None:
            raise TransportError(f"session unusable: {self._broken}", host=self.host)
        while self._unfinished is not None:
            message = self._receive()
            if message.get("id") == self._unfinished and message.get("event") in (
                protocol.TERMINAL_EVENTS
            ):
                self._unfinished = None

    def _send(self, message: JSONDict) -> None:
        try:
            self._pipe.write(protocol.encode(message))
        except TransportError as exc:
            self._fail(exc.message)
        except OSError as exc:
            self._fail(f"cannot send to agent ({exc}); {self._pipe.exit_reason()}")

    def _receive(self) -> JSONDict:
        try:
            line = self._pipe.readline()
        except TransportError as exc:
            self._fail(exc.message)
        except TimeoutError:
            self._fail("agent connection timed out: no answer within the read timeout")
        except OSError as exc:
            self._fail(f"connection lost ({str(exc) or type(exc).__name__})")
        if not line:
            self._fail(f"agent connection closed: {self._pipe.exit_reason()}")
        if not line.endswith(b"\n"):
            self._fail(f"agent connection closed mid-line: {self._pipe.exit_reason()}")
        try:
            return protocol.decode(line)
        except protocol.ProtocolError as exc:
            self._fail(f"agent sent garbage ({exc})")

    def _fail(self, reason: str) -> Any:
        """Mark the session broken, close it, and raise a TransportError saying why."""
        self._broken = reason
        self._pipe.close()
        raise TransportError(reason, host=self.host)


def _remote_error(host: str, op: str, error: JSONDict) -> RemoteOpError:
    return RemoteOpError(
        str(error.get("message", "")),
        host=host,
        op=op,
        remote_type=str(error.get("type", "Exception")),
        remote_traceback=error.get("traceback"),
        remote_where=error.get("where"),
    )


class Transport(ABC):
    """How to start the agent on one host of the inventory."""

    host: str
    """The host's inventory name (used in every error)."""

    @abstractmethod
    def open(self) -> AgentSession:
        """Start the agent on the host, check it with ``ping``, and return the session.

        Raises :class:`~patchd.errors.TransportError` with a one-line reason on failure.
        """

    def start_session(self, pipe: AgentPipe) -> AgentSession:
        """Ship the agent's zip over ``pipe`` and complete the handshake (for subclasses)."""
        package = build_package()
        session = AgentSession(self.host, pipe)
        try:
            pipe.write(package.frame())
        except TransportError:
            pipe.close()
            raise
        except OSError as exc:
            reason = pipe.exit_reason()
            pipe.close()
            raise TransportError(f"agent did not start ({exc}); {reason}", host=self.host) from exc
        try:
            session.handshake(package.sha256)
        except BaseException:
            session.close()
            raise
        return session

    def __repr__(self) -> str:
        return f"{type(self).__name__}(host={self.host!r})"


class StderrTail:
    """Drains a stream (an agent's stderr) in a thread, keeping its last lines.

    ``read_chunk(n)`` returns up to ``n`` bytes, ``b""`` at the end; a ``TimeoutError``
    from it is ignored (an SSH channel with a read timeout raises it while the agent is
    quiet).

    NOTE: an undrained stderr pipe or SSH channel fills up and then blocks the agent.
    """

    def __init__(self, read_chunk: Callable[[int], bytes], *, keep: int = 20) -> None:
        self._lines: collections.deque[bytes] = collections.deque(maxlen=keep)
        self._partial = b""
        self._thread = threading.Thread(target=self._drain, args=(read_chunk,), daemon=True)
        self._thread.start()

    def _drain(self, read_chunk: Callable[[int], bytes]) -> None:
        while True:
            try:
                chunk = read_chunk(4096)
            except TimeoutError:
                continue
            except (OSError, ValueError, EOFError):
                return
            if not chunk:
                return
            *complete, self._partial = (self._partial + chunk).split(b"\n")
            self._lines.extend(complete)
            self._partial = self._partial[-4096:]

    def last(self, wait: float = 0.5) -> str:
        """The last non-empty stderr line (waiting up to ``wait`` s for the stream's end)."""
        self._thread.join(wait)
        for line in [self._partial, *reversed(self._lines)]:
            text = line.decode("utf-8", "replace").strip()
            if text:
                return text[:300]
        return ""
