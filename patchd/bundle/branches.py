"""One bundle per advisory across branches: each sibling branch's own security change.

``patchd build OLD NEW --sibling OLD2 NEW2`` uses the sibling pairs to decide which hunks
of the main release diff are security (:mod:`patchd.bundle.classifiers.siblings`); this
module then gives each sibling branch its own variant, so one bundle covers every branch
the vendor fixed that day:

- the variant is the sibling's *own* change: the runs of OLD2 -> NEW2 whose key (removed
  and added lines, whitespace-normalised, see
  :func:`patchd.bundle.classifiers.siblings.run_key`) is a key of the main minimal patch,
  in the same file. Hunks that also hold other changes are split down to those runs; the
  lines are the sibling's, with the sibling's context and offsets;
- **complete or nothing**: every run of the main patch must be found in the sibling's diff.
  A branch where one is missing gets no variant (its installations: ``no-variant``) and
  the build report names the missing change, for a person: a partial fix would count as
  patched while part of it is missing;
- it is validated like ``patch.diff`` against its own pair: applies exactly to OLD2, its
  changed regions equal NEW2, reverse-applies on NEW2, ``php -l``.

``--backport`` releases of a sibling's branch (same :func:`patchd.versions.branch_start`)
are ported from that sibling's variant, not from the main patch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from patchd.bundle.backport import HunkIds, Ported, failed_checks, variant_file, withheld
from patchd.bundle.classifiers.siblings import RunKey, run_key
from patchd.bundle.report import ManualHunk, VariantEntry
from patchd.bundle.split import change_runs, renumber, split_hunk
from patchd.bundle.validate import ReadFile, validate_patch
from patchd.engine.model import FilePatch, Hunk
from patchd.release.tree import FileChange, ReleaseDiff
from patchd.versions import branch_start


@dataclass(frozen=True)
class BranchVariant:
    """A sibling branch's variant: its OLD2 version, reader, and the port result."""

    version: str
    read: ReadFile
    ported: Ported
    ids: HunkIds


def security_keys(patches: Sequence[FilePatch]) -> dict[str, set[RunKey]]:
    """The run keys of the minimal patch, per file."""
    keys: dict[str, set[RunKey]] = {}
    for fp in patches:
        for h in fp.hunks:
            for start, end in change_runs(h.lines):
                key = run_key(h.lines[start:end])
                if key is not None:
                    keys.setdefault(fp.path, set()).add(key)
    return keys


def same_branch(a: str, b: str) -> bool:
    """Whether two versions belong to one branch (``6.3.1`` and ``6.3.2``)."""
    return branch_start(a) == branch_start(b)


def sibling_variant(
    version: str,
    diff: ReleaseDiff,
    read_old: ReadFile,
    read_new: ReadFile,
    main: Sequence[FilePatch],
    *,
    php: str | None,
    label: str,
) -> BranchVariant:
    """The variant of the sibling branch whose OLD2 is ``version`` (see the module doc).

    ``diff`` is OLD2 -> NEW2; ``label`` names the pair in messages (NEW2's version).
    """
    keys = security_keys(main)
    found: dict[str, set[RunKey]] = {}
    patches: list[FilePatch] = []
    ids: HunkIds = {}
    manual: list[ManualHunk] = []
    for change in diff.files:
        want = keys.get(change.path)
        if not want or change.is_link:
            continue
        hunks, hunk_ids = _pick(change, want, found.setdefault(change.path, set()))
        if not hunks:
            continue
        fp = _file_patch(change, hunks)
        if fp is None:
            manual.append(
                ManualHunk(
                    f"{change.path}@{change.kind}",
                    change.path,
                    f"sibling {label}: only part of the {change.kind} file matches the fix",
                )
            )
            continue
        patches.append(fp)
        ids[change.path] = hunk_ids
    for path, wanted in sorted(keys.items()):
        for key in sorted(wanted - found.get(path, set())):
            manual.append(
                ManualHunk(
                    f"{path}@missing",
                    path,
                    f"sibling {label} does not make this change of the fix: {_describe(key)}",
                )
            )
    name = variant_file(version)
    if manual:
        entry = VariantEntry(version, None, "manual", {}, tuple(manual), {}, "sibling")
        return BranchVariant(version, read_old, Ported(version, entry, None, (), {}), ids)
    validated = validate_patch(patches, read_old, variant=name, php=php, read_new=read_new)
    entry = VariantEntry(version, name, "ok", {}, (), {}, "sibling")
    ported = Ported(version, entry, tuple(patches), validated.checks, validated.patched)
    failed = failed_checks(validated.checks)
    return BranchVariant(version, read_old, withheld(ported, failed) if failed else ported, ids)


def _pick(
    change: FileChange, want: set[RunKey], found: set[RunKey]
) -> tuple[list[Hunk], list[str]]:
    """The hunks (split where needed) of ``change`` that carry the wanted runs."""
    out: list[Hunk] = []
    out_ids: list[str] = []
    for rh in change.hunks:
        lines = rh.hunk.lines
        runs = change_runs(lines)
        keyed = [(s, e, run_key(lines[s:e])) for s, e in runs]
        chosen = [(s, e) for s, e, k in keyed if k is not None and k in want]
        if not chosen:
            continue
        found.update(k for _s, _e, k in keyed if k is not None and k in want)
        if len(chosen) == len(runs):
            out.append(rh.hunk)
            out_ids.append(rh.id)
            continue
        keep = {i for s, e in chosen for i in range(s, e)}
        parts = split_hunk(rh, lambda i, _ln, keep=keep: i in keep)
        if parts is None or not parts[0]:
            continue
        out.extend(parts[0])
        out_ids.extend(rh.id for _ in parts[0])
    return out, out_ids


def _file_patch(change: FileChange, hunks: list[Hunk]) -> FilePatch | None:
    ordered = renumber(hunks)
    if change.kind == "modified":
        return FilePatch(change.path, change.path, tuple(ordered))
    whole = len(hunks) == len(change.hunks) and all(
        h is rh.hunk for h, rh in zip(hunks, change.hunks, strict=True)
    )
    if not whole:
        return None
    if change.kind == "added":
        return FilePatch(None, change.path, tuple(ordered))
    return FilePatch(change.path, None, tuple(ordered))


def _describe(key: RunKey) -> str:
    removed, added = key
    parts = [f"- {t}" for t in removed[:2]] + [f"+ {t}" for t in added[:2]]
    more = len(removed) + len(added) - len(parts)
    return "; ".join(parts) + (f" (+{more} more lines)" if more > 0 else "")
