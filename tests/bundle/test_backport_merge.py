"""3-way backports: ``git merge-file`` ports the fix where the context drifted, and a real
conflict is listed with both sides for a person (issue 13, item 2)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from patchd.bundle.backport import Newer, port_patch
from patchd.bundle.merge3 import merge_file
from patchd.cli.main import cli
from patchd.engine.apply import apply_file
from patchd.engine.model import FilePatch
from patchd.engine.parse import parse_diff
from patchd_fixtures.drift import WORDPRESS_DRIFTS, write_drifted_release
from patchd_fixtures.releases import write_release_archive, write_release_tree
from tests.bundle.helpers import release_hunk

ROOT = Path(__file__).resolve().parents[2]
OLD = b"".join(f"line {i}\n".encode() for i in range(1, 31))


def _git_merge_file(tmp: Path, ours: bytes, base: bytes, theirs: bytes) -> tuple[int, bytes]:
    """The oracle: git merge-file run by hand, as the issue describes it."""
    for name, data in (("ours", ours), ("base", base), ("theirs", theirs)):
        (tmp / name).write_bytes(data)
    proc = subprocess.run(
        ["git", "merge-file", "-p", str(tmp / "ours"), str(tmp / "base"), str(tmp / "theirs")],
        capture_output=True,
        check=False,
    )
    return proc.returncode, proc.stdout


def _fix() -> FilePatch:
    rh = release_hunk(
        "a.php",
        [" line 12", " line 13", " line 14", "-line 15", "+safe 15", " line 16", " line 17",
         " line 18"],
        old_start=12,
    )  # fmt: skip
    return FilePatch("a.php", "a.php", (rh.hunk,)), rh.id


def test_merge_file_clean_and_conflict() -> None:
    theirs = OLD.replace(b"line 15\n", b"safe 15\n")
    clean = merge_file(OLD, OLD.replace(b"line 13\n", b"other 13\n"), theirs)
    assert clean.clean and b"other 13\n" in clean.content and b"safe 15\n" in clean.content
    clash = merge_file(OLD, OLD.replace(b"line 15\n", b"print 15\n"), theirs)
    assert not clash.clean
    assert [(c.ours, c.theirs) for c in clash.conflicts] == [("print 15\n", "safe 15\n")]


def test_context_drift_ports_by_merge_and_equals_git_merge_file(tmp_path) -> None:
    fp, hid = _fix()
    target = OLD.replace(b"line 13\n", b"line 13 changed\n")
    assert not apply_file(fp, target, fuzz=0).ok  # the exact port fails
    ported = port_patch(
        [fp], {"a.php": [hid]}, {"a.php": target}.get, version="1.0.0", fuzz=0, php=None,
        read_base={"a.php": OLD}.get,
    )  # fmt: skip
    assert ported.entry.status == "ok" and ported.patches is not None
    assert ported.entry.merged == {"a.php": "3-way merge"}
    assert all(c.ok for c in ported.checks), ported.checks
    rc, expected = _git_merge_file(tmp_path, target, OLD, apply_file(fp, OLD, fuzz=0).content)
    assert rc == 0
    applied = apply_file(ported.patches[0], target, fuzz=0)
    assert applied.ok and applied.content == expected
    assert all(h.offset == 0 for h in applied.hunks)  # exact context, as rollout needs


def test_restructured_code_is_a_conflict_with_both_sides() -> None:
    fp, hid = _fix()
    target = OLD.replace(b"line 15\n", b"print(line 15)\n")
    ported = port_patch(
        [fp], {"a.php": [hid]}, {"a.php": target}.get, version="1.0.0", fuzz=0, php=None,
        read_base={"a.php": OLD}.get,
    )  # fmt: skip
    assert ported.entry.status == "manual" and ported.patches is None
    (m,) = ported.entry.manual
    assert m.path == "a.php" and m.hunk == "a.php@conflict1" and "conflict" in m.reason
    assert (m.ours, m.theirs) == ("print(line 15)\n", "safe 15\n")


def test_chained_merge_from_the_nearest_newer_backport() -> None:
    """A release that conflicts with OLD merges from a newer backport it shares code with."""
    fp, hid = _fix()
    # The branch changed line 14, right next to the fix: merging from OLD conflicts. The
    # newer backport shares that line and ported (here: its patched file is given), so
    # the older release merges cleanly from the newer one's result.
    newer_file = OLD.replace(b"line 14\n", b"line 14 (branch)\n")
    newer_patched = newer_file.replace(b"line 15\n", b"safe 15\n")
    older = newer_file.replace(b"line 2\n", b"line 2 older\n")
    ported = port_patch(
        [fp], {"a.php": [hid]}, {"a.php": older}.get, version="0.9.0", fuzz=0, php=None,
        read_base={"a.php": OLD}.get,
        newer=[Newer("0.9.5", {"a.php": newer_file}.get, {"a.php": newer_patched})],
    )  # fmt: skip
    assert ported.entry.status == "ok", ported.entry.manual
    assert ported.entry.merged == {"a.php": "3-way merge via 0.9.5"}
    assert ported.patched["a.php"] == older.replace(b"line 15\n", b"safe 15\n")


@pytest.fixture(scope="module")
def drift_build(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("drift")
    old = write_release_archive("wordpress", "6.4.2", tmp / "rel")
    new = write_release_archive("wordpress", "6.4.3", tmp / "rel")
    ctx = write_drifted_release("wordpress", "6.4.1", tmp / "wp-6.4.1", WORDPRESS_DRIFTS["context"])
    res = write_drifted_release(
        "wordpress", "6.4.0", tmp / "wp-6.4.0", WORDPRESS_DRIFTS["restructured"]
    )
    args = [str(old), str(new), "--rules", str(ROOT / "fixtures/rules/wp-2026-001.yaml"),
            "--backport", str(ctx), "--backport", str(res), "--id", "wp-drift", "--no-lint",
            "--undecided", "drop",
            "--out", str(tmp / "out")]  # fmt: skip
    result = CliRunner().invoke(cli, ["build", *args], catch_exceptions=False)
    return tmp, ctx, res, result


def test_build_merges_the_drifted_branch_and_lists_the_conflict(drift_build, tmp_path) -> None:
    tmp, ctx, _res, result = drift_build
    assert result.exit_code == 0, result.output
    bundle = tmp / "out" / "wp-drift"
    report = json.loads((bundle / "build-report.json").read_text())
    by_version = {v["version"]: v for v in report["variants"]}
    merged = by_version["6.4.1"]
    assert merged["status"] == "ok"
    assert merged["merged"] == {"wp-includes/comment-template.php": "3-way merge"}
    conflict = by_version["6.4.0"]
    assert conflict["status"] == "manual" and conflict["file"] is None
    (m,) = conflict["manual"]
    assert m["ours"] == "\tprint( $author ); // legacy output path\n"
    assert m["theirs"] == "\techo esc_html( $author );\n"
    assert "6.4.0" in report["uncovered"]  # its installations: dry-run-failed, no-variant
    assert "backport 6.4.0: needs manual work" in result.output
    # The merged variant, applied with GNU patch, gives git merge-file's bytes.
    path = "wp-includes/comment-template.php"
    real_old = write_release_tree("wordpress", "6.4.2", tmp_path / "real-old")
    fixed = [fp for fp in parse_diff((bundle / "patch.diff").read_bytes()) if fp.path == path]
    theirs = apply_file(fixed[0], (real_old / path).read_bytes(), fuzz=0).content
    rc, expected = _git_merge_file(
        tmp_path, (ctx / path).read_bytes(), (real_old / path).read_bytes(), theirs
    )
    assert rc == 0
    work = tmp_path / "target"
    subprocess.run(["cp", "-a", str(ctx), str(work)], check=True)
    proc = subprocess.run(
        ["patch", "-p1", "-F0", "-s", "-i", str(bundle / merged["file"])],
        cwd=work, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (work / path).read_bytes() == expected


def test_show_prints_the_merge_and_both_sides_of_the_conflict(drift_build) -> None:
    tmp, _ctx, _res, _result = drift_build
    out = CliRunner().invoke(cli, ["show", str(tmp / "out" / "wp-drift")]).output
    assert "backport 6.4.1: wp-includes/comment-template.php ported by 3-way merge" in out
    assert "release 6.4.0 has:" in out and "print( $author ); // legacy output path" in out
    assert "the fix (patched OLD) has:" in out and "echo esc_html( $author );" in out
