"""``patchd runs``: list the ledger's runs (newest first)."""

from __future__ import annotations

import click

from patchd.cli.ledger_use import reading_ledger
from patchd.cli.output import format_options, resolve_format
from patchd.report.formats import render_rows
from patchd.report.runs import RUNS_COLUMNS, runs_rows


@click.command(name="runs")
@click.option("--bundle", "bundle_id", default=None, help="Only the runs of this bundle id.")
@format_options()
@click.pass_context
def runs_command(ctx: click.Context, bundle_id: str | None, fmt: str, as_json: bool) -> None:
    """Every run: bundle, start and end, status (dry run, canary-stopped, finished,
    resumed, ...), outcome counts, the ledger file and the hosts' backup stores."""
    fmt = resolve_format(fmt, as_json)
    with reading_ledger(ctx) as ledger:
        rows = runs_rows(ledger, bundle_id=bundle_id)
    if fmt != "json":
        rows = [
            {
                **r,
                "counts": ", ".join(f"{k} {v}" for k, v in r["counts"].items()),
                "backups": ", ".join(r["backups"]),
            }
            for r in rows
        ]
    columns = (*RUNS_COLUMNS, "dry_run", "resumes") if fmt == "json" else RUNS_COLUMNS
    click.echo(
        render_rows(rows, columns, fmt, title="runs", json_key="runs"),  # type: ignore[arg-type]
        nl=False,
    )
