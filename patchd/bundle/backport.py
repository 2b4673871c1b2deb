"""Backports: port the minimal patch to an older release and store an exact-context variant.

Each file of the minimal patch (made against OLD) is ported to an older release in this
order, the first that succeeds wins:

1. the patch applies there as it is (offsets allowed, no fuzz);
2. a 3-way merge (:mod:`patchd.bundle.merge3`, ``git merge-file``): base = OLD's file,
   theirs = OLD's file with the patch, ours = the older release's file. This ports the
   fix where the older release changed the lines around it;
3. the same merge chained from the nearest newer backport that ported the file: base =
   that release's file, theirs = its patched file (code that changed in steps along the
   branch);
4. the merge's conflicts resolved by a person (``--review``; recorded in the rules file
   by version, conflict id and a digest of both sides, so a rebuild reproduces it);
5. fuzz, only when asked (``--fuzz N``).

A file that none of these ports is listed in the build report with each conflict's two
sides (the release's lines and the patched lines), for a person.

The variant's ``method`` is the strongest step any of its files needed: ``exact`` <
``merge`` < ``resolved`` < ``fuzz``.

When every file ports, the result is diffed again against that release's files, giving
a variant whose hunks apply there at their exact positions with exact context (what a
rollout's dry run needs), and that variant is validated like ``patch.diff`` plus one more
check, ``same-changes``: the variant adds and removes exactly the lines the minimal patch does.

NOTE: a variant is stored only when *every* hunk ports. A partial variant would report
installations as patched while part of the fix is missing; the hunks that do not port are
listed in the build report as needing manual work instead, per version.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from patchd.bundle.merge3 import Merge, merge_file, resolve_conflicts
from patchd.bundle.report import CheckEntry, ManualHunk, VariantEntry
from patchd.bundle.rules import Resolution, conflict_digest
from patchd.bundle.validate import ReadFile, validate_patch
from patchd.engine.apply import FileOutcome, apply_file
from patchd.engine.model import FilePatch, Hunk
from patchd.release.linediff import diff_lines, split_lines

#: The build-report hunk id of each shipped hunk: ``ids[path][index]``.
HunkIds = dict[str, list[str]]


@dataclass(frozen=True)
class Ported:
    """The outcome for one backport release."""

    version: str
    entry: VariantEntry
    patches: tuple[FilePatch, ...] | None  # the exact-context variant; None when not stored
    checks: tuple[CheckEntry, ...]
    patched: dict[str, bytes | None]


@dataclass(frozen=True)
class Newer:
    """A newer backport that ported: its version, its files and its patched files."""

    version: str
    read: ReadFile
    patched: dict[str, bytes | None]


def withheld(ported: Ported, manual: Sequence[ManualHunk]) -> Ported:
    """``ported`` not stored: its version is listed as needing ``manual`` work instead
    (a partial or unchecked variant would report installations as patched)."""
    entry = dataclasses.replace(ported.entry, file=None, status="manual", manual=tuple(manual))
    return Ported(ported.version, entry, None, ported.checks, {})


def failed_checks(checks: Sequence[CheckEntry]) -> tuple[ManualHunk, ...]:
    """The failed validation checks as manual work (named by check, path and detail)."""
    return tuple(ManualHunk(c.check, c.detail.split(":")[0], c.detail) for c in checks if not c.ok)


def variant_file(version: str) -> str:
    """The bundle-relative name of a version's variant diff."""
    return f"variants/{version}.diff"


def port_patch(
    patches: Sequence[FilePatch],
    ids: HunkIds,
    read: ReadFile,
    *,
    version: str,
    fuzz: int,
    php: str | None,
    read_base: ReadFile | None = None,
    newer: Sequence[Newer] = (),
    resolutions: Mapping[str, Resolution] | None = None,
) -> Ported:
    """Port ``patches`` to the release ``read`` reads (its version is ``version``).

    ``read_base`` reads OLD (the release ``patches`` was made against) for the 3-way
    merge; ``newer`` are the newer backports that ported, nearest first, for chaining;
    ``resolutions`` the recorded conflict resolutions of this version by conflict id.
    """
    manual: list[ManualHunk] = []
    methods: set[str] = set()
    offsets: dict[str, int] = {}
    merged: dict[str, str] = {}
    results: dict[str, tuple[bytes | None, bytes | None]] = {}
    for fp in patches:
        old = read(fp.path)
        known = ids.get(fp.path, [])
        outcome = apply_file(fp, old, fuzz=0)
        if outcome.ok:
            results[fp.path] = (old, None if outcome.deleted else outcome.content)
            offsets.update(_offsets(fp.path, outcome, known))
            methods.add("exact")
            continue
        port = _merge(fp, old, read_base, newer, resolutions or {})
        if port.content is not None:
            results[fp.path] = (old, port.content)
            merged[fp.path] = port.how
            methods.add("resolved" if port.resolved else "merge")
            continue
        if fuzz:
            fuzzed = apply_file(fp, old, fuzz=fuzz)
            if fuzzed.ok:
                results[fp.path] = (old, None if fuzzed.deleted else fuzzed.content)
                offsets.update(_offsets(fp.path, fuzzed, known))
                methods.add("fuzz")
                continue
        manual.extend(port.conflicts)
        for h in outcome.hunks:
            # NOTE: HunkOutcome.index is 1-based, like GNU patch's "Hunk #N".
            hunk_id = known[h.index - 1] if 0 < h.index <= len(known) else f"{fp.path}#{h.index}"
            if not h.status.applied and not port.conflicts:
                manual.append(ManualHunk(hunk_id, fp.path, h.reason or h.status.value))
        if outcome.error and not any(m.path == fp.path for m in manual):
            manual.append(ManualHunk(f"{fp.path}@file", fp.path, outcome.error))
    name = variant_file(version)
    method = next((m for m in ("fuzz", "resolved", "merge") if m in methods), "exact")
    if manual:
        entry = VariantEntry(version, None, "manual", offsets, tuple(manual), merged, method)
        return Ported(version, entry, None, (), {})
    variant = tuple(_exact(fp.path, *results[fp.path]) for fp in patches)
    checks = list(validate_patch(variant, read, variant=name, php=php).checks)
    same = _changes(variant) == _changes(patches)
    if not same and method == "resolved":
        # NOTE: a person wrote these lines for code the fix's lines do not fit; that the
        # changes differ is the point. The other checks (exact apply, php -l) still hold.
        detail = "differs from patch.diff where a person resolved a conflict (rules file)"
        checks.append(CheckEntry(name, "same-changes", True, detail))
    else:
        detail = "" if same else "the variant adds or removes other lines than patch.diff"
        checks.append(CheckEntry(name, "same-changes", same, detail))
    patched = {path: new for path, (_old, new) in results.items()}
    entry = VariantEntry(version, name, "ok", offsets, (), merged, method)
    return Ported(version, entry, variant, tuple(checks), patched)


@dataclass(frozen=True)
class _Port:
    content: bytes | None  # the merged file; None when no merge was clean
    how: str
    conflicts: tuple[ManualHunk, ...]
    resolved: bool = False


def _merge(
    fp: FilePatch,
    ours: bytes | None,
    read_base: ReadFile | None,
    newer: Sequence[Newer],
    resolutions: Mapping[str, Resolution],
) -> _Port:
    """3-way merge of ``fp``'s change into ``ours``: from OLD, then chained from newer,
    then the first merge with its conflicts resolved as recorded."""
    if ours is None or fp.old_path is None or fp.new_path is None or read_base is None:
        return _Port(None, "", ())  # creations and deletions port only as they are
    first: tuple[ManualHunk, ...] = ()
    first_merge: tuple[str, Merge] | None = None
    sources: list[tuple[str, bytes | None, bytes | None]] = []
    base = read_base(fp.path)
    if base is not None:
        patched = apply_file(fp, base, fuzz=0)
        sources.append(("3-way merge", base, patched.content if patched.ok else None))
    for n in newer:
        if fp.path in n.patched:
            sources.append((f"3-way merge via {n.version}", n.read(fp.path), n.patched[fp.path]))
            break  # NOTE: the nearest newer release that ported this file
    for how, b, theirs in sources:
        if b is None or theirs is None:
            continue
        m = merge_file(b, ours, theirs)
        if m.clean:
            return _Port(m.content, how, ())
        if not first:
            first_merge = (how, m)
            first = tuple(
                ManualHunk(
                    f"{fp.path}@conflict{i}",
                    fp.path,
                    f"conflict ({how}): the release changed the lines the fix changes",
                    c.ours,
                    c.theirs,
                )
                for i, c in enumerate(m.conflicts, 1)
            )
    if first_merge is not None and resolutions:
        return _resolved(first_merge, first, resolutions)
    return _Port(None, "", first)


def _resolved(
    first_merge: tuple[str, Merge],
    conflicts: tuple[ManualHunk, ...],
    resolutions: Mapping[str, Resolution],
) -> _Port:
    """The first merge with every conflict replaced by its recorded resolution, or the
    conflicts (stale or missing resolutions say so)."""
    how, merge = first_merge
    answers: list[bytes] = []
    left: list[ManualHunk] = []
    for c in conflicts:
        res = resolutions.get(c.hunk)
        if res is None:
            left.append(c)
        elif res.resolve.conflict != conflict_digest(c.ours, c.theirs):
            left.append(
                ManualHunk(
                    c.hunk,
                    c.path,
                    f"{c.reason}; the resolution recorded for it no longer fits (the conflict "
                    "changed): resolve it again with --review",
                    c.ours,
                    c.theirs,
                )
            )
        else:
            answers.append(res.result.encode("utf-8", "surrogateescape"))
    if left:
        return _Port(None, "", tuple(left))
    content = resolve_conflicts(merge.content, answers)
    return _Port(content, f"{how}, {len(answers)} conflict(s) resolved in review", (), True)


def _offsets(path: str, outcome: FileOutcome, known: list[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for h in outcome.hunks:
        hunk_id = known[h.index - 1] if 0 < h.index <= len(known) else f"{path}#{h.index}"
        if h.status.applied and (h.offset or h.fuzz):
            out[hunk_id] = h.offset
    return out


def _exact(path: str, old: bytes | None, new: bytes | None) -> FilePatch:
    hunks = diff_lines(
        split_lines(old) if old is not None else [],
        split_lines(new) if new is not None else [],
        context=3,
    )
    return FilePatch(
        old_path=path if old is not None else None,
        new_path=path if new is not None else None,
        hunks=tuple(hunks),
    )


def _changes(patches: Sequence[FilePatch]) -> Counter[tuple[str, str, bytes]]:
    out: Counter[tuple[str, str, bytes]] = Counter()
    for fp in patches:
        for h in fp.hunks:
            out.update(_hunk_changes(fp.path, h))
    return out


def _hunk_changes(path: str, h: Hunk) -> list[tuple[str, str, bytes]]:
    return [(path, ln.kind, ln.data) for ln in h.lines if ln.kind != " "]
