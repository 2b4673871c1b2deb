"""``patchd report``: summary, per-host counts, lists, filters, formats."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from patchd.report.lists import REPORT_COLUMNS
from tests.e2e import kit
from tests.notify.conftest import NotifyWorld


def _report(world: NotifyWorld, *args: str) -> kit.CliResult:
    return kit.patchd(world.ledger, "report", str(world.run), *args)


def test_json_keeps_the_design_shape_and_adds_keys(report_world: NotifyWorld) -> None:
    res = _report(report_world, "--json")
    assert res.code == 0, res.err
    data = res.json
    for key in ("run", "bundle", "results", "summary", "success_rate", "per_host", "filters"):
        assert key in data
    assert data["summary"] == {
        "patched": 2,
        "not-affected": 1,
        "skipped": 2,
        "dry-run-failed": 3,
        "unreachable": 1,
    }
    # (patched + already-patched) / affected = 2 / 8
    assert data["success_rate"] == 2 / 8
    hosts = {h["host"]: h for h in data["per_host"]}
    assert hosts["down01"] == {
        "host": "down01",
        "total": 1,
        "success": 0,
        "failed": 1,
        "success_rate": 0.0,
        "outcomes": {"unreachable": 1},
    }
    assert hosts["web01"]["success"] == 2 and hosts["web01"]["failed"] == 3
    rows = {r["account"]: r for r in data["results"]}
    for r in rows.values():
        assert set(r) == set(REPORT_COLUMNS)
    assert rows["a-mod"]["explanation"] == (
        "A file the fix changes was modified in this installation, so we did not touch it "
        "(file wp-includes/comment-template.php, change 2)."
    )
    assert "needs PHP 7.4 or newer, the account has PHP 7.2" in rows["a-oldphp"]["explanation"]
    assert "Connection refused" in rows["a-down"]["explanation"]
    assert rows["a-notify"]["policy"] == "notify-only"


def test_filters(report_world: NotifyWorld) -> None:
    def accounts(*args: str) -> set[str]:
        return {r["account"] for r in _report(report_world, "--json", *args).json["results"]}

    assert accounts("--outcome", "dry-run-failed") == {"a-mod", "a-oldphp", "a-evil"}
    assert accounts("--reason", "php-incompatible") == {"a-oldphp"}
    assert accounts("--host", "down01") == {"a-down"}
    assert accounts("--customer", "c-de") == {"a-patch", "a-mod"}
    assert accounts("--account", "a-notify") == {"a-notify"}
    filtered = _report(report_world, "--json", "--host", "down01").json
    assert filtered["filters"] == {"host": "down01"}
    assert sum(filtered["summary"].values()) == 9  # the summary covers the whole run
    bad = _report(report_world, "--outcome", "patched", "--reason", "modified")
    assert bad.code == 2


def test_table_has_summary_lists_and_plain_reasons(report_world: NotifyWorld) -> None:
    out = _report(report_world).out
    assert "success rate 25.0%" in out
    assert "per host" in out and "down01" in out
    assert "success list (2)" in out and "failure list (4)" in out
    assert "skipped (policy) (2)" in out  # the title names the kinds present (issue 17)
    assert "not affected" not in out.split("per host")[1]  # most of a fleet: only on request
    assert "change 2" in out
    assert "\u202e" not in out  # bidi override shown escaped
    na = _report(report_world, "--outcome", "not-affected").out
    assert "not affected (1)" in na and "a-newer" in na


def test_csv_columns_are_stable(report_world: NotifyWorld, tmp_path: Path) -> None:
    res = _report(report_world, "--format", "csv", "--output", str(tmp_path / "r.csv"))
    assert res.code == 0 and res.out == ""
    assert (tmp_path / "r.csv").stat().st_mode & 0o777 == 0o600
    rows = list(csv.reader(io.StringIO((tmp_path / "r.csv").read_text(), newline="")))
    assert (
        tuple(rows[0])
        == REPORT_COLUMNS
        == (
            "account",
            "customer",
            "host",
            "path",
            "cms",
            "version",
            "outcome",
            "reason",
            "detail",
            "policy",
            "explanation",
        )
    )
    assert len(rows) == 1 + 9
