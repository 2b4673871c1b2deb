"""A 3-way line merge that remembers where every line came from.

Replaying a commit on a tree that is not the commit's parent is a 3-way merge: ``base`` is
the commit's parent blob, ``theirs`` the commit's blob, ``ours`` the file the replay has
built so far. :func:`merge_tagged` carries each of ``ours``' lines' *tag* along (the
provenance: an OLD line number or the commit that added the line) and tags the lines the
commit adds with the commit, so after a replay every line of the result says which commit,
if any, put it there. The attribution of a release hunk then reads those tags instead of
matching line texts (where repeated lines such as ``}`` align differently).

Merge rule (diff3, as ``git merge-file`` but with one difference): a change of the commit
(a run of ``base`` lines replaced by other lines) is applied when ``ours`` kept every one of
those ``base`` lines unchanged and in one piece; an insertion is applied when the lines on
both sides of its point are still neighbours in ``ours``, or when only one side is (``ours``
changed the lines on the other side: the insertion stays next to the side it was next to).
Anything else is a conflict: ``ours`` changed the same lines, or inserted lines at the same
point. Unlike git, two changes on *adjacent* but different lines are not a conflict: they
touch disjoint lines, so the result is well-defined (git flags them to be careful about
insertion order, which the rule above fixes).
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass

from patchd.release.linediff import opcodes

Tag = Hashable


@dataclass(frozen=True)
class MergeConflict:
    """Where the commit's change could not be placed: ``base`` lines ``[start, end)``."""

    start: int
    end: int
    theirs: tuple[bytes, ...]

    def describe(self) -> str:
        """``lines 10-12 of the commit's parent`` in words."""
        if self.end > self.start:
            return f"the commit changes lines {self.start + 1}-{self.end} of its parent"
        return f"the commit inserts lines after line {self.start} of its parent"


@dataclass(frozen=True)
class TaggedMerge:
    """The merged lines with their tags, and the tags of the ``ours`` lines it removed."""

    lines: list[bytes]
    tags: list[Tag]
    removed: list[Tag]
    conflicts: tuple[MergeConflict, ...]


def merge_tagged(
    base: Sequence[bytes],
    ours: Sequence[bytes],
    ours_tags: Sequence[Tag],
    theirs: Sequence[bytes],
    new_tag: Tag,
) -> TaggedMerge:
    """Apply the change ``base`` -> ``theirs`` to ``ours``; added lines get ``new_tag``.

    With conflicts, ``lines``/``tags`` are ``ours`` unchanged.
    """
    base, ours, theirs = list(base), list(ours), list(theirs)
    if ours == base:
        # NOTE: the common case (ours is the parent): the commit's own diff, nothing to place.
        where = {i: i for i in range(len(base))}
        contiguous_ours = True
    else:
        where = {}
        for tag, i1, i2, j1, _j2 in opcodes(base, ours):
            if tag == "equal":
                for k in range(i2 - i1):
                    where[i1 + k] = j1 + k
        contiguous_ours = False
    edits: list[tuple[int, int, list[bytes]]] = []  # (ours start, ours end, new lines)
    conflicts: list[MergeConflict] = []
    for tag, i1, i2, j1, j2 in opcodes(base, theirs):
        if tag == "equal":
            continue
        placed = _place(i1, i2, where, len(base), len(ours), contiguous_ours)
        if placed is None:
            conflicts.append(MergeConflict(i1, i2, tuple(theirs[j1:j2])))
            continue
        edits.append((placed[0], placed[1], theirs[j1:j2]))
    if conflicts:
        return TaggedMerge(ours, list(ours_tags), [], tuple(conflicts))
    lines, tags, removed = list(ours), list(ours_tags), []
    for start, end, new in sorted(edits, key=lambda e: (e[0], e[1]), reverse=True):
        removed.extend(tags[start:end])
        lines[start:end] = new
        tags[start:end] = [new_tag] * len(new)
    return TaggedMerge(lines, tags, removed, ())


def _place(
    i1: int, i2: int, where: dict[int, int], n_base: int, n_ours: int, identity: bool
) -> tuple[int, int] | None:
    """The ``ours`` range ``[start, end)`` that ``base[i1:i2]`` became, or None (conflict)."""
    if identity:
        return i1, i2
    if i2 > i1:
        first, last = where.get(i1), where.get(i2 - 1)
        if first is None or last is None or last - first != i2 - 1 - i1:
            return None
        if any(where.get(k) != first + (k - i1) for k in range(i1, i2)):
            return None
        return first, last + 1
    # an insertion before base line i1
    before = -1 if i1 == 0 else where.get(i1 - 1)
    after = n_ours if i1 == n_base else where.get(i1)
    if before is not None and after is not None:
        if after != before + 1:
            return None  # ours inserted lines at the same point: order unknown
        return after, after
    if before is not None:
        return before + 1, before + 1
    if after is not None:
        return after, after
    return None
