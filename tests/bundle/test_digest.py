"""The bundle digest covers what gates safety (issue 16): every manifest field and every
diff. An edit of any of them is refused by every command that reads a bundle; a bundle
sealed by an older patchd (digest over the diffs only) is refused with the command that
re-seals it, and ``patchd reseal`` re-seals it only when its diffs are untouched."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from patchd.bundle.manifest import MANIFEST, diffs_digest, load_bundle
from patchd.errors import BundleError
from tests.e2e import kit

Edit = Callable[[dict[str, Any]], None]


def _variant0(field: str, value: Any) -> Edit:
    def edit(m: dict[str, Any]) -> None:
        m["variants"][0][field] = value

    return edit


def _file0(field: str, value: Any) -> Edit:
    def edit(m: dict[str, Any]) -> None:
        m["variants"][0]["files"][0][field] = value

    return edit


def _set(field: str, value: Any) -> Edit:
    def edit(m: dict[str, Any]) -> None:
        m[field] = value

    return edit


#: One hand edit per manifest field a reviewer or an attacker could change.
MANIFEST_EDITS: dict[str, Edit] = {
    "min_php": _set("min_php", "5.6"),
    "affected": _set("affected", "6.4.0-6.4.9"),
    "fixed_in": _set("fixed_in", "6.4.9"),
    "severity": _set("severity", "low"),
    "cms": _set("cms", "joomla"),
    "component": _set("component", "plugin-x"),
    "advisories": _set("advisories", ["CVE-2099-9999"]),
    "title": _set("title", "Nothing to see"),
    "summary": _set("summary", {"de": "Nichts.", "en": "Nothing."}),
    "variant versions": _variant0("versions", "6.4.0-6.4.9"),
    "variant file hash": _file0("post_sha256", "0" * 64),
    "variant file path": _file0("path", "wp-includes/other.php"),
    "skipped_checks added": _set("skipped_checks", ["php-lint"]),
}


REPO_PATCHES = Path(__file__).resolve().parents[2] / "patches"


@pytest.fixture(scope="module")
def sealed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The repository's WordPress bundle (variants with files and hashes)."""
    return _copy(REPO_PATCHES / "wp-2026-001", tmp_path_factory.mktemp("sealed") / "bundle")


def _copy(sealed: Path, dest: Path) -> Path:
    shutil.copytree(sealed, dest)
    return dest


def _edit_manifest(bundle: Path, edit: Edit) -> None:
    path = bundle / MANIFEST
    data = yaml.safe_load(path.read_text())
    edit(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """An inventory, an installation folder, a matrix file and a ledger with one run."""
    base = tmp_path_factory.mktemp("readers")
    kit.install_wordpress(base / "srv" / "p1", "6.4.2")
    inv = kit.write_inventory(
        base / "accounts.yaml",
        {"web01": {"transport": "local"}},
        [kit.account("p1", "web01", base / "srv" / "p1", docroots=["html"])],
    )
    matrix = base / "matrix.yaml"
    matrix.write_text("releases: []\n")
    return {"inv": inv, "inst": base / "srv" / "p1" / "html", "matrix": matrix, "base": base}


def _readers(bundle: Path, w: dict[str, Path], out: Path) -> dict[str, list[str]]:
    """Every command that reads a bundle, as CLI arguments."""
    b = str(bundle)
    return {
        "show": ["show", b],
        "apply": ["apply", b, str(w["inst"]), "--dry-run"],
        "test": ["test", b, "--matrix", str(w["matrix"])],
        "rollout": ["rollout", b, "--accounts", str(w["inv"]), "--dry-run", "--yes"],
        "notify": [
            "notify",
            "--bundle",
            b,
            "--accounts",
            str(w["inv"]),
            "--from",
            "s@hoster.example",
            "--preview",
            str(out),
        ],
        "report": ["report", "--bundle", b],
        "scans diff": ["scans", "diff", "1", "1", "--bundle", b],
    }


@pytest.mark.parametrize("field", sorted(MANIFEST_EDITS))
def test_every_manifest_edit_is_refused_by_every_reader(
    field: str, sealed: Path, world: dict[str, Path], tmp_path: Path
) -> None:
    bundle = _copy(sealed, tmp_path / "bundle")
    _edit_manifest(bundle, MANIFEST_EDITS[field])
    for name, args in _readers(bundle, world, tmp_path / "out").items():
        res = kit.patchd(tmp_path / "ledger.db", *args)
        assert res.code == 2, (field, name, res.out, res.err)
        assert "digest mismatch" in res.err, (field, name, res.err)
        assert "manifest.yaml or the diffs differ" in res.err
    assert not (tmp_path / "out").exists()
    assert kit.wp_state(world["inst"]) == "pre"


def test_an_edited_diff_is_refused_by_every_reader(
    sealed: Path, world: dict[str, Path], tmp_path: Path
) -> None:
    bundle = _copy(sealed, tmp_path / "bundle")
    diff = bundle / "patch.diff"
    diff.write_bytes(diff.read_bytes().replace(b"esc_html", b"esc_attr", 1))
    for name, args in _readers(bundle, world, tmp_path / "out").items():
        res = kit.patchd(tmp_path / "ledger.db", *args)
        assert res.code == 2 and "digest mismatch" in res.err, (name, res.err)


def test_an_untouched_bundle_is_read_by_every_reader(sealed: Path, world: dict[str, Path]) -> None:
    ledger = world["base"] / "ledger.db"
    assert kit.patchd(ledger, "show", str(sealed)).code == 0
    res = kit.patchd(ledger, "apply", str(sealed), str(world["inst"]), "--dry-run")
    assert res.code == 0, res.err
    assert (
        kit.patchd(ledger, "rollout", *_readers(sealed, world, world["base"])["rollout"][1:]).code
        == 0
    )


def _legacy(sealed: Path, dest: Path) -> Path:
    """``sealed`` as an older patchd wrote it: the digest covers the diffs only."""
    bundle = _copy(sealed, dest)
    diffs = {p.relative_to(bundle).as_posix(): p.read_bytes() for p in bundle.rglob("*.diff")}
    _edit_manifest(bundle, _set("digest", diffs_digest(diffs)))
    return bundle


def test_an_older_seal_is_refused_with_the_reseal_command(
    sealed: Path, world: dict[str, Path], tmp_path: Path
) -> None:
    bundle = _legacy(sealed, tmp_path / "old")
    for name, args in _readers(bundle, world, tmp_path / "out").items():
        res = kit.patchd(tmp_path / "ledger.db", *args)
        assert res.code == 2, (name, res.err)
        assert "sealed by an older patchd" in res.err and f"patchd reseal {bundle}" in res.err
    # off a terminal, reseal wants --yes
    assert kit.patchd(tmp_path / "ledger.db", "reseal", str(bundle)).code == 2
    res = kit.patchd(tmp_path / "ledger.db", "reseal", str(bundle), "--yes")
    assert res.code == 0, res.err
    assert "re-sealed" in res.out
    loaded = load_bundle(bundle)
    assert loaded.manifest == load_bundle(sealed).manifest  # the same fields, the new seal
    again = kit.patchd(tmp_path / "ledger.db", "reseal", str(bundle), "--yes")
    assert again.code == 2 and "already sealed" in again.err
    # and from now on a manifest edit is caught
    _edit_manifest(bundle, _set("min_php", "5.6"))
    with pytest.raises(BundleError, match="digest mismatch"):
        load_bundle(bundle)


def test_reseal_refuses_an_older_bundle_whose_diff_was_edited(sealed: Path, tmp_path: Path) -> None:
    bundle = _legacy(sealed, tmp_path / "old")
    diff = bundle / "patch.diff"
    diff.write_bytes(diff.read_bytes() + b"\n")
    before = (bundle / MANIFEST).read_bytes()
    res = kit.patchd(tmp_path / "ledger.db", "reseal", str(bundle), "--yes")
    assert res.code == 2 and "refusing to re-seal an edited bundle" in res.err
    assert (bundle / MANIFEST).read_bytes() == before


def test_the_repository_bundles_are_sealed_with_the_current_digest() -> None:
    bundles = sorted(p for p in REPO_PATCHES.iterdir() if (p / MANIFEST).is_file())
    assert len(bundles) == 3
    for path in bundles:
        assert load_bundle(path).manifest.digest != diffs_digest(load_bundle(path).diffs)
