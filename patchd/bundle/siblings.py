"""``patchd build --sibling OLD2 NEW2``: check the sibling release pairs, diff each one.

The builder opens every sibling pair like OLD and NEW (same work folder, extracted in
parallel with them); this module checks them against the main pair and turns each into a
:class:`~patchd.bundle.classifiers.siblings.SiblingRelease` for the sibling classifier.
Every refusal is a :class:`~patchd.errors.UsageError` (exit 2) naming the pair.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from patchd.bundle.classifiers.siblings import (
    SiblingRelease,
    SiblingsClassifier,
    default_min_siblings,
)
from patchd.bundle.report import SiblingEntry, SiblingsInfo
from patchd.errors import UsageError
from patchd.release.tree import ReleaseDiff, diff_trees
from patchd.versions import Version

if TYPE_CHECKING:
    from patchd.bundle.builder import OpenedRelease

#: A ``--sibling OLD2 NEW2`` pair as given on the command line.
SiblingSources = tuple[Path, Path]


def check_min_siblings(pairs: int, min_siblings: int | None) -> int:
    """The effective ``--min-siblings``: given, or a majority of ``pairs``."""
    if min_siblings is None:
        return default_min_siblings(pairs) if pairs else 0
    if not pairs:
        raise UsageError("--min-siblings needs sibling releases: give --sibling OLD2 NEW2")
    if min_siblings < 1:
        raise UsageError(f"--min-siblings must be 1 or more, not {min_siblings}")
    if min_siblings > pairs:
        raise UsageError(
            f"--min-siblings {min_siblings} is more than the {pairs} sibling pair(s) given "
            "with --sibling OLD2 NEW2"
        )
    return min_siblings


def _label(sources: SiblingSources) -> str:
    return f"--sibling {sources[0]} {sources[1]}"


def check_sibling(
    old: OpenedRelease,
    new: OpenedRelease,
    pair: tuple[OpenedRelease, OpenedRelease],
    sources: SiblingSources,
) -> None:
    """Refuse a sibling pair of another CMS, one whose OLD2 is not older than its NEW2,
    and the main pair itself given as a sibling."""
    old2, new2 = pair
    cms = old.installation.cms
    for rel in (old2, new2):
        if rel.installation.cms != cms:
            raise UsageError(
                f"{_label(sources)}: {rel.source.name} is {rel.installation.cms} "
                f"{rel.version}, but OLD is {cms} {old.version}: sibling releases must be "
                "of the same CMS"
            )
    if not Version.parse(old2.version) < Version.parse(new2.version):
        raise UsageError(
            f"{_label(sources)}: OLD2 ({old2.version}) must be older than NEW2 ({new2.version})"
        )
    if Version.parse(new2.version) == Version.parse(new.version):
        raise UsageError(
            f"{_label(sources)}: NEW2 is NEW's version {new.version}; a sibling is the "
            "release of another branch on the same day"
        )


def sibling_diff(pair: tuple[OpenedRelease, OpenedRelease]) -> ReleaseDiff:
    """The sibling pair's release diff (OLD2 -> NEW2)."""
    old2, new2 = pair
    return diff_trees(old2.root, new2.root, old_links=old2.links, new_links=new2.links)


def sibling_release(pair: tuple[OpenedRelease, OpenedRelease], diff: ReleaseDiff) -> SiblingRelease:
    """The sibling pair's release diff, indexed for the classifier (label: NEW2's version)."""
    old2, new2 = pair

    def has_file(path: str) -> bool:
        return _is_file(old2.root, path) or _is_file(new2.root, path)

    return SiblingRelease.from_diff(new2.version, diff, old2.read, has_file)


def _is_file(root: Path, path: str) -> bool:
    try:
        return stat.S_ISREG(os.lstat(os.path.join(root, path)).st_mode)
    except (FileNotFoundError, NotADirectoryError):
        return False


def sibling_classifier(
    old: OpenedRelease,
    new: OpenedRelease,
    pairs: Sequence[tuple[OpenedRelease, OpenedRelease]],
    sources: Sequence[SiblingSources],
    min_siblings: int | None,
) -> tuple[SiblingsClassifier, SiblingsInfo, list[ReleaseDiff]]:
    """Check every pair, diff it, and make the classifier, the report's record and the
    pairs' diffs (the branch variants are cut from them, :mod:`patchd.bundle.branches`)."""
    need = check_min_siblings(len(pairs), min_siblings)
    seen: dict[str, SiblingSources] = {}
    for pair, src in zip(pairs, sources, strict=True):
        check_sibling(old, new, pair, src)
        label = pair[1].version
        if label in seen:
            raise UsageError(
                f"{_label(src)}: NEW2 {label} is also NEW2 of {_label(seen[label])}; give each "
                "sibling pair once"
            )
        seen[label] = src
    diffs = [sibling_diff(pair) for pair in pairs]
    releases = [sibling_release(pair, diff) for pair, diff in zip(pairs, diffs, strict=True)]
    info = SiblingsInfo(need, tuple(SiblingEntry(n.version, o.info, n.info) for o, n in pairs))
    return SiblingsClassifier(releases, need), info, diffs
