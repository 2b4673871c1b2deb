"""The fixture matrices of every family, run through ``patchd test`` with the real php."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from patchd.bundle.manifest import TESTED, load_bundle
from patchd.cli.main import cli
from patchd.matrix.results import read_tested
from patchd.matrix.tested import effective_min_php, untested_reason
from patchd_fixtures.families import FAMILIES
from tests.matrix.bundles import make_bundle

MATRICES = Path(__file__).resolve().parents[2] / "fixtures" / "matrices"


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_fixture_matrix_passes_and_records_tested_json(tmp_path: Path, name: str) -> None:
    bundle_dir = make_bundle(tmp_path / "bundle", name)
    result = CliRunner().invoke(
        cli, ["test", str(bundle_dir), "--matrix", str(MATRICES / f"{name}.yaml"), "--json"]
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    fam = FAMILIES[name]
    cells = out["cells"]
    assert all(c["status"] == "ok" for c in cells)
    # every vulnerable release was patched on a pristine tree; the fixed one is not affected
    patched = {c["version"] for c in cells if c["outcome"] == "patched"}
    assert patched == set(fam.vulnerable_versions)
    assert {c["version"] for c in cells if c["outcome"] == "not-affected"} == {fam.security_release}
    # the customer edit inside a security hunk's context is refused, as the matrix expects
    refused = [c for c in cells if c["outcome"] == "refused"]
    assert refused and all(c["modification"] == "customer-edit" for c in refused)
    # the installed PHP ran lint and smoke; an older PHP without a binary got the static check
    on_82 = next(c for c in cells if c["outcome"] == "patched" and c["php"] == "8.2")
    checks = {ch["check"]: ch["status"] for ch in on_82["checks"]}
    assert checks == {"variant": "ok", "apply": "ok", "lint": "ok", "min-php": "ok", "smoke": "ok"}
    older = next(c for c in cells if c["outcome"] == "patched" and c["php_binary"] is None)
    checks = {ch["check"]: ch["status"] for ch in older["checks"]}
    assert checks["lint"] == "skipped" and checks["smoke"] == "skipped"
    assert checks["min-php"] == "ok"

    # tested.json is in the bundle, and the bundle still loads (digest covers diffs only)
    assert (bundle_dir / TESTED).is_file()
    bundle = load_bundle(bundle_dir)
    tested = read_tested(bundle_dir)
    assert tested is not None and tested.digest == bundle.manifest.digest
    assert tested.min_php == out["min_php"]
    assert effective_min_php(bundle) == out["min_php"]
    version = fam.vulnerable_versions[-1]
    assert untested_reason(bundle, version, "8.2.7") is None
    assert (
        untested_reason(bundle, version, "5.6")
        == f"version {version} was never tested with PHP 5.6"
    )
