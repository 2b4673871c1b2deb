"""Matrix file validation (errors name the field) and cell materialisation."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from patchd.bundle.manifest import load_bundle
from patchd.cli.main import cli
from patchd.cms import detector_for
from patchd.matrix.cells import materialise, plan_cells
from patchd.matrix.model import MatrixError, load_matrix, matrix_from_data
from patchd.matrix.run import test_bundle as run_matrix
from patchd.safefs import SafeRoot
from patchd_fixtures.releases import write_release_archive
from tests.matrix.bundles import make_bundle


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"php": [{"version": "8.2"}]}, "field releases: Field required"),
        ({"releases": [{"fixture": "wordpress"}], "php": [{"version": "8.2"}]}, "FAMILY@VERSIONS"),
        (
            {"releases": [{"fixture": "wordpress@6.4.2", "folder": "x"}], "php": ["8.2"]},
            "field releases.0: give exactly one of fixture, archive, folder",
        ),
        (
            {"releases": [{"fixture": "wordpress@6.4.2"}], "php": [{"version": "eight"}]},
            "field php.0.version: a PHP version like 8.2",
        ),
        (
            {
                "releases": [{"fixture": "wordpress@6.4.2"}],
                "php": [{"version": "8.2"}],
                "modifications": {
                    "x": {"changes": [{"file": "../etc/passwd", "search": "a", "replace": "b"}]}
                },
            },
            "without '..'",
        ),
        (
            {
                "releases": [{"fixture": "wordpress@6.4.2"}],
                "php": [{"version": "8.2"}],
                "smoke": {"urls": ["index.php"]},
            },
            "field smoke.urls",
        ),
    ],
)
def test_matrix_errors_name_the_field(tmp_path: Path, data: dict, message: str) -> None:
    with pytest.raises(MatrixError) as err:
        matrix_from_data(data, base=tmp_path, where="m.yaml")
    assert message in str(err.value)
    assert str(err.value).startswith("m.yaml: ")


def test_cli_input_errors_exit_2(tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path / "b", "wordpress")
    bad = tmp_path / "m.yaml"
    bad.write_text("releases: [{fixture: wordpress@9.9.9}]\nphp: [{version: '8.2'}]\n")
    result = CliRunner().invoke(cli, ["test", str(bundle), "--matrix", str(bad)])
    assert result.exit_code == 2
    assert "no such version" in result.stderr
    bad.write_text("releases: [\n")
    result = CliRunner().invoke(cli, ["test", str(bundle), "--matrix", str(bad)])
    assert result.exit_code == 2 and "not valid YAML" in result.stderr
    result = CliRunner().invoke(cli, ["test", str(tmp_path), "--matrix", str(bad)])
    assert result.exit_code == 2 and "manifest.yaml" in result.stderr


def test_archive_release_extensions_and_modifications(tmp_path: Path) -> None:
    """An archive release (version read by the detector), a stub and a folder extension,
    a search/replace and a patch modification all land in the cell's installation."""
    archive = write_release_archive("wordpress", "6.4.1", tmp_path / "rel", "zip")
    (tmp_path / "myplugin").mkdir()
    (tmp_path / "myplugin" / "myplugin.php").write_text(
        "<?php\n/**\n * Plugin Name: My\n * Version: 0.9\n */\n"
    )
    (tmp_path / "mods.diff").write_text(
        "--- a/readme.html\n+++ b/readme.html\n"
        "@@ -1,1 +1,1 @@\n-<!DOCTYPE html>\n+<!doctype html>\n"
    )
    (tmp_path / "m.yaml").write_text(
        f"""
releases:
  - archive: {archive.relative_to(tmp_path)}
extensions:
  two:
    - stub: {{name: guard, version: "1.2"}}
    - folder: myplugin
      into: wp-content/plugins/myplugin
php:
  - version: "8.2"
modifications:
  edited:
    changes:
      - {{file: wp-config-sample.php, search: "database_name_here", replace: "db1"}}
      - {{patch: mods.diff}}
"""
    )
    matrix = load_matrix(tmp_path / "m.yaml")
    (cell,) = plan_cells(matrix, tmp_path / "scratch")
    assert cell.release.label == "wordpress@6.4.1" and cell.php.binary is not None
    root = materialise(cell, tmp_path / "cell", matrix)
    with SafeRoot(root) as safe:
        inst = detector_for("wordpress").detect(safe, "")
    assert inst is not None and inst.version == "6.4.1"
    assert {(e.name, e.version) for e in inst.extensions} >= {("guard", "1.2"), ("myplugin", "0.9")}
    assert b"db1" in (root / "wp-config-sample.php").read_bytes()
    assert (root / "readme.html").read_bytes().startswith(b"<!doctype html>")


def test_modification_that_does_not_fit_fails_the_cell_not_the_run(tmp_path: Path) -> None:
    bundle = load_bundle(make_bundle(tmp_path / "b", "wordpress"))
    matrix = matrix_from_data(
        {
            "releases": [{"fixture": "wordpress@6.4.2"}],
            "php": [{"version": "8.2"}],
            "modifications": {
                "none": None,
                "bad": {"changes": [{"file": "index.php", "search": "no such", "replace": "x"}]},
            },
            "smoke": {"enabled": False},
        },
        base=tmp_path,
    )
    report = run_matrix(bundle, matrix, matrix_name="m.yaml", workdir=tmp_path)
    by_mod = {c.modification: c for c in report.run.cells}
    assert by_mod["none"].status == "ok"
    assert by_mod["bad"].status == "failed"
    assert by_mod["bad"].reason == "setup: modification: search text not found in index.php"
    smoke = next(ch for ch in by_mod["none"].checks if ch.check == "smoke")
    assert (smoke.status, smoke.detail) == ("skipped", "disabled")


def test_expected_refusal_that_applies_fails(tmp_path: Path) -> None:
    """A modification outside the patched lines still lets the bundle apply: a matrix that
    expected a refusal there is told so."""
    bundle = load_bundle(make_bundle(tmp_path / "b", "wordpress"))
    matrix = matrix_from_data(
        {
            "releases": [{"fixture": "wordpress@6.4.2"}],
            "php": [{"version": "8.2"}],
            "modifications": {
                "harmless": {
                    "expect": "refused",
                    "changes": [{"file": "index.php", "search": "Front to", "replace": "Start of"}],
                }
            },
        },
        base=tmp_path,
    )
    (cell,) = run_matrix(bundle, matrix, matrix_name="m.yaml", workdir=tmp_path).run.cells
    assert cell.status == "failed"
    assert cell.reason == "apply: applied, but the modification should make it refuse"


def test_tested_json_keeps_runs_of_other_matrices(tmp_path: Path) -> None:
    bundle = load_bundle(make_bundle(tmp_path / "b", "wordpress"))
    data = {"releases": [{"fixture": "wordpress@6.4.2"}], "php": [{"version": "8.2"}]}
    matrix = matrix_from_data({**data, "smoke": {"enabled": False}}, base=tmp_path)
    run_matrix(bundle, matrix, matrix_name="a.yaml", workdir=tmp_path)
    run_matrix(bundle, matrix, matrix_name="b.yaml", workdir=tmp_path)
    tested = run_matrix(bundle, matrix, matrix_name="a.yaml", workdir=tmp_path).tested
    assert [r.matrix for r in tested.runs] == ["b.yaml", "a.yaml"]
    assert list(tmp_path.glob("patchd-test-*")) == []  # scratch folders are removed
