"""Where the ledger is, and where backups go (issue 17, item 4)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from patchd.cli.main import cli
from patchd.inventory import load_inventory
from patchd.ledger.backup_store import HOST_STORES, backup_dirs, ledger_id
from patchd.ledger.db import open_ledger
from patchd_fixtures.fleet import generate_fleet

BUNDLE = str(Path(__file__).resolve().parents[2] / "patches" / "wp-2026-001")


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working folder, current, with no ledger named by the environment."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.delenv("PATCHD_LEDGER", raising=False)
    return work


def _run(*args: str, env: dict[str, str] | None = None, input: str | None = None):
    runner = CliRunner()
    return runner.invoke(cli, list(args), env=env, input=input, catch_exceptions=False)


@pytest.mark.parametrize(
    "args",
    [("report", "1"), ("report", "latest"), ("runs",), ("scans",), ("scans", "show", "1"),
     ("releases",)],
)  # fmt: skip
def test_read_only_commands_never_create_a_ledger(home: Path, args: tuple[str, ...]) -> None:
    res = _run(*args)
    assert res.exit_code == 2, res.output
    assert "no ledger: no .patchd/ledger.db in " in res.output
    assert "'patchd scan' or 'patchd rollout' creates one here" in res.output
    assert list(home.iterdir()) == []


def test_an_explicit_ledger_that_is_missing_is_not_created(home: Path, tmp_path: Path) -> None:
    missing = tmp_path / "nonexistent" / "dir" / "l.db"
    res = _run("--ledger", str(missing), "report", "1")
    assert res.exit_code == 2 and f"no ledger at {missing} (--ledger)" in res.output
    res = _run("runs", env={"PATCHD_LEDGER": str(missing)})
    assert res.exit_code == 2 and "($PATCHD_LEDGER)" in res.output
    fleet = generate_fleet(tmp_path / "fleet", 2, seed=1)
    res = _run("--ledger", str(missing), "scan", "--accounts", str(fleet / "accounts.yaml"))
    assert res.exit_code == 2
    assert f"folder {missing.parent} does not exist" in res.output
    assert not (tmp_path / "nonexistent").exists()


def test_the_nearest_ledger_upwards_is_used(home: Path, tmp_path: Path, monkeypatch) -> None:
    fleet = generate_fleet(home / "fleet", 2, seed=1)
    res = _run("scan", "--accounts", str(fleet / "accounts.yaml"), "--format", "csv")
    assert res.exit_code == 0, res.output
    assert (home / ".patchd" / "ledger.db").is_file()
    deeper = home / "fleet" / "accounts"
    monkeypatch.chdir(deeper)
    res = _run("scans", "--format", "csv")
    assert res.exit_code == 0, res.output
    assert res.output.splitlines()[1].startswith("1,")
    assert not (deeper / ".patchd").exists()


def test_a_failed_inventory_check_creates_no_ledger(home: Path, tmp_path: Path) -> None:
    fleet = generate_fleet(tmp_path / "fleet", 2, seed=1)
    accounts = str(fleet / "accounts.yaml")
    res = _run("scan", "--accounts", accounts, "--account", "p99999")
    assert res.exit_code == 2, res.output
    res = _run("rollout", BUNDLE, "--accounts", accounts, "--limit-account", "nobody", "--yes")
    assert res.exit_code == 2, res.output
    broken = tmp_path / "broken.yaml"
    broken.write_text("hosts: {web01: {transport: local}}\naccounts: [{id: x}]\n")
    res = _run("scan", "--accounts", str(broken))
    assert res.exit_code == 2, res.output
    assert list(home.iterdir()) == []


def test_rollout_says_where_backups_go_and_the_store_is_the_ledgers(
    home: Path, tmp_path: Path
) -> None:
    fleet = generate_fleet(tmp_path / "fleet", 6, seed=1)
    accounts = str(fleet / "accounts.yaml")
    res = CliRunner().invoke(
        cli, ["rollout", BUNDLE, "--accounts", accounts, "--yes", "--format", "csv"]
    )
    assert res.exit_code in (0, 1), res.output
    store = home / ".patchd" / "backups"
    assert f"backups go to {store} on web01" in res.stderr
    assert store.is_dir() and oct(store.stat().st_mode & 0o777) == "0o700"
    # a second working folder has its own ledger, and so its own store
    other = tmp_path / "other"
    other.mkdir()
    os.chdir(other)
    res = CliRunner().invoke(cli, ["rollout", BUNDLE, "--accounts", accounts, "--yes", "--dry-run"])
    assert res.exit_code in (0, 1), res.output
    assert "backups go to" not in res.stderr  # a dry run writes no backup


def test_backup_stores_per_host(tmp_path: Path) -> None:
    inventory_file = tmp_path / "accounts.yaml"
    inventory_file.write_text(
        yaml.safe_dump(
            {
                "hosts": {
                    "web01": {"transport": "local"},
                    "web02": {"transport": "ssh", "hostname": "web02.example.net"},
                    "web03": {"transport": "local", "backup_dir": "/srv/backups"},
                    "web04": {"transport": "local"},
                },
                "accounts": [
                    {"id": f"p{n}", "host": f"web0{n}", "root": str(root),
                     "policy": "auto", "php": "8.2",
                     "customer": {"id": "c1", "name": "C", "email": "c@example.com",
                                  "language": "en"}}
                    for n, root in ((1, tmp_path / "a1"), (2, "/srv/a2"), (3, "/srv/a3"),
                                    (4, tmp_path))
                ],
            }
        )
    )  # fmt: skip
    inventory = load_inventory(inventory_file)
    with (
        open_ledger(tmp_path / "one" / "ledger.db") as one,
        open_ledger(tmp_path / "two" / "ledger.db") as two,
    ):
        first, second = backup_dirs(one, inventory, None), backup_dirs(two, inventory, None)
        assert first["web01"] == str(tmp_path / "one" / "backups")
        assert first["web02"] == f"{HOST_STORES}/{ledger_id(one)}"
        assert first["web03"] == "/srv/backups"
        # the ledger lies inside an account of web04: its store is not next to the ledger
        assert first["web04"] == f"{HOST_STORES}/{ledger_id(one)}"
        assert ledger_id(one) != ledger_id(two) and len(ledger_id(one)) == 32
        assert first["web02"] != second["web02"] and first["web01"] != second["web01"]
        assert set(backup_dirs(one, inventory, "/given").values()) == {"/given"}


def test_the_prompt_names_bundle_accounts_installations_and_backups(
    home: Path, tmp_path: Path, monkeypatch
) -> None:
    import patchd.cli.confirm as confirm

    fleet = generate_fleet(tmp_path / "fleet", 12, seed=3)
    accounts = str(fleet / "accounts.yaml")
    assert _run("scan", "--accounts", accounts, "--format", "csv").exit_code in (0, 1)
    monkeypatch.setattr(confirm, "interactive", lambda: True)
    res = _run("rollout", BUNDLE, "--accounts", accounts, "--limit-host", "web01", input="n\n")
    assert res.exit_code == 1  # aborted
    text = res.output
    assert "bundle: wp-2026-001 (WordPress core, affected 6.4.0-6.4.2)" in text
    assert f"accounts: 6 of {accounts} on 1 host(s)" in text, text
    assert "installations to dry-run: " in text and "(per scan 1; the rollout scans" in text
    assert f"backups: {home / '.patchd' / 'backups'} on web01" in text
    assert text.rstrip().endswith("Aborted!")
