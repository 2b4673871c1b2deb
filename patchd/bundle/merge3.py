"""A 3-way file merge through ``git merge-file`` (the merge git itself uses).

Backports port the minimal patch with it: base = OLD's file, theirs = OLD's file with the
patch, ours = the older release's file. Where the older release changed the lines around
the fix, the merge still places the fix exactly; where it changed the same lines (the
vulnerable code was restructured), the merge reports a conflict with both sides, which a
person resolves. Nothing is fuzzed.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from patchd.errors import PatchdError


class MergeError(PatchdError):
    """``git merge-file`` is missing or failed (not a conflict: conflicts are data)."""


_OURS, _SEP, _THEIRS = b"<<<<<<< ", b"=======", b">>>>>>> "


@dataclass(frozen=True)
class Conflict:
    """One conflicting region: the target release's lines and the patched OLD's lines."""

    ours: str
    theirs: str


@dataclass(frozen=True)
class Merge:
    """The merged content (with conflict markers when ``conflicts`` is not empty)."""

    content: bytes
    conflicts: tuple[Conflict, ...]

    @property
    def clean(self) -> bool:
        return not self.conflicts


def find_git() -> str:
    """The ``git`` binary; :class:`MergeError` when missing (it is a required package)."""
    git = shutil.which("git")
    if git is None:
        raise MergeError("git not found: backports are merged with 'git merge-file'")
    return git


def merge_file(base: bytes, ours: bytes, theirs: bytes, *, git: str | None = None) -> Merge:
    """Merge ``theirs``' change of ``base`` into ``ours`` (``git merge-file -p``)."""
    binary = git or find_git()
    with tempfile.TemporaryDirectory(prefix="patchd-merge-") as tmp:
        paths = []
        for name, data in (("ours", ours), ("base", base), ("theirs", theirs)):
            p = Path(tmp) / name
            p.write_bytes(data)
            paths.append(str(p))
        proc = subprocess.run(
            [binary, "merge-file", "-p", "-L", "target", "-L", "OLD", "-L", "patched", *paths],
            capture_output=True,
            check=False,
        )
    # NOTE: exit status is the number of conflicts (capped at 127); negative on error.
    if proc.returncode < 0 or proc.returncode > 127 or (proc.returncode and not proc.stdout):
        detail = proc.stderr.decode("utf-8", "replace").strip()
        raise MergeError(f"git merge-file failed: {detail or proc.returncode}")
    conflicts = _conflicts(proc.stdout) if proc.returncode else ()
    if proc.returncode and not conflicts:
        raise MergeError("git merge-file reported conflicts but wrote no conflict markers")
    return Merge(proc.stdout, conflicts)


def resolve_conflicts(content: bytes, answers: list[bytes]) -> bytes:
    """``content`` of a conflicted merge with its i-th conflict region (markers included)
    replaced by ``answers[i]``; ValueError when the counts differ."""
    out: list[bytes] = []
    n = 0
    inside = False
    for line in content.splitlines(keepends=True):
        if not inside and line.startswith(_OURS + b"target"):
            inside = True
            continue
        if inside:
            if line.startswith(_THEIRS + b"patched"):
                if n >= len(answers):
                    raise ValueError("more conflicts than answers")
                out.append(answers[n])
                n += 1
                inside = False
            continue
        out.append(line)
    if n != len(answers):
        raise ValueError(f"{n} conflicts, {len(answers)} answers")
    return b"".join(out)


def _conflicts(content: bytes) -> tuple[Conflict, ...]:
    out: list[Conflict] = []
    ours: list[bytes] = []
    theirs: list[bytes] = []
    side: list[bytes] | None = None
    for line in content.splitlines(keepends=True):
        if line.startswith(_OURS + b"target"):
            ours, theirs, side = [], [], ours
            side = ours
        elif side is ours and line.rstrip(b"\r\n") == _SEP:
            side = theirs
        elif side is theirs and line.startswith(_THEIRS + b"patched"):
            out.append(Conflict(_text(ours), _text(theirs)))
            side = None
        elif side is not None:
            side.append(line)
    return tuple(out)


def _text(lines: list[bytes]) -> str:
    return b"".join(lines).decode("utf-8", "replace")
