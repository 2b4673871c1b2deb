"""``patchd build`` on every fixture family: exactly the security hunks, validated, backported.

Each family is built once (module fixture) through the CLI with the same arguments as the
repository's ``patches/`` bundles (``patchd_fixtures.bundles``), so the same builds
also prove that the committed bundles are reproducible.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from patchd.bundle.manifest import load_bundle
from patchd.cli.main import cli
from patchd.engine.parse import parse_diff
from patchd.errors import BundleError
from patchd.release.tree import diff_trees
from patchd_fixtures import bundles as fixture_bundles
from patchd_fixtures.families import FAMILIES
from patchd_fixtures.releases import write_release_tree

ROOT = Path(__file__).resolve().parents[2]


RECIPES = fixture_bundles


@pytest.fixture(scope="module", params=sorted(FAMILIES))
def built(request, tmp_path_factory):
    """(family name, bundle folder, CLI output) of one family's build."""
    name = request.param
    tmp = tmp_path_factory.mktemp(f"build-{name}")
    args = RECIPES.build_args(name, tmp / "rel", tmp / "git", tmp / "out")
    result = CliRunner().invoke(cli, ["build", *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    bundle_id = RECIPES.RECIPES[name][0]
    return name, tmp / "out" / bundle_id, result.output


def _added_lines(diff: bytes) -> list[list[str]]:
    """Added lines (stripped) per hunk of a diff."""
    return [
        [ln.data.decode().strip() for ln in h.lines if ln.kind == "+"]
        for fp in parse_diff(diff)
        for h in fp.hunks
    ]


def test_patch_holds_exactly_the_security_hunks(built) -> None:
    name, path, _ = built
    fam = FAMILIES[name]
    hunks = _added_lines((path / "patch.diff").read_bytes())
    assert len(hunks) == len(fam.security_hunks)
    for sh in fam.security_hunks:
        assert sum(sh.added_line in added for added in hunks) == 1, sh
    files = {fp.path for fp in parse_diff((path / "patch.diff").read_bytes())}
    assert files == set(fam.vulnerable_files)
    every_added = {line for added in hunks for line in added}
    for mixed in fam.mixed_hunks:
        assert mixed.other_line not in every_added
    for fix in fam.split_fixes:
        assert fix.bugfix_line not in every_added


def test_patch_applies_to_old_with_gnu_patch_without_offset_or_fuzz(built, tmp_path) -> None:
    name, path, _ = built
    fam = FAMILIES[name]
    old = write_release_tree(name, fam.vulnerable_versions[-1], tmp_path / "old")
    proc = subprocess.run(
        ["patch", "-p1", "-F0", "--dry-run", "-i", str(path / "patch.diff")],
        cwd=old,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "offset" not in proc.stdout and "fuzz" not in proc.stdout


def test_manifest_maps_every_vulnerable_version_to_a_variant(built) -> None:
    name, path, _ = built
    fam = FAMILIES[name]
    bundle = load_bundle(path)
    m = bundle.manifest
    assert m.cms == fam.cms and m.fixed_in == fam.security_release
    assert tuple(m.advisories) == fam.advisories
    for version in fam.vulnerable_versions:
        variant = bundle.variant_for(version)
        assert variant is not None, version
        assert bundle.is_affected(version)
        expected = "patch.diff" if version == fam.vulnerable_versions[-1] else None
        assert variant.file == (expected or f"variants/{version}.diff")
        assert {f.path for f in variant.files} == set(fam.vulnerable_files)
        assert all(f.pre_sha256 and f.post_sha256 for f in variant.files)
        # each variant holds the same security hunks, exactly placed for its version
        hunks = _added_lines(bundle.diffs[variant.file])
        assert len(hunks) == len(fam.security_hunks)
    assert not bundle.is_affected(fam.security_release)


def test_backports_apply_exactly_with_gnu_patch(built, tmp_path) -> None:
    name, path, _ = built
    fam = FAMILIES[name]
    for version in fam.vulnerable_versions[:-1]:
        tree = write_release_tree(name, version, tmp_path / version)
        proc = subprocess.run(
            ["patch", "-p1", "-F0", "-i", str(path / "variants" / f"{version}.diff")],
            cwd=tree,
            capture_output=True,
            text=True,
            check=False,
        )
        assert proc.returncode == 0 and "offset" not in proc.stdout, proc.stdout


def test_build_report_lists_every_hunk_of_the_release_diff(built, tmp_path) -> None:
    name, path, _ = built
    fam = FAMILIES[name]
    old = write_release_tree(name, fam.vulnerable_versions[-1], tmp_path / "old")
    new = write_release_tree(name, fam.security_release, tmp_path / "new")
    diff = diff_trees(old, new)
    expected = [rh.id for rh in diff.hunks] + [
        f"{fc.path}@{fc.kind}" for fc in diff.files if not fc.hunks
    ]
    report = json.loads((path / "build-report.json").read_text())
    ids = [h["id"] for h in report["hunks"]]
    assert sorted(ids) == sorted(expected)
    for h in report["hunks"]:
        assert h["decision"] in ("kept", "dropped") and h["reason"] and h["classifier"]
    kept = [h for h in report["hunks"] if h["decision"] == "kept"]
    assert {h["path"] for h in kept} == set(fam.vulnerable_files)
    assert any(h["split"] for h in kept), "the mixed hunk is split"
    assert report["validation"] and all(c["ok"] for c in report["validation"])
    checks = {c["check"] for c in report["validation"]}
    assert {"applies-exactly", "matches-new", "reverse-applies-on-new", "php-lint"} <= checks
    assert {v["version"] for v in report["variants"]} == set(fam.vulnerable_versions[:-1])
    assert all(v["status"] == "ok" and not v["manual"] for v in report["variants"])


def test_load_bundle_refuses_one_changed_byte(built, tmp_path) -> None:
    _, path, _ = built
    copy = tmp_path / path.name
    subprocess.run(["cp", "-r", str(path), str(copy)], check=True)
    load_bundle(copy)
    victim = sorted((copy / "variants").glob("*.diff"))[0]
    data = bytearray(victim.read_bytes())
    data[-2] ^= 0x01
    victim.write_bytes(bytes(data))
    with pytest.raises(BundleError, match="digest mismatch"):
        load_bundle(copy)


def test_show_names_kept_and_dropped_hunks_with_reasons(built) -> None:
    _, path, _ = built
    result = CliRunner().invoke(cli, ["show", str(path)])
    assert result.exit_code == 0, result.output
    report = json.loads((path / "build-report.json").read_text())
    for h in report["hunks"]:
        assert f"{h['decision'].upper()} {h['id']}" in result.output
        assert h["reason"] in result.output
    assert "\x1b[" not in result.output  # plain in pipes
    as_json = json.loads(CliRunner().invoke(cli, ["show", str(path), "--json"]).output)
    assert as_json["manifest"]["id"] == path.name
    assert len(as_json["hunks"]) == len(report["hunks"])


def test_committed_bundle_loads_and_rebuild_gives_the_same_diffs(built) -> None:
    _, path, _ = built
    committed = load_bundle(ROOT / "patches" / path.name)
    rebuilt = load_bundle(path)
    assert rebuilt.diffs == committed.diffs
    assert rebuilt.manifest == committed.manifest
    assert (path / "build-report.json").read_bytes() == (
        ROOT / "patches" / path.name / "build-report.json"
    ).read_bytes()
