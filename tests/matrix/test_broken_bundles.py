"""Deliberately broken bundles are caught by the right check, with the real php binary.

Each matrix has one vulnerable WordPress-shaped release, the installed PHP 8.2 and a PHP
7.4 whose binary does not exist (so only the static analysis can judge that cell).
"""

from __future__ import annotations

from pathlib import Path

from patchd.bundle.manifest import load_bundle
from patchd.matrix.model import matrix_from_data
from patchd.matrix.results import CellResult
from patchd.matrix.run import test_bundle as run_matrix
from patchd.matrix.tested import untested_reason
from patchd_fixtures.families import release_tree
from tests.matrix.bundles import Edit, append_to, insert_after, make_bundle

SECURITY_FILE = "wp-includes/comment-template.php"


def _matrix(tmp_path: Path) -> object:
    return matrix_from_data(
        {
            "releases": [{"fixture": "wordpress@6.4.2"}],
            "php": [{"version": "8.2"}, {"version": "7.4", "binary": "/nonexistent/php7.4"}],
        },
        base=tmp_path,
    )


def _run(tmp_path: Path, edit: Edit | None) -> dict[str, CellResult]:
    bundle = load_bundle(make_bundle(tmp_path / "bundle", "wordpress", edit=edit))
    report = run_matrix(bundle, _matrix(tmp_path), matrix_name="m.yaml", workdir=tmp_path)
    return {c.php: c for c in report.run.cells}


def _check(cell: CellResult, name: str) -> str:
    return next(ch.status for ch in cell.checks if ch.check == name)


def test_good_bundle_passes_both_cells(tmp_path: Path) -> None:
    cells = _run(tmp_path, None)
    assert [c.status for c in cells.values()] == ["ok", "ok"]
    assert _check(cells["7.4"], "lint") == "skipped"


def test_syntax_error_is_caught_by_php_lint(tmp_path: Path) -> None:
    cells = _run(tmp_path, append_to(SECURITY_FILE, "\nfunction patchd_broken( {\n"))
    cell = cells["8.2"]
    assert cell.status == "failed"
    assert cell.reason.startswith(f"lint: {SECURITY_FILE}: PHP Parse error")
    assert _check(cell, "apply") == "ok" and _check(cell, "min-php") == "ok"


def test_php81_syntax_fails_the_php74_cell_without_a_74_binary(tmp_path: Path) -> None:
    enum = "\nenum Patchd_Comment_State: string {\n\tcase Open = 'open';\n}\n"
    cells = _run(tmp_path, append_to(SECURITY_FILE, enum))
    old, new = cells["7.4"], cells["8.2"]
    assert old.status == "failed" and old.php_binary is None
    assert old.reason.startswith("min-php: patch needs PHP >= 8.1 (enum (PHP 8.1) at ")
    assert "cell has PHP 7.4" in old.reason
    assert _check(old, "lint") == "skipped"
    # the same bundle is fine where PHP is new enough: lint and smoke pass on 8.2
    assert new.status == "ok", new.reason
    assert _check(new, "lint") == "ok" and _check(new, "smoke") == "ok"


def test_runtime_fatal_error_is_caught_by_the_smoke_test(tmp_path: Path) -> None:
    """index.php includes wp-blog-header.php; a call to an undefined function there is a
    new fatal error, although the fixture fails later on anyway (no wp-config.php)."""
    tree = dict(release_tree("wordpress", "6.4.3"))
    edit = insert_after(
        "wp-blog-header.php", "$wp_did_header = true;", "\tpatchd_missing_helper();\n", tree
    )
    cells = _run(tmp_path, edit)
    cell = cells["8.2"]
    assert cell.status == "failed"
    assert _check(cell, "lint") == "ok" and _check(cell, "min-php") == "ok"
    assert cell.reason.startswith("smoke: GET /: new PHP error after patching: Fatal error: ")
    assert "patchd_missing_helper()" in cell.reason
    # the 7.4 cell has no binary to serve with: the static check alone passes it
    assert cells["7.4"].status == "ok" and _check(cells["7.4"], "smoke") == "skipped"


def test_failed_cell_makes_the_configuration_untested(tmp_path: Path) -> None:
    enum = "\nenum Patchd_State {\n\tcase Open;\n}\n"
    bundle_dir = make_bundle(tmp_path / "bundle", "wordpress", edit=append_to(SECURITY_FILE, enum))
    bundle = load_bundle(bundle_dir)
    run_matrix(bundle, _matrix(tmp_path), matrix_name="m.yaml", workdir=tmp_path)
    assert untested_reason(bundle, "6.4.2", "8.2") is None
    reason = untested_reason(bundle, "6.4.2", "7.4.33")
    assert reason is not None and reason.startswith("version 6.4.2 with PHP 7.4 failed the test: ")
    assert untested_reason(bundle, "6.4.1", "8.2") == "version 6.4.1 was never tested"
    assert untested_reason(bundle, "6.4.2", None) == "PHP version unknown"
