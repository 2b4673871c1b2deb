"""A transport that starts opening its first session at once, in the background.

The rollout controller wraps the first hosts it will work on in :class:`EarlyTransport`
before it reads the scan and matches the bundle, so the agents start (interpreter, the
zip, the handshake) while it does: on a 10,000-installation rollout the agents' start-up
otherwise came after a second of single-threaded controller work.
"""

from __future__ import annotations

import threading

from patchd.transport.interface import AgentSession, Transport


class EarlyTransport(Transport):
    """``inner`` whose first :meth:`open` was started when this object was made.

    The first call to :meth:`open` returns that session (or raises what opening it
    raised); later calls open new sessions through ``inner``. :meth:`discard` closes the
    early session if nobody took it.
    """

    def __init__(self, inner: Transport) -> None:
        self.inner = inner
        self.host = inner.host
        self._lock = threading.Lock()
        self._taken = False
        self._session: AgentSession | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(
            target=self._open, name=f"patchd-open-{inner.host}", daemon=True
        )
        self._thread.start()

    def _open(self) -> None:
        try:
            self._session = self.inner.open()
        except BaseException as exc:  # NOTE: handed to whoever calls open()
            self._error = exc

    def _take(self) -> bool:
        with self._lock:
            first = not self._taken
            self._taken = True
        return first

    def open(self) -> AgentSession:
        """The early session the first time, a new one afterwards."""
        if not self._take():
            return self.inner.open()
        self._thread.join()
        if self._error is not None:
            raise self._error
        assert self._session is not None
        return self._session

    def discard(self) -> None:
        """Close the early session unless it was taken (idempotent)."""
        if self._take():
            self._thread.join()
            if self._session is not None:
                self._session.close()
