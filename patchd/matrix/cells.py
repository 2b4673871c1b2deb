"""Resolve a matrix into cells and materialise each cell as an installation folder.

A cell is one release x one extension set x one PHP version x one modification set. Its
installation is a fresh copy of the release under the scratch folder, with the extension
set added and the customer modifications applied, so cells never share files.
"""

from __future__ import annotations

import itertools
import json
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from patchd.cms import DETECTORS
from patchd.engine.apply import apply_file
from patchd.engine.parse import parse_diff
from patchd.engine.paths import safe_relpath
from patchd.errors import PatchdError
from patchd.matrix.model import (
    MAX_CELLS,
    ExtensionSpec,
    Matrix,
    MatrixError,
    ModificationSet,
    PatchChange,
    ReleaseSpec,
    SearchReplace,
    StubExtension,
)
from patchd.matrix.phpbin import PhpRuntime, find_runtime
from patchd.release.archive import open_release
from patchd.safefs import SafeRoot
from patchd.versions import Version, VersionSet


class CellSetupError(PatchdError):
    """A cell could not be built (a modification does not fit its release, ...)."""


@dataclass(frozen=True)
class Release:
    """A release of the matrix, unpacked: its label, CMS, version and root folder."""

    label: str
    cms: str
    version: str
    root: Path


@dataclass(frozen=True)
class Cell:
    """One configuration to test."""

    release: Release
    extensions_name: str
    extensions: tuple[ExtensionSpec, ...]
    php: PhpRuntime
    modifications_name: str
    modifications: ModificationSet

    @property
    def id(self) -> str:
        """``wordpress@6.4.2 / ext none / PHP 8.2 / mod none``: unique within a matrix."""
        return (
            f"{self.release.label} / ext {self.extensions_name} / {self.php.label}"
            f" / mod {self.modifications_name}"
        )


def _fixture_releases(spec: ReleaseSpec, scratch: Path) -> list[Release]:
    try:
        from patchd_fixtures.families import family
        from patchd_fixtures.releases import write_release_tree
    except ImportError:  # pragma: no cover - the fixtures ship with the repository
        raise MatrixError("fixture releases need the patchd_fixtures package") from None
    assert spec.fixture is not None
    name, versions = spec.fixture.split("@", 1)
    try:
        fam = family(name)
    except KeyError as exc:
        raise MatrixError(f"field releases: {exc.args[0]}") from None
    wanted = VersionSet.parse(versions)
    chosen = [v for v in fam.versions if Version.parse(v) in wanted]
    if not chosen:
        raise MatrixError(
            f"field releases: fixture {spec.fixture}: no such version (known: {fam.versions})"
        )
    out = []
    for version in chosen:
        dest = scratch / "releases" / f"{name}-{version}"
        if not dest.exists():
            write_release_tree(name, version, dest)
        out.append(Release(f"{name}@{version}", fam.cms, version, dest))
    return out


def _detect(root: Path) -> tuple[str | None, str | None]:
    """``(cms, version)`` read by the detectors from ``root``."""
    with SafeRoot(root.resolve()) as safe:
        for detector in DETECTORS:
            try:
                inst = detector.detect(safe, "")
            except (OSError, PatchdError):
                continue
            if inst is not None:
                return inst.cms, inst.version
    return None, None


def _file_release(spec: ReleaseSpec, matrix: Matrix, scratch: Path) -> Release:
    source = matrix.resolve(spec.archive or spec.folder or "")
    if spec.folder and not source.is_dir():
        raise MatrixError(f"field releases: folder {source}: no such folder")
    root = open_release(source, scratch / "releases")
    cms, version = spec.cms, spec.version
    if cms is None or version is None:
        found_cms, found_version = _detect(root)
        cms, version = cms or found_cms, version or found_version
    if cms is None or version is None:
        raise MatrixError(
            f"field releases: {source}: cannot detect the CMS or version; give cms and version"
        )
    return Release(f"{cms}@{version}", cms, version, root)


def resolve_releases(matrix: Matrix, scratch: Path) -> list[Release]:
    """Every release of ``matrix``, unpacked or written under ``scratch/releases``."""
    out: list[Release] = []
    for spec in matrix.releases:
        if spec.fixture:
            out.extend(_fixture_releases(spec, scratch))
        else:
            out.append(_file_release(spec, matrix, scratch))
    labels = [r.label for r in out]
    dupes = sorted({x for x in labels if labels.count(x) > 1})
    if dupes:
        raise MatrixError(f"field releases: listed twice: {', '.join(dupes)}")
    return out


def plan_cells(matrix: Matrix, scratch: Path) -> list[Cell]:
    """Every cell of ``matrix``: releases x extension sets x PHP x modification sets."""
    releases = resolve_releases(matrix, scratch)
    runtimes = [find_runtime(spec) for spec in matrix.php]
    total = len(releases) * len(matrix.extensions) * len(runtimes) * len(matrix.modifications)
    if total > MAX_CELLS:
        raise MatrixError(f"{total} cells; at most {MAX_CELLS} (split the matrix)")
    return [
        Cell(rel, ext_name, exts, php, mod_name, mods)
        for rel, (ext_name, exts), php, (mod_name, mods) in itertools.product(
            releases, matrix.extensions.items(), runtimes, matrix.modifications.items()
        )
    ]


# -- materialisation ---------------------------------------------------------------------


def _stub_files(cms: str, stub: StubExtension) -> tuple[str, dict[str, str]]:
    """The folder (relative to the installation) and files of a generated extension."""
    n, v = stub.name, stub.version
    if cms == "wordpress":
        base = f"wp-content/plugins/{n}"
        main = (
            f"<?php\n/**\n * Plugin Name: {n}\n * Version: {v}\n */\n\n"
            "defined( 'ABSPATH' ) || exit;\n"
        )
        files = {f"{n}.php": main}
    elif cms == "typo3":
        base = f"typo3conf/ext/{n}"
        emconf = (
            "<?php\n\n$EM_CONF[$_EXTKEY] = [\n"
            f"    'title' => '{n}',\n    'version' => '{v}',\n    'state' => 'stable',\n];\n"
        )
        files = {"ext_emconf.php": emconf}
    elif cms == "roundcube":
        base = f"plugins/{n}"
        cls = n.replace("-", "_").replace(".", "_")
        main = (
            f"<?php\n\nclass {cls} extends rcube_plugin\n{{\n"
            "    public function init()\n    {\n    }\n}\n"
        )
        files = {f"{n}.php": main, "composer.json": json.dumps({"name": n, "version": v})}
    else:
        base, files = f"extensions/{n}", {"README": f"{n} {v}\n"}
    return base, {**files, **stub.files}


def _write_inside(root: Path, rel: str, data: bytes) -> None:
    clean = safe_relpath(rel, strip=0)
    target = root / clean
    for parent in [*reversed(target.relative_to(root).parents)][1:]:
        if (root / parent).is_symlink():
            raise CellSetupError(f"{rel}: a folder on the way is a symlink")
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.is_symlink():
        raise CellSetupError(f"{rel}: is a symlink")
    target.write_bytes(data)


def add_extensions(root: Path, cms: str, specs: Sequence[ExtensionSpec], matrix: Matrix) -> None:
    """Add every extension of a set to the installation at ``root``."""
    for spec in specs:
        if spec.stub is not None:
            base, files = _stub_files(cms, spec.stub)
            for rel, text in files.items():
                _write_inside(root, f"{base}/{rel}", text.encode("utf-8"))
            continue
        assert spec.folder is not None and spec.into is not None
        source = matrix.resolve(spec.folder)
        if not source.is_dir():
            raise CellSetupError(f"extension folder {source}: no such folder")
        dest = root / safe_relpath(spec.into, strip=0)
        if dest.exists():
            raise CellSetupError(f"extension into {spec.into}: exists in the release already")
        # NOTE: symlinks are copied as links (never followed out of the source folder);
        # the bundle's checked apply refuses to write through them.
        shutil.copytree(source, dest, symlinks=True)


def apply_modifications(root: Path, mods: ModificationSet, matrix: Matrix) -> None:
    """Apply the customer edits of ``mods`` to the installation at ``root``."""
    for change in mods.changes:
        if isinstance(change, SearchReplace):
            target = root / safe_relpath(change.file, strip=0)
            if target.is_symlink() or not target.is_file():
                raise CellSetupError(f"modification: {change.file}: no such file")
            text = target.read_bytes()
            search = change.search.encode("utf-8")
            if search not in text:
                raise CellSetupError(f"modification: search text not found in {change.file}")
            target.write_bytes(text.replace(search, change.replace.encode("utf-8")))
        elif isinstance(change, PatchChange):
            source = matrix.resolve(change.patch)
            try:
                patches = parse_diff(source.read_bytes(), source=str(source))
            except OSError as exc:
                raise CellSetupError(f"modification patch {source}: {exc.strerror}") from None
            for fp in patches:
                target = root / safe_relpath(fp.path, strip=0)
                old = target.read_bytes() if target.is_file() else None
                outcome = apply_file(fp, old)
                if not outcome.ok:
                    raise CellSetupError(
                        f"modification patch {source.name}: {fp.path}: {outcome.reason}"
                    )
                if outcome.deleted:
                    target.unlink()
                else:
                    _write_inside(root, fp.path, outcome.content or b"")


def materialise(cell: Cell, dest: Path, matrix: Matrix) -> Path:
    """Build the installation of ``cell`` in the new folder ``dest``; returns ``dest``."""
    if dest.exists():
        raise CellSetupError(f"{dest}: exists already")
    shutil.copytree(cell.release.root, dest, symlinks=True)
    add_extensions(dest, cell.release.cms, cell.extensions, matrix)
    apply_modifications(dest, cell.modifications, matrix)
    return dest
