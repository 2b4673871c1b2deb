"""Small builders for hunks, release hunks and file changes used by the bundle tests."""

from __future__ import annotations

from collections.abc import Sequence

from patchd.engine.model import Hunk, HunkLine
from patchd.release.tree import FileChange, ReleaseDiff, ReleaseHunk


def make_hunk(lines: Sequence[str], *, old_start: int = 1, new_start: int | None = None) -> Hunk:
    """A hunk from ``[" ctx", "-old", "+new"]`` strings (each line gets a ``\\n``)."""
    hl = tuple(HunkLine(s[0], (s[1:] + "\n").encode()) for s in lines)  # type: ignore[arg-type]
    old_len = sum(1 for ln in hl if ln.kind != "+")
    new_len = sum(1 for ln in hl if ln.kind != "-")
    if old_len == 0:
        old_start -= 1
    return Hunk(old_start, old_len, new_start if new_start is not None else old_start, new_len, hl)


def release_hunk(path: str, lines: Sequence[str], *, old_start: int = 1) -> ReleaseHunk:
    """A ReleaseHunk with the id scheme of patchd.release.tree."""
    h = make_hunk(lines, old_start=old_start)
    return ReleaseHunk(f"{path}@{h.old_start}-{h.digest[:10]}", path, h)


def file_change(path: str, *hunks: Sequence[str], kind: str = "modified") -> FileChange:
    """A FileChange of ``path`` with one hunk per ``lines`` argument."""
    return FileChange(
        path,
        kind,
        None,
        None,  # type: ignore[arg-type]
        tuple(release_hunk(path, h) for h in hunks),
    )


def diff_of(*changes: FileChange) -> ReleaseDiff:
    """A ReleaseDiff of the given changes."""
    return ReleaseDiff(files=list(changes))


def render(path: str, hunks: Sequence[Hunk]) -> bytes:
    """A unified diff (``a/``, ``b/`` prefixes) of ``hunks`` for GNU patch."""
    out = [f"--- a/{path}\n".encode(), f"+++ b/{path}\n".encode()]
    for h in hunks:
        out.append(f"@@ -{h.old_start},{h.old_len} +{h.new_start},{h.new_len} @@\n".encode())
        for ln in h.lines:
            out.append(ln.kind.encode() + ln.data)
            if not ln.data.endswith(b"\n"):
                out.append(b"\n\\ No newline at end of file\n")
    return b"".join(out)
