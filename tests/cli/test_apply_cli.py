"""``patchd apply`` driven end to end, with GNU patch as the oracle."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from patchd.cli.main import cli
from patchd_fixtures.releases import write_release_tree


def snapshot(root: Path) -> dict[str, str]:
    """Every file below ``root`` with its sha256 (symlinks by target)."""
    out: dict[str, str] = {}
    for folder, _dirs, files in os.walk(root):
        for name in files:
            p = Path(folder, name)
            rel = str(p.relative_to(root))
            if p.is_symlink():
                out[rel] = "link:" + os.readlink(p)
            else:
                out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


@pytest.fixture(scope="module")
def release_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """WordPress-shaped 6.4.2 and 6.4.3 trees and their full ``diff -ruN`` (GNU diff)."""
    base = tmp_path_factory.mktemp("pair")
    old = write_release_tree("wordpress", "6.4.2", base / "a")
    new = write_release_tree("wordpress", "6.4.3", base / "b")
    proc = subprocess.run(["diff", "-ruN", "a", "b"], cwd=base, capture_output=True, check=False)
    assert proc.returncode == 1, proc.stderr
    diff = base / "release.diff"
    diff.write_bytes(proc.stdout)
    return old, new, diff


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.output


def test_apply_matches_gnu_patch(release_pair, tmp_path: Path) -> None:
    old, new, diff = release_pair
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    shutil.copytree(old, ours, symlinks=True)
    shutil.copytree(old, theirs, symlinks=True)
    code, out = run("apply", str(diff), str(ours), "--json")
    assert code == 0, out
    report = json.loads(out)
    assert report["ok"] and report["written"]
    gnu = subprocess.run(
        ["patch", "-p1", "-F0", "-f", "--no-backup-if-mismatch", "-s", "-i", str(diff)],
        cwd=theirs,
        capture_output=True,
        check=False,
    )
    assert gnu.returncode == 0, gnu.stdout + gnu.stderr
    assert snapshot(ours) == snapshot(theirs) == snapshot(new)


def test_dry_run_writes_nothing(release_pair, tmp_path: Path) -> None:
    old, _new, diff = release_pair
    target = tmp_path / "t"
    shutil.copytree(old, target, symlinks=True)
    before = snapshot(target)
    code, out = run("apply", str(diff), str(target), "--dry-run", "--json")
    assert code == 0
    assert json.loads(out)["written"] is False
    assert snapshot(target) == before


def test_failing_hunk_writes_nothing_and_names_it(release_pair, tmp_path: Path) -> None:
    old, _new, diff = release_pair
    target = tmp_path / "t"
    shutil.copytree(old, target, symlinks=True)
    victim = target / "wp-includes" / "comment-template.php"
    victim.write_text(victim.read_text().replace("$author", "$writer"))
    before = snapshot(target)
    code, out = run("apply", str(diff), str(target), "--json")
    assert code == 1
    report = json.loads(out)
    failed = [
        (f["path"], h["hunk"])
        for f in report["files"]
        for h in f["hunks"]
        if h["status"] == "failed"
    ]
    assert failed and all(path == "wp-includes/comment-template.php" for path, _ in failed)
    assert snapshot(target) == before


def test_reverse_and_already_applied(release_pair, tmp_path: Path) -> None:
    old, new, diff = release_pair
    target = tmp_path / "t"
    shutil.copytree(new, target, symlinks=True)
    code, out = run("apply", str(diff), str(target), "--json")
    assert code == 0
    assert json.loads(out)["already_applied"] is True
    assert snapshot(target) == snapshot(new)
    code, _ = run("apply", "-R", str(diff), str(target))
    assert code == 0
    assert snapshot(target) == snapshot(old)


def test_symlinked_target_is_refused(release_pair, tmp_path: Path) -> None:
    old, _new, diff = release_pair
    target = tmp_path / "t"
    shutil.copytree(old, target, symlinks=True)
    outside = tmp_path / "outside.php"
    outside.write_text("<?php // someone else's file\n")
    victim = target / "wp-includes" / "comment-template.php"
    victim.unlink()
    victim.symlink_to(outside)
    before = snapshot(tmp_path)
    code, out = run("apply", str(diff), str(target), "--json")
    assert code == 1
    problems = [f["problem"] for f in json.loads(out)["files"] if f["problem"]]
    assert any("symlink" in p for p in problems)
    assert snapshot(tmp_path) == before


def test_malformed_diff_names_the_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.diff"
    bad.write_bytes(b"--- a/x\n+++ b/x\n@@ -1,2 +1,2 @@\n x\n-y\n")
    (tmp_path / "t").mkdir()
    result = CliRunner().invoke(cli, ["apply", str(bad), str(tmp_path / "t")])
    assert result.exit_code == 2
    assert "line" in result.output


def test_traversal_in_diff_is_refused(tmp_path: Path) -> None:
    evil = tmp_path / "evil.diff"
    evil.write_bytes(b"--- a/../../etc/x\n+++ b/../../etc/x\n@@ -0,0 +1 @@\n+pwned\n")
    (tmp_path / "t").mkdir()
    result = CliRunner().invoke(cli, ["apply", str(evil), str(tmp_path / "t")])
    assert result.exit_code == 2
    assert "unsafe" in result.output
    assert not (tmp_path.parent / "etc").exists()
