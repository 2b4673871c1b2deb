"""Output that fits an 80-column terminal, and pipes that get only data (issue 17, item 3).

Rendering is pinned with ``rich.console.Console(width=80)``: whole words (outcomes,
reasons, ids) are never cut, text wraps or moves to a detail view below the table.
"""

from __future__ import annotations

import csv
import io
import re
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from rich.console import Console
from rich.text import Text

from patchd.cli.main import cli
from patchd.cli.output import BarProgress
from patchd.report.fit import fit_columns
from patchd.report.formats import render_rows
from patchd.report.lists import REPORT_COLUMNS
from patchd_fixtures.fleet import generate_fleet

EXPLANATION = (
    "This installation runs PHP 7.2, but the fix needs PHP 7.4 or newer, so we did not "
    "install it; update PHP first (needs PHP >= 7.4, account has 7.2)."
)


def _console(width: int = 80) -> Console:
    return Console(width=width, file=io.StringIO(), color_system=None, highlight=False)


def _rows(n: int = 3) -> list[dict[str, str]]:
    return [
        {
            "account": f"p1000{i}", "customer": f"c50{i}", "host": "web01",
            "path": "subdomains/shop/html/wordpress-installation", "cms": "wordpress",
            "version": "6.4.1", "outcome": "dry-run-failed", "reason": "php-incompatible",
            "detail": "php-incompatible: needs PHP >= 7.4, account has 7.2", "policy": "auto",
            "explanation": EXPLANATION,
        }
        for i in range(n)
    ]  # fmt: skip


def _width(line: str) -> int:
    return Text(re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", line)).cell_len


def test_a_report_table_at_80_columns_keeps_words_whole() -> None:
    out = render_rows(_rows(), REPORT_COLUMNS, "table", title="failure list", console=_console())
    lines = out.splitlines()
    assert max(_width(line) for line in lines) <= 80, out
    # outcome and reason are never cut (the old output read "dry-r…")
    assert "…" not in out
    assert sum("dry-run-failed" in line and "php-incompatible" in line for line in lines) == 3
    # the explanation is complete (wrapped or in the detail view), word for word
    words = " ".join(out.split())
    assert EXPLANATION in words, out
    # no line holds a single word of a wrapped explanation column
    assert not any(line.strip() in ("This", "installation", "runs") for line in lines)
    assert "not shown at 80 columns: " in words and "(--format csv or json has every" in words


def test_the_fit_drops_the_least_needed_columns_first() -> None:
    cells = _rows(1)
    fit = fit_columns(cells, REPORT_COLUMNS, 80)
    assert {"account", "outcome", "reason"} <= set(fit.shown)
    assert "customer" in fit.left_out and "cms" in fit.left_out
    wide = fit_columns(cells, REPORT_COLUMNS, 400)
    assert wide.shown == list(REPORT_COLUMNS) and wide.fits


def test_a_wide_terminal_or_a_pipe_shows_every_column() -> None:
    wide = render_rows(_rows(), REPORT_COLUMNS, "table", console=_console(400))
    piped = render_rows(_rows(), REPORT_COLUMNS, "table")
    for out in (wide, piped):
        header = next(line for line in out.splitlines() if line.strip()).split()
        assert header == list(REPORT_COLUMNS)
        assert "not shown" not in out


def test_the_progress_bar_keeps_its_numbers_at_80_columns() -> None:
    console = Console(width=80, file=io.StringIO(), force_terminal=True, color_system=None)
    bar = BarProgress(console=console)
    bar.start(2000, "rollout wp-2026-001")
    for label, n in (("not-affected", 1402), ("patched", 517), ("dry-run-failed", 61),
                     ("already-patched", 12), ("skipped", 8)):  # fmt: skip
        bar.advance(n, label=label)
    with console.capture() as capture:
        console.print(bar._bar.get_renderable())
    bar.finish()
    lines = [line for line in capture.get().splitlines() if line.strip()]
    assert max(_width(line) for line in lines) <= 80
    assert "rollout wp-2026-001" in lines[0] and "2000/2000" in lines[0]
    assert "not-affected 1402 · patched 517 · dry-run-failed 61 · already-patched 12" in (
        " ".join(" ".join(lines[1:]).split())
    )


@pytest.fixture
def terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """stdout is an 80-column terminal."""
    import patchd.cli.listing as listing

    monkeypatch.setattr(listing, "on_terminal", lambda: True)
    monkeypatch.setattr(
        listing, "stdout_console", lambda: Console(width=80, color_system=None, highlight=False)
    )


def test_a_long_scan_on_a_terminal_ends_with_a_summary(tmp_path: Path, terminal: None) -> None:
    fleet = generate_fleet(tmp_path / "fleet", 50, seed=3)
    ledger = str(tmp_path / "l.db")
    res = CliRunner().invoke(
        cli, ["--ledger", ledger, "scan", "--accounts", str(fleet / "accounts.yaml")]
    )
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    assert max(_width(line) for line in lines) <= 80
    assert "installations per CMS and version" in res.stdout
    assert lines[-2].startswith("scan 1: ") and "0 error(s)" in lines[-2]
    assert lines[-1] == "every installation: patchd scans show 1 --all, or --format csv|json"
    everything = CliRunner().invoke(cli, ["--ledger", ledger, "scans", "show", "1", "--all"])
    assert everything.exit_code == 0
    count = int(lines[-2].split(": ")[1].split()[0])
    table = everything.stdout.split(" of each row:")[0]  # NOTE: the detail view follows
    rows = [x for x in table.splitlines() if x.strip().startswith("p1")]
    assert len(rows) == count
    assert max(_width(line) for line in everything.stdout.splitlines()) <= 80


def test_scan_csv_is_data_only_ids_and_errors_go_to_stderr(tmp_path: Path) -> None:
    fleet = generate_fleet(tmp_path / "fleet", 6, seed=1)
    gone = sorted((fleet / "accounts").iterdir())[0]
    shutil.rmtree(gone)  # NOTE: an account the scan cannot read: one error
    res = CliRunner().invoke(
        cli,
        ["--ledger", str(tmp_path / "l.db"), "scan", "--accounts", str(fleet / "accounts.yaml"),
         "--format", "csv"],
    )  # fmt: skip
    assert res.exit_code == 1, res.output
    table = list(csv.reader(io.StringIO(res.stdout)))
    assert {len(row) for row in table} == {10}, res.stdout  # no errors table appended
    assert table[0][0] == "account"
    assert res.stderr.startswith(f"# scan 1: {len(table) - 1} installation(s) in "), res.stderr
    assert "# error: web0" in res.stderr and gone.name in res.stderr


def test_rollout_and_report_csv_name_their_run_on_stderr(tmp_path: Path) -> None:
    fleet = generate_fleet(tmp_path / "fleet", 4, seed=1)
    ledger = str(tmp_path / "l.db")
    bundle = str(Path(__file__).resolve().parents[2] / "patches" / "wp-2026-001")
    res = CliRunner().invoke(
        cli,
        ["--ledger", ledger, "rollout", bundle, "--accounts", str(fleet / "accounts.yaml"),
         "--dry-run", "--format", "csv"],
    )  # fmt: skip
    assert res.exit_code in (0, 1), res.output
    assert "# run 1: wp-2026-001 (dry run, nothing written: " in res.stderr
    assert not any(line.startswith("#") for line in res.stdout.splitlines())
    report = CliRunner().invoke(cli, ["--ledger", ledger, "report", "1", "--format", "csv"])
    assert report.exit_code == 0
    assert report.stderr.startswith("# run 1: wp-2026-001 (dry run, nothing written: ")
    assert report.stdout.startswith("account,")
