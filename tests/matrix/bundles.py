"""Make test bundles from the fixture families (until ``patchd build`` writes them).

The bundle's ``patch.diff`` is the diff of the family's vulnerable files between the last
vulnerable release and the security release; ``edit`` may change the new side (or add
files to it) to make a deliberately broken bundle.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from patchd.bundle.manifest import write_bundle
from patchd.engine.render import render_patch
from patchd.release.tree import diff_trees
from patchd_fixtures.families import family, release_tree
from patchd_fixtures.releases import write_tree

Edit = Callable[[dict[str, bytes]], None]


def make_bundle(
    dest: Path,
    name: str,
    *,
    edit: Edit | None = None,
    bundle_id: str | None = None,
    min_php: str | None = None,
) -> Path:
    """Write a bundle for fixture family ``name`` into ``dest`` (a new folder)."""
    fam = family(name)
    last = fam.vulnerable_versions[-1]
    old_tree = release_tree(name, last)
    new_tree = release_tree(name, fam.security_release)
    old = {p: old_tree[p] for p in fam.vulnerable_files}
    new = {p: new_tree[p] for p in fam.vulnerable_files}
    if edit is not None:
        edit(new)
        for path in new:
            if path not in old and path in old_tree:
                old[path] = old_tree[path]
    work = dest.parent / f".{dest.name}-trees"
    write_tree(old, work / "old")
    write_tree(new, work / "new")
    diff = diff_trees(work / "old", work / "new")
    data = render_patch(fc.to_file_patch() for fc in diff.files)
    fields = {
        "id": bundle_id or f"{name}-test",
        "title": f"{fam.cms} test bundle",
        "cms": fam.cms,
        "affected": ",".join(fam.vulnerable_versions),
        "fixed_in": fam.security_release,
        "min_php": min_php,
        "summary": {"de": "Sicherheitskorrektur", "en": "Security fix"},
        "variants": [{"versions": ",".join(fam.vulnerable_versions), "file": "patch.diff"}],
    }
    write_bundle(dest, fields, {"patch.diff": data})
    return dest


def append_to(path: str, text: str) -> Edit:
    """An edit that appends ``text`` to ``path`` on the new side."""

    def edit(files: dict[str, bytes]) -> None:
        files[path] = files[path] + text.encode()

    return edit


def insert_after(path: str, anchor: str, text: str, tree: dict[str, bytes] | None = None) -> Edit:
    """An edit that inserts ``text`` after the first line holding ``anchor`` in ``path``."""

    def edit(files: dict[str, bytes]) -> None:
        data = files[path] if path in files else (tree or {})[path]
        lines = data.decode().splitlines(keepends=True)
        at = next(i for i, ln in enumerate(lines) if anchor in ln)
        lines.insert(at + 1, text)
        files[path] = "".join(lines).encode()

    return edit
