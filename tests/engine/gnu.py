"""Test helpers: build unified diffs from two byte strings and run GNU patch as an oracle.

The diff builder uses difflib's grouping (any valid unified diff will do as input for the
differential test) and :func:`patchd.engine.render.render_patch`, so the rendered bytes
are what both GNU patch and :func:`parse_diff` read.
"""

from __future__ import annotations

import difflib
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from patchd.engine.model import FilePatch, Hunk, HunkLine

PATCH_FLAGS = ("-p1", "-f", "--no-backup-if-mismatch", "--verbose")


def split(data: bytes) -> list[bytes]:
    """Lines split on LF only, keeping it."""
    parts = data.split(b"\n")
    return [p + b"\n" for p in parts[:-1]] + ([parts[-1]] if parts[-1] else [])


def make_filepatch(path: str, old: bytes, new: bytes, *, context: int = 3) -> FilePatch | None:
    """A FilePatch turning ``old`` into ``new`` (None when they are equal)."""
    a, b = split(old), split(new)
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    hunks: list[Hunk] = []
    for group in matcher.get_grouped_opcodes(context):
        if all(tag == "equal" for tag, *_ in group):
            continue
        lines: list[HunkLine] = []
        for tag, a1, a2, b1, b2 in group:
            if tag == "equal":
                lines += [HunkLine(" ", x) for x in a[a1:a2]]
            if tag in ("replace", "delete"):
                lines += [HunkLine("-", x) for x in a[a1:a2]]
            if tag in ("replace", "insert"):
                lines += [HunkLine("+", x) for x in b[b1:b2]]
        i1, i2, j1, j2 = group[0][1], group[-1][2], group[0][3], group[-1][4]
        old_len, new_len = i2 - i1, j2 - j1
        hunks.append(
            Hunk(
                old_start=i1 + 1 if old_len else i1,
                old_len=old_len,
                new_start=j1 + 1 if new_len else j1,
                new_len=new_len,
                lines=tuple(lines),
            )
        )
    if not hunks:
        return None
    return FilePatch(path, path, tuple(hunks))


_HUNK_RE = re.compile(
    rb"^Hunk #(\d+) (succeeded|FAILED) at (\d+)(?: with fuzz (\d+))?"
    rb"(?: \(offset (-?\d+) lines?\))?(?: \(different line endings\))?\.$"
)
_FILE_RE = re.compile(rb"^(?:checking|patching) file (.*)$")


@dataclass(frozen=True)
class GnuHunk:
    """One ``Hunk #N ...`` line of GNU patch's output."""

    index: int
    ok: bool
    line: int
    offset: int
    fuzz: int


@dataclass(frozen=True)
class GnuRun:
    """GNU patch's verdicts (per file, per hunk) and exit code."""

    returncode: int
    hunks: dict[str, list[GnuHunk]]
    stdout: bytes


def run_patch(tree: Path, diff: Path, *, dry_run: bool, fuzz: int = 0) -> GnuRun:
    """Run GNU patch in ``tree`` on ``diff`` and parse what it says about each hunk."""
    args = ["patch", *PATCH_FLAGS, f"-F{fuzz}", "-i", str(diff)]
    if dry_run:
        args.append("--dry-run")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C"}
    env["QUOTING_STYLE"] = "literal"
    proc = subprocess.run(
        args, cwd=tree, env=env, capture_output=True, stdin=subprocess.DEVNULL, check=False
    )
    hunks: dict[str, list[GnuHunk]] = {}
    current: list[GnuHunk] | None = None
    for line in proc.stdout.splitlines():
        m = _FILE_RE.match(line)
        if m:
            current = hunks.setdefault(m.group(1).decode("utf-8", "surrogateescape"), [])
            continue
        if line.startswith(b"Hunk #"):
            h = _HUNK_RE.match(line)
            assert h is not None, f"unexpected GNU patch output: {line!r}"
            assert current is not None
            current.append(
                GnuHunk(
                    index=int(h.group(1)),
                    ok=h.group(2) == b"succeeded",
                    line=int(h.group(3)),
                    offset=int(h.group(5) or 0),
                    fuzz=int(h.group(4) or 0),
                )
            )
    return GnuRun(proc.returncode, hunks, proc.stdout + proc.stderr)
