"""The data a unified diff is made of: files, hunks, lines (frozen, bytes-exact).

Lines keep their end-of-line bytes: ``b"x\\r\\n"`` for a CRLF line, ``b"x"`` (no EOL) for
a last line marked ``\\ No newline at end of file``. Paths are ``str`` with
``surrogateescape`` for non-UTF-8 bytes, already stripped of their ``a/`` / ``b/`` prefix
and checked to stay inside the tree (see :func:`patchd.engine.paths.safe_relpath`).

NOTE: stdlib-only; the host-side agent imports it to apply hunks on the host.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any, Literal

LineKind = Literal[" ", "-", "+"]


@dataclass(frozen=True)
class HunkLine:
    """One line of a hunk: ``kind`` is context ``" "``, removed ``"-"`` or added ``"+"``."""

    kind: LineKind
    data: bytes  # the line's bytes including its EOL; no EOL = no newline at end of file


@dataclass(frozen=True)
class Hunk:
    """One ``@@ -old_start,old_len +new_start,new_len @@`` block."""

    old_start: int
    old_len: int
    new_start: int
    new_len: int
    lines: tuple[HunkLine, ...]
    section: bytes = b""  # text after the second ``@@`` (function name), kept verbatim
    source_line: int | None = None  # 1-based line of the ``@@`` header in its diff

    # NOTE: cached: the engine asks for these on every placement attempt (a rollout
    # applies one parsed hunk to thousands of installations). Treat them as read-only.
    @cached_property
    def old_lines(self) -> list[bytes]:
        """The pre-image lines (context and removed)."""
        return [ln.data for ln in self.lines if ln.kind != "+"]

    @cached_property
    def new_lines(self) -> list[bytes]:
        """The post-image lines (context and added)."""
        return [ln.data for ln in self.lines if ln.kind != "-"]

    @cached_property
    def runs(self) -> tuple[tuple[str, int, tuple[bytes, ...]], ...]:
        """The hunk as runs ``(kind, count, added lines)`` in the order GNU patch applies
        it: within a run of changed lines, removed lines before added ones; ``kind`` is
        ``" "`` (context), ``"-"`` (removed) or ``"+"`` (added, with their bytes)."""
        runs: list[tuple[str, list[bytes]]] = []  # (kind, lines); counted at the end

        def push(kind: str, data: bytes) -> None:
            # NOTE: appended in place: a 100,000-line hunk must stay linear
            if runs and runs[-1][0] == kind:
                runs[-1][1].append(data)
            else:
                runs.append((kind, [data]))

        pending: list[HunkLine] = []
        for ln in (*self.lines, None):
            if ln is not None and ln.kind != " ":
                pending.append(ln)
                continue
            for x in pending:
                if x.kind == "-":
                    push("-", x.data)
            for x in pending:
                if x.kind == "+":
                    push("+", x.data)
            pending = []
            if ln is not None:
                push(" ", ln.data)
        return tuple(
            (kind, len(lines), tuple(lines) if kind == "+" else ()) for kind, lines in runs
        )

    @cached_property
    def context(self) -> tuple[int, int]:
        """Leading and trailing context line counts."""
        kinds = [ln.kind for ln in self.lines]
        prefix = 0
        while prefix < len(kinds) and kinds[prefix] == " ":
            prefix += 1
        suffix = 0
        while suffix < len(kinds) and kinds[len(kinds) - 1 - suffix] == " ":
            suffix += 1
        return prefix, suffix

    @property
    def digest(self) -> str:
        """sha256 over the hunk's line kinds and bytes (not its position)."""
        h = hashlib.sha256()
        for ln in self.lines:
            h.update(ln.kind.encode())
            h.update(len(ln.data).to_bytes(8, "big"))
            h.update(ln.data)
        return h.hexdigest()

    def reversed(self) -> Hunk:
        """The hunk that undoes this one: old and new sides swapped (made once)."""
        return self._reversed

    @cached_property
    def _reversed(self) -> Hunk:
        swap = {" ": " ", "-": "+", "+": "-"}
        return Hunk(
            old_start=self.new_start,
            old_len=self.new_len,
            new_start=self.old_start,
            new_len=self.old_len,
            lines=tuple(HunkLine(swap[ln.kind], ln.data) for ln in self.lines),  # type: ignore[arg-type]
            section=self.section,
            source_line=self.source_line,
        )

    def to_json(self) -> dict[str, Any]:
        """A JSON-safe form (lines base64) for the agent protocol."""
        return {
            "old": [self.old_start, self.old_len],
            "new": [self.new_start, self.new_len],
            "section": base64.b64encode(self.section).decode(),
            "lines": [[ln.kind, base64.b64encode(ln.data).decode()] for ln in self.lines],
        }

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Hunk:
        return cls(
            old_start=obj["old"][0],
            old_len=obj["old"][1],
            new_start=obj["new"][0],
            new_len=obj["new"][1],
            section=base64.b64decode(obj.get("section", "")),
            lines=tuple(HunkLine(k, base64.b64decode(d)) for k, d in obj["lines"]),
        )


@dataclass(frozen=True)
class FilePatch:
    """All hunks for one file. ``old_path`` is None for a new file, ``new_path`` for a deletion."""

    old_path: str | None
    new_path: str | None
    hunks: tuple[Hunk, ...]
    source_line: int | None = None  # 1-based line of the ``---`` header in its diff
    header: tuple[bytes, ...] = field(default=(), compare=False)  # raw lines before ``---``

    @property
    def path(self) -> str:
        """The file this patch touches, relative to the installation root."""
        p = self.new_path if self.new_path is not None else self.old_path
        assert p is not None, "a FilePatch names at least one path"
        return p

    @property
    def is_new(self) -> bool:
        return self.old_path is None

    @property
    def is_deleted(self) -> bool:
        return self.new_path is None

    def reversed(self) -> FilePatch:
        """The patch that undoes this one (a creation becomes a deletion and vice versa)."""
        return self._reversed

    @cached_property
    def _reversed(self) -> FilePatch:
        return FilePatch(
            old_path=self.new_path,
            new_path=self.old_path,
            hunks=tuple(h.reversed() for h in self.hunks),
            source_line=self.source_line,
            header=self.header,
        )

    def without_positions(self) -> FilePatch:
        """A copy with every ``source_line`` cleared (to compare patches from different diffs)."""
        return FilePatch(
            old_path=self.old_path,
            new_path=self.new_path,
            hunks=tuple(replace(h, source_line=None) for h in self.hunks),
            header=self.header,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "old_path": self.old_path,
            "new_path": self.new_path,
            "hunks": [h.to_json() for h in self.hunks],
        }

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> FilePatch:
        return cls(
            old_path=obj["old_path"],
            new_path=obj["new_path"],
            hunks=tuple(Hunk.from_json(h) for h in obj["hunks"]),
        )
