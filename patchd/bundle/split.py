"""Split a mixed hunk into the part to ship and the part to leave out.

A release hunk may mix a security change with an unrelated one a few lines away. Given a
predicate that says which changed lines to keep, :func:`split_hunk` returns two lists of
hunks, both computed against the OLD file:

- *kept*: the hunk with only the kept changes applied. Left-out removals turn back into
  context lines and left-out additions disappear, so the kept hunks apply to the old file
  and produce exactly "old file + kept changes". Their ``new_start`` assumes no other hunk
  of the file is applied before them; when the builder ships several hunks of one file it
  renumbers them with :func:`renumber`.
- *dropped*: the same for the left-out changes (for the build report).

Each result is regrouped with ``context`` lines of context: kept changes far apart become
separate hunks, close ones share a hunk. The split is impossible (None) when one run of
changed lines (changes not separated by at least one unchanged line) mixes kept and
left-out lines: there is no way to tell which removed line pairs with which added one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

from patchd.bundle.interface import ReleaseHunkLike
from patchd.engine.model import Hunk, HunkLine

KeepLine = Callable[[int, HunkLine], bool]


def split_hunk(
    rh: ReleaseHunkLike, keep_line: KeepLine, *, context: int = 3
) -> tuple[list[Hunk], list[Hunk]] | None:
    """Split ``rh.hunk`` by ``keep_line(index_in_hunk_lines, line)`` (asked for changed lines).

    Returns ``(kept, dropped)`` or None when a run of adjacent changes is mixed.
    """
    hunk = rh.hunk
    keep = [False] * len(hunk.lines)
    for start, end in change_runs(hunk.lines):
        answers = {bool(keep_line(i, hunk.lines[i])) for i in range(start, end)}
        if len(answers) > 1:
            return None
        value = answers.pop()
        for i in range(start, end):
            keep[i] = value
    kept = _regroup(hunk, keep, context)
    dropped = _regroup(
        hunk, [ln.kind != " " and not k for ln, k in zip(hunk.lines, keep, strict=True)], context
    )
    return kept, dropped


def renumber(hunks: Sequence[Hunk]) -> list[Hunk]:
    """Recompute ``new_start`` of one file's hunks (sorted by ``old_start``) applied together."""
    out: list[Hunk] = []
    delta = 0
    for h in sorted(hunks, key=lambda h: h.old_start):
        # NOTE: a zero-length range names the line *before* it (0 = start of file).
        first_old = h.old_start if h.old_len else h.old_start + 1
        first_new = first_old + delta
        new_start = first_new if h.new_len else first_new - 1
        out.append(replace(h, new_start=max(new_start, 0)))
        delta += h.new_len - h.old_len
    return out


def change_runs(lines: Sequence[HunkLine]) -> list[tuple[int, int]]:
    """``[start, end)`` index ranges of adjacent changed lines."""
    runs: list[tuple[int, int]] = []
    i = 0
    while i < len(lines):
        if lines[i].kind == " ":
            i += 1
            continue
        j = i
        while j < len(lines) and lines[j].kind != " ":
            j += 1
        runs.append((i, j))
        i = j
    return runs


def _regroup(hunk: Hunk, include: list[bool], context: int) -> list[Hunk]:
    """Hunks (against the old file) applying only the included changes of ``hunk``."""
    # Neutralise the left-out changes: a removal stays as context, an addition vanishes.
    lines: list[HunkLine] = []
    for ln, inc in zip(hunk.lines, include, strict=True):
        if ln.kind == " " or inc:
            lines.append(ln)
        elif ln.kind == "-":
            lines.append(HunkLine(" ", ln.data))
    changed = [i for i, ln in enumerate(lines) if ln.kind != " "]
    if not changed:
        return []
    groups: list[tuple[int, int]] = []
    start, end = changed[0], changed[0]
    for i in changed[1:]:
        if i - end - 1 <= 2 * context:
            end = i
        else:
            groups.append((start, end))
            start, end = i, i
    groups.append((start, end))

    out: list[Hunk] = []
    for first, last in groups:
        lo = max(0, first - context)
        hi = min(len(lines), last + context + 1)
        old_before = sum(1 for ln in lines[:lo] if ln.kind != "+")
        body = tuple(lines[lo:hi])
        old_len = sum(1 for ln in body if ln.kind != "+")
        new_len = sum(1 for ln in body if ln.kind != "-")
        old_start = _first_line(hunk.old_start, hunk.old_len) + old_before
        out.append(
            Hunk(
                old_start=old_start if old_len else old_start - 1,
                old_len=old_len,
                new_start=0,
                new_len=new_len,
                lines=body,
                section=hunk.section,
            )
        )
    return renumber(out)


def _first_line(start: int, length: int) -> int:
    """The 1-based number of a hunk's first line (a zero-length range names the line before)."""
    return start if length else start + 1
