"""Rollout over issue 19's layouts: copies, nested and linked installations are patched
at their real folders, and every unrecognised folder makes its account an ``error``, also
when an installation sits in the account root."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from patchd_fixtures.fleet_plan import LAYOUTS
from tests.e2e import kit
from tests.scan import kit as scan_kit


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return kit.build_bundle(tmp_path_factory.mktemp("bundle") / "b", bundle_id="wp-layouts")


def test_every_layout_is_rolled_out_and_every_stray_is_an_error(
    bundle: Path, tmp_path: Path
) -> None:
    fleet = tmp_path / "fleet"
    subprocess.run(
        [sys.executable, "-m", "patchd_fixtures.fleet", "--accounts", str(len(LAYOUTS) + 4),
         "--out", str(fleet), "--hosts", "web01,web02", "--seed", "5", "--layouts"],
        check=True, capture_output=True,
    )  # fmt: skip
    backups = tmp_path / "backups"
    backups.mkdir(mode=0o700)
    res = kit.patchd(
        tmp_path / "ledger.db", "rollout", str(bundle), "--accounts",
        str(fleet / "accounts.yaml"), "--backup-dir", str(backups), "--yes", "--json",
    )  # fmt: skip
    doc = scan_kit.truth(fleet / "expected.json")
    strays = {
        (acc, u["path"]) for acc, a in doc["accounts"].items() for u in a.get("unrecognised", [])
    }
    assert strays and res.code == 1, res.err  # the strays' accounts are errors
    got = kit.verdicts(res.json["results"])
    expected = kit.expected_verdicts(fleet / "expected.json")
    assert {k: v for k, v in got.items() if k in expected} == expected
    for (acct, path), (outcome, _reason) in got.items():
        if outcome == "patched":
            assert kit.wp_state(fleet / "accounts" / acct / path) == "post"
    errors = {(r["account"], r["path"]): r["detail"] for r in res.json["results"]}
    for acct, folder in strays:
        # NOTE: the account root is free in these layouts: the error row is there
        assert f"scan: {folder}: unrecognised:" in errors[(acct, "")]
    assert set(got) - set(expected) == {(acct, "") for acct, _ in strays}


def test_an_unrecognised_folder_is_an_error_next_to_a_root_installation(
    bundle: Path, tmp_path: Path
) -> None:
    """The error row used to be written at the account root, where the root
    installation's result replaced it: the account passed as fine."""
    root = tmp_path / "acc"
    root.mkdir()
    kit.install_wordpress(root, "6.4.1", "")
    for folder in ("old-drupal", "verein"):
        (root / folder / "includes").mkdir(parents=True)
        (root / folder / "includes/bootstrap.inc").write_text("<?php define('VERSION', '7.9');\n")
    inventory = kit.write_inventory(
        tmp_path / "accounts.yaml",
        {"web01": {"transport": "local"}},
        [kit.account("p1", "web01", root)],
    )
    res = kit.patchd(
        tmp_path / "l.db", "rollout", str(bundle), "--accounts", str(inventory),
        "--dry-run", "--yes", "--json",
    )  # fmt: skip
    rows = {r["path"]: r for r in res.json["results"]}
    assert rows[""]["outcome"] == "skipped"  # the dry run of the root WordPress
    assert rows["old-drupal"]["outcome"] == "error" and res.code == 1
    assert rows["old-drupal"]["detail"].startswith(
        "scan: old-drupal: unrecognised: drupal marker includes/bootstrap.inc is here"
    )
    assert "verein: unrecognised: drupal marker" in rows["verein"]["detail"]


def test_several_scan_errors_of_an_account_share_one_row(bundle: Path, tmp_path: Path) -> None:
    root = tmp_path / "acc"
    kit.install_wordpress(root, "6.4.1", "html")
    for folder in ("html/old-drupal", "html/verein"):
        (root / folder / "includes").mkdir(parents=True)
        (root / folder / "includes/bootstrap.inc").write_text("<?php define('VERSION', '7.9');\n")
    inventory = kit.write_inventory(
        tmp_path / "accounts.yaml",
        {"web01": {"transport": "local"}},
        [kit.account("p1", "web01", root)],
    )
    res = kit.patchd(
        tmp_path / "l.db", "rollout", str(bundle), "--accounts", str(inventory),
        "--dry-run", "--yes", "--json",
    )  # fmt: skip
    rows = {r["path"]: r for r in res.json["results"]}
    assert set(rows) == {"", "html"} and rows[""]["outcome"] == "error"
    assert rows[""]["detail"].startswith("scan: html/old-drupal: unrecognised:")
    assert "; html/verein: unrecognised: drupal marker" in rows[""]["detail"]


def test_a_second_cms_in_the_root_installation_holds_that_installation_back(
    bundle: Path, tmp_path: Path
) -> None:
    """A Roundcube unpacked into a WordPress in the account root: the error can only sit
    at the root's path, so the WordPress is not rolled out and its row is the error."""
    root = tmp_path / "acc"
    kit.install_wordpress(root, "6.4.1", "")
    (root / "program/include").mkdir(parents=True)
    (root / "program/include/iniset.php").write_text("<?php define('RCMAIL_VERSION', '1.6.5');\n")
    inventory = kit.write_inventory(
        tmp_path / "accounts.yaml",
        {"web01": {"transport": "local"}},
        [kit.account("p1", "web01", root)],
    )
    before = kit.snapshot(root)
    res = kit.patchd(
        tmp_path / "l.db", "rollout", str(bundle), "--accounts", str(inventory),
        "--backup-dir", str(tmp_path / "backups"), "--yes", "--json",
    )  # fmt: skip
    assert res.code == 1, res.err
    assert [(r["path"], r["outcome"]) for r in res.json["results"]] == [("", "error")]
    assert "two CMSs in one folder" in res.json["results"][0]["detail"]
    assert kit.snapshot(root) == before  # nothing written
