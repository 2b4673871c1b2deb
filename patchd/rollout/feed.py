"""A host's rollout targets as they become known: all at once (a stored scan) or scan
batch by scan batch (a fresh scan streamed into the rollout, issue 18)."""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable, Iterable
from typing import Generic, TypeVar

T = TypeVar("T")


class TargetFeed(Generic[T]):
    """A host's targets: the scan (or the matcher) puts, the host's sessions take.

    ``take`` waits while the feed is open and empty; a closed feed that is empty means the
    host has no more work. ``everything`` keeps every target ever put (for the host's
    bookkeeping after the rollout: unreachable, skipped by the gate).
    """

    def __init__(self, targets: Iterable[T] = (), *, closed: bool = False) -> None:
        self._queue: collections.deque[T] = collections.deque(targets)
        self.everything: list[T] = list(self._queue)
        self._closed = closed
        self._cond = threading.Condition()

    def put(self, targets: Iterable[T]) -> None:
        """Add targets; a closed feed takes no more (a scan thread still running after
        Ctrl-C abandoned the feeds)."""
        with self._cond:
            if self._closed:
                return
            added = list(targets)
            self._queue.extend(added)
            self.everything.extend(added)
            self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def abandon(self) -> None:
        """Drop the queued targets and close (the run stops: Ctrl-C, a failed scan)."""
        with self._cond:
            self._queue.clear()
            self._closed = True
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        with self._cond:
            return self._closed

    def wait_any(self) -> bool:
        """Wait until the feed has a target (True) or is closed and empty (False)."""
        with self._cond:
            self._cond.wait_for(lambda: self._queue or self._closed)
            return bool(self._queue)

    def take(self, size: int, most: int, counts: Callable[[T], bool]) -> list[T]:
        """The next batch: waits for a first target, then up to ``size`` targets for which
        ``counts`` holds (the others ride along), at most ``most`` in all; [] once the feed
        is closed and empty."""
        with self._cond:
            self._cond.wait_for(lambda: self._queue or self._closed)
            chunk: list[T] = []
            applies = 0
            while applies < size and len(chunk) < most and self._queue:
                t = self._queue.popleft()
                chunk.append(t)
                applies += counts(t)
            return chunk
