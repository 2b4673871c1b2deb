"""Line diff of two byte strings into ``diff -u``-shaped hunks (bytes-exact, EOLs kept).

Lines are split after ``\\n`` only, so ``\\r\\n`` stays part of its line and a last line
without a newline keeps no EOL; hunks therefore reproduce CRLF files and missing final
newlines exactly.

NOTE: the matcher is :class:`difflib.SequenceMatcher` with ``autojunk=False`` on lines
interned to ints, run only on the part between the common prefix and suffix (a security
fix is usually a few lines in a long file). Grouping follows ``diff -u``: changes
separated by at most ``2 * context`` unchanged lines share one hunk.
"""

from __future__ import annotations

from difflib import SequenceMatcher

from patchd.engine.model import Hunk, HunkLine

Opcode = tuple[str, int, int, int, int]


def split_lines(data: bytes) -> list[bytes]:
    """Split after every ``\\n``, keeping it; a trailing partial line is kept without EOL."""
    if not data:
        return []
    if data.count(b"\r") == data.count(b"\r\n"):
        # NOTE: bytes.splitlines splits at \n, \r\n and a lone \r; without a lone \r
        # it is exactly the split wanted here, and much faster than a Python loop.
        return data.splitlines(keepends=True)
    parts = data.split(b"\n")
    lines = [p + b"\n" for p in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


def _common_run(a: list[bytes], b: list[bytes], limit: int, *, front: bool) -> int:
    """Length (<= limit) of the common prefix (or suffix) of ``a`` and ``b``."""
    # NOTE: compares slices in steps (C speed), then line by line inside the failing step.
    done, step = 0, 1024
    while step:
        while done + step <= limit:
            if front:
                same = a[done : done + step] == b[done : done + step]
            else:
                same = (
                    a[len(a) - done - step : len(a) - done]
                    == b[len(b) - done - step : len(b) - done]
                )
            if not same:
                break
            done += step
        step //= 32
    return done


def _opcodes(a: list[bytes], b: list[bytes]) -> list[Opcode]:
    """All opcodes (equal runs included) turning ``a`` into ``b``."""
    n = min(len(a), len(b))
    pre = _common_run(a, b, n, front=True)
    suf = _common_run(a, b, n - pre, front=False)
    ids: dict[bytes, int] = {}
    ma = [ids.setdefault(x, len(ids)) for x in a[pre : len(a) - suf]]
    mb = [ids.setdefault(x, len(ids)) for x in b[pre : len(b) - suf]]
    ops: list[Opcode] = []
    if pre:
        ops.append(("equal", 0, pre, 0, pre))
    if ma or mb:
        matcher = SequenceMatcher(None, ma, mb, autojunk=False)
        for tag, i1, i2, j1, j2 in matcher.get_opcodes():
            ops.append((tag, i1 + pre, i2 + pre, j1 + pre, j2 + pre))
    if suf:
        ops.append(("equal", len(a) - suf, len(a), len(b) - suf, len(b)))
    return ops


def opcodes(a: list[bytes], b: list[bytes]) -> list[Opcode]:
    """All opcodes (``equal`` runs included) turning line list ``a`` into ``b``."""
    return _opcodes(a, b)


def _groups(ops: list[Opcode], context: int) -> list[list[Opcode]]:
    """Cut the opcodes into hunks with ``context`` lines around each change (as ``diff -u``)."""
    if not any(op[0] != "equal" for op in ops):
        return []
    ops = list(ops)
    if ops[0][0] == "equal":
        _, i1, i2, j1, j2 = ops[0]
        ops[0] = ("equal", max(i1, i2 - context), i2, max(j1, j2 - context), j2)
    if ops[-1][0] == "equal":
        _, i1, i2, j1, j2 = ops[-1]
        ops[-1] = ("equal", i1, min(i2, i1 + context), j1, min(j2, j1 + context))
    groups: list[list[Opcode]] = []
    group: list[Opcode] = []
    for tag, i1, i2, j1, j2 in ops:
        if tag == "equal" and i2 - i1 > 2 * context:
            group.append((tag, i1, min(i2, i1 + context), j1, min(j2, j1 + context)))
            groups.append(group)
            group = []
            i1, j1 = max(i1, i2 - context), max(j1, j2 - context)
        group.append((tag, i1, i2, j1, j2))
    if group and not (len(group) == 1 and group[0][0] == "equal"):
        groups.append(group)
    return groups


def _start(first: int, length: int) -> int:
    """The header start line: 1-based, or the line before for an empty side (as diff)."""
    return first + 1 if length else first


def diff_lines(a: list[bytes], b: list[bytes], *, context: int = 3) -> list[Hunk]:
    """Hunks turning line list ``a`` into ``b``; empty when they are equal."""
    if context < 0:
        raise ValueError("context must be >= 0")
    hunks: list[Hunk] = []
    for group in _groups(_opcodes(a, b), context):
        lines: list[HunkLine] = []
        for tag, i1, i2, j1, j2 in group:
            if tag == "equal":
                lines.extend(HunkLine(" ", x) for x in a[i1:i2])
                continue
            lines.extend(HunkLine("-", x) for x in a[i1:i2])
            lines.extend(HunkLine("+", x) for x in b[j1:j2])
        old_first, old_end = group[0][1], group[-1][2]
        new_first, new_end = group[0][3], group[-1][4]
        old_len, new_len = old_end - old_first, new_end - new_first
        hunks.append(
            Hunk(
                old_start=_start(old_first, old_len),
                old_len=old_len,
                new_start=_start(new_first, new_len),
                new_len=new_len,
                lines=tuple(lines),
            )
        )
    return hunks
