"""Backports: port the minimal patch to an older release and store an exact-context variant.

The minimal patch (made against OLD) is applied to each older release with offsets allowed
and fuzz only when asked (``--fuzz N``). When every hunk ports, the result is diffed
again against that release's files, giving a variant whose hunks apply there at their
exact positions with exact context (what a rollout's dry run needs), and that variant is
validated like ``patch.diff`` plus one more check, ``same-changes``: the variant adds and
removes exactly the lines the minimal patch does.

NOTE: a variant is stored only when *every* hunk ports. A partial variant would report
installations as patched while part of the fix is missing; the hunks that do not port are
listed in the build report as needing manual work instead, per version.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from patchd.bundle.report import CheckEntry, ManualHunk, VariantEntry
from patchd.bundle.validate import ReadFile, validate_patch
from patchd.engine.apply import apply_file
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
) -> Ported:
    """Port ``patches`` to the release ``read`` reads (its version is ``version``)."""
    manual: list[ManualHunk] = []
    offsets: dict[str, int] = {}
    results: dict[str, tuple[bytes | None, bytes | None]] = {}
    for fp in patches:
        old = read(fp.path)
        outcome = apply_file(fp, old, fuzz=fuzz)
        for h in outcome.hunks:
            # NOTE: HunkOutcome.index is 1-based, like GNU patch's "Hunk #N".
            known = ids.get(fp.path, [])
            hunk_id = known[h.index - 1] if 0 < h.index <= len(known) else f"{fp.path}#{h.index}"
            if not h.status.applied:
                manual.append(ManualHunk(hunk_id, fp.path, h.reason or h.status.value))
            elif h.offset or h.fuzz:
                offsets[hunk_id] = h.offset
        if outcome.error and outcome.hunks and all(h.status.applied for h in outcome.hunks):
            manual.append(ManualHunk(f"{fp.path}@file", fp.path, outcome.error))
        if outcome.ok:
            results[fp.path] = (old, None if outcome.deleted else outcome.content)
    name = variant_file(version)
    if manual:
        entry = VariantEntry(version, None, "manual", offsets, tuple(manual))
        return Ported(version, entry, None, (), {})
    variant = tuple(_exact(fp.path, *results[fp.path]) for fp in patches)
    checks = list(validate_patch(variant, read, variant=name, php=php).checks)
    same = _changes(variant) == _changes(patches)
    checks.append(
        CheckEntry(
            name,
            "same-changes",
            same,
            "" if same else "the variant adds or removes other lines than patch.diff",
        )
    )
    patched = {path: new for path, (_old, new) in results.items()}
    entry = VariantEntry(version, name, "ok", offsets, ())
    return Ported(version, entry, variant, tuple(checks), patched)


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
