"""The first hour (issue 17): the demo without PHP, builds that skip linting on purpose."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml
from click.testing import CliRunner

from patchd.bundle.manifest import load_bundle
from patchd.cli.main import cli
from patchd.demo import NO_PHP_NOTE
from patchd_fixtures.fleet import generate_fleet
from patchd_fixtures.releases import write_release_archive
from tests.cli.nophp import path_without_php
from tests.scan import kit

RULES = Path(__file__).resolve().parents[2] / "fixtures" / "rules" / "wp-2026-001.yaml"


def _env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = path_without_php(tmp_path / "bin")
    env.pop("PATCHD_LEDGER", None)
    env["COLUMNS"] = "80"
    return env


def test_demo_runs_without_php_and_says_so(tmp_path: Path) -> None:
    env = _env(tmp_path)
    assert shutil.which("php", path=env["PATH"]) is None
    work = tmp_path / "work"
    work.mkdir()
    done = subprocess.run(
        [sys.executable, "-m", "patchd.cli.main", "demo", "--accounts", "20", "--keep"],
        cwd=work, env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    flat = " ".join(done.stdout.split())
    assert NO_PHP_NOTE in flat
    assert "outcomes over all runs: " in flat and "patched=" in flat
    folder = Path(flat.split("patchd demo in ", 1)[1].split()[0])
    # the bundles record that php -l and the closure check (no PHP to tokenize) did not run
    manifest = load_bundle(folder / "demo" / "patches" / "wp-2026-001").manifest
    assert manifest.skipped_checks == ("php-lint", "closure")
    assert f"cd {folder}" in flat
    shutil.rmtree(folder)


def test_build_needs_php_unless_no_lint_is_given(tmp_path: Path, monkeypatch) -> None:
    old = write_release_archive("wordpress", "6.4.2", tmp_path)
    new = write_release_archive("wordpress", "6.4.3", tmp_path)
    monkeypatch.setenv("PATH", path_without_php(tmp_path / "bin"))
    args = ["build", str(old), str(new), "--rules", str(RULES), "--undecided", "drop",
            "--out", str(tmp_path / "p")]  # fmt: skip
    refused = CliRunner().invoke(cli, args)
    assert refused.exit_code == 2
    assert "PHP binary 'php' not found" in refused.output
    assert not (tmp_path / "p").exists()

    built = CliRunner().invoke(cli, [*args, "--no-lint"])
    assert built.exit_code == 0, built.output
    assert "php -l skipped (--no-lint)" in built.output
    assert "affected versions: 6.4.0-6.4.2 (OLD's branch up to OLD" in built.output
    # the versions no backport covers are named, never left out silently (issue 17)
    assert "warning: affected 6.4.0-6.4.2, but no variant covers 6.4.0, 6.4.1: " in built.output
    assert "add --backport RELEASE for each to patch them" in built.output
    raw = yaml.safe_load((tmp_path / "p" / "wordpress-6.4.3" / "manifest.yaml").read_text())
    assert raw["skipped_checks"] == ["php-lint", "closure"]  # no PHP: nothing to tokenize with
    assert "closure check skipped (built with --no-lint on a machine without PHP)" in built.output
    shown = CliRunner().invoke(cli, ["show", str(tmp_path / "p" / "wordpress-6.4.3")])
    assert "not checked: php-lint, closure (built with --no-lint)" in shown.output


def test_a_fully_checked_manifest_has_no_skipped_checks_key(tmp_path: Path) -> None:
    old = write_release_archive("wordpress", "6.4.2", tmp_path)
    new = write_release_archive("wordpress", "6.4.3", tmp_path)
    out = tmp_path / "p"
    args = ["build", str(old), str(new), "--rules", str(RULES), "--undecided", "drop",
            "--out", str(out)]  # fmt: skip
    built = CliRunner().invoke(cli, args)
    assert built.exit_code == 0, built.output
    raw = yaml.safe_load((out / "wordpress-6.4.3" / "manifest.yaml").read_text())
    assert "skipped_checks" not in raw
    assert load_bundle(out / "wordpress-6.4.3").manifest.skipped_checks == ()


def test_unknown_account_host_and_customer_ids_are_input_errors(tmp_path: Path) -> None:
    """A mistyped id used to select nothing, silently (issue 17): exit 2 naming it."""
    fleet = generate_fleet(tmp_path / "fleet", 3, seed=1)
    accounts = fleet / "accounts.yaml"
    ledger = tmp_path / "ledger.db"
    known = yaml.safe_load(accounts.read_text())["accounts"][0]["id"]
    res = kit.scan(ledger, accounts, "--account", known, "--account", "p99999")
    assert res.code == 2 and f"--account: not in {accounts}: p99999" in res.err, res.err
    bundle = str(Path(__file__).resolve().parents[2] / "patches" / "wp-2026-001")
    for option, value in (("--limit-account", f"{known},nobody,p0"),
                          ("--limit-host", "nohost"), ("--limit-customer", "c0")):  # fmt: skip
        res = kit.patchd(ledger, "rollout", bundle, "--accounts", str(accounts), "--dry-run",
                         "--yes", option, value)  # fmt: skip
        assert res.code == 2, res.err
        missing = ", ".join(sorted(v for v in value.split(",") if v != known))
        assert f"{option}: not in {accounts}: {missing}" in res.err, res.err
    ok = kit.scan(ledger, accounts, "--account", known)
    assert ok.code == 0, ok.err


def test_ctrl_c_in_a_rollout_prints_the_command_that_resumes_it(
    tmp_path: Path, monkeypatch
) -> None:
    """Ctrl-C used to say only "interrupted" (issue 17)."""
    import patchd.cli.rollout_cmd as rollout_cmd

    def interrupted(*_args, **_kwargs):
        raise KeyboardInterrupt

    fleet = generate_fleet(tmp_path / "fleet", 2, seed=1)
    monkeypatch.setattr(rollout_cmd, "run_rollout", interrupted)
    bundle = str(Path(__file__).resolve().parents[2] / "patches" / "wp-2026-001")
    argv = ["--ledger", str(tmp_path / "l.db"), "rollout", bundle, "--accounts",
            str(fleet / "accounts.yaml"), "--yes"]  # fmt: skip
    result = CliRunner().invoke(cli, argv)
    assert result.exit_code == 130
    assert "patchd: interrupted" in result.output
    assert f"run the same command again: patchd {' '.join(argv)}" in result.output
