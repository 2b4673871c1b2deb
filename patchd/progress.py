"""Progress reporting passed into long library operations.

The library never prints: it calls a :class:`Progress` it was given. The default is
silent; the CLI passes a rich progress bar when stderr is a terminal.
"""

from __future__ import annotations

from collections import Counter
from typing import Protocol


class Progress(Protocol):
    """What a long operation reports: a total, steps done, and live counts per label."""

    def start(self, total: int | None, description: str) -> None: ...

    def advance(self, steps: int = 1, *, label: str | None = None) -> None: ...

    def finish(self) -> None: ...


class SilentProgress:
    """Counts but shows nothing (pipes, tests, the library's default)."""

    def __init__(self) -> None:
        self.total: int | None = None
        self.done = 0
        self.counts: Counter[str] = Counter()

    def start(self, total: int | None, description: str) -> None:
        self.total = total

    def advance(self, steps: int = 1, *, label: str | None = None) -> None:
        self.done += steps
        if label:
            self.counts[label] += steps

    def finish(self) -> None:
        return None
