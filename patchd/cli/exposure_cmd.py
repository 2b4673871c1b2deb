"""``patchd exposure``: which installations the imported advisories affect, per scan."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from pathlib import Path

import click

from patchd.cli.exits import EXIT_OK
from patchd.cli.ledger_use import reading_ledger
from patchd.cli.output import format_options, resolve_format
from patchd.cli.selectors import PATCHES
from patchd.errors import UsageError
from patchd.exposure import views
from patchd.exposure.service import load_bundles, pick_scan, scan_exposure
from patchd.inventory import load_inventory
from patchd.ledger import exposure as ledger_exposure
from patchd.ledger.advisories import count_advisories
from patchd.ledger.db import Ledger
from patchd.ledger.inventory_cache import LedgerInventoryCache
from patchd.ledger.models import Scan
from patchd.report.formats import json_document_chunks, render_rows


def customers_of(ledger: Ledger, scan: Scan, accounts_file: Path | None) -> dict[str, str]:
    """account -> customer id, from ``accounts_file`` or the scan's own inventory file
    (empty when neither can be read: rows then name no customer)."""
    path = accounts_file or Path(scan.inventory_path)
    if not path.is_file():
        return {}
    inventory = load_inventory(path, cache=LedgerInventoryCache(ledger))
    return {a.id: a.customer.id for a in inventory.accounts}


@click.command(name="exposure")
@click.option("--scan", "scan_id", type=int, default=None, help="Scan id (default: newest).")
@click.option(
    "--accounts",
    "accounts_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Inventory naming the customers (default: the file the scan read).",
)
@click.option(
    "--bundles",
    "bundle_dirs",
    multiple=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Bundle folders (or folders of bundles) whose advisories count as mitigated where "
    f"rolled out with intact files (default: ./{PATCHES}).",
)
@click.option(
    "--by",
    "by",
    type=click.Choice(["installation", "customer"]),
    default=None,
    help="customer: one line per customer with counts (default: one line per finding).",
)
@click.option("--cms", multiple=True, help="Only these CMSs (repeatable).")
@click.option(
    "--severity",
    type=click.Choice(["low", "medium", "high", "critical"]),
    default=None,
    help="Only advisories of at least this severity.",
)
@click.option(
    "--status",
    "statuses",
    multiple=True,
    type=click.Choice(["exposed", "mitigated", "unknown"]),
    help="Only rows with this status (repeatable).",
)
@click.option("--trend", is_flag=True, help="Exposed installations and customers per scan.")
@click.option("--recompute", is_flag=True, help="Compute the scan's exposure again.")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write to this file instead of stdout.",
)
@format_options(extra=("html",))
@click.pass_context
def exposure_command(
    ctx: click.Context,
    scan_id: int | None,
    accounts_file: Path | None,
    bundle_dirs: tuple[Path, ...],
    by: str | None,
    cms: tuple[str, ...],
    severity: str | None,
    statuses: tuple[str, ...],
    trend: bool,
    recompute: bool,
    output: Path | None,
    fmt: str,
    as_json: bool,
) -> None:
    """Per installation and extension of a scan, the imported advisories that affect it:
    exposed, mitigated (a bundle naming the advisory is in place and the scan confirms
    its files) or unknown (version unreadable). The result is kept per scan."""
    fmt = resolve_format(fmt, as_json)
    if not bundle_dirs and PATCHES.is_dir():
        bundle_dirs = (PATCHES,)
    with reading_ledger(ctx) as ledger:
        if count_advisories(ledger) == 0:
            raise UsageError("no advisories imported: run 'patchd advisories import SOURCE'")
        scan = pick_scan(ledger, scan_id)
        result = scan_exposure(
            ledger,
            scan,
            customers=customers_of(ledger, scan, accounts_file),
            bundles=load_bundles(bundle_dirs),
            recompute=recompute,
        )
        points = ledger_exposure.trend(ledger)
    rows = views.filter_rows(result.rows, cms=cms, severity=severity, status=statuses)
    if not trend and by != "customer":
        rows = views.sort_rows(rows)
    filters = {
        k: v
        for k, v in {
            "cms": ",".join(cms),
            "severity": severity or "",
            "status": ",".join(statuses),
        }.items()
        if v
    }
    if fmt == "html":
        from patchd.report.exposure_html import render_exposure_html

        text = render_exposure_html(scan, rows, points, filters=filters)
    elif trend:
        text = render_rows(
            [_trend_row(p) for p in points],
            views.TREND_COLUMNS,
            fmt,  # type: ignore[arg-type]
            title="exposure per scan",
            json_key="trend",
        )
    elif by == "customer":
        text = render_rows(
            views.by_customer(rows),
            views.CUSTOMER_COLUMNS,
            fmt,  # type: ignore[arg-type]
            title=f"exposure of scan {scan.id} by customer",
            json_key="customers",
            meta={"scan": scan.id},
        )
    elif fmt == "json":
        # NOTE: written in pieces: a fleet's exposure can be hundreds of thousands of rows.
        chunks = json_document_chunks({"scan": scan.id}, "exposure", (r.to_json() for r in rows))
        _write(output, chunks)
        ctx.exit(EXIT_OK)
    else:
        text = render_rows(
            [views.table_row(r) for r in rows],
            views.COLUMNS,
            fmt,  # type: ignore[arg-type]
            title=f"exposure of scan {scan.id}",
        )
    _write(output, [text])
    ctx.exit(EXIT_OK)


def _write(output: Path | None, chunks: Iterable[str]) -> None:
    if output is None:
        for chunk in chunks:
            click.echo(chunk, nl=False)
        return
    with output.open("w", encoding="utf-8") as fh:
        for chunk in chunks:
            fh.write(chunk)


def _trend_row(p: ledger_exposure.TrendPoint) -> dict[str, object]:
    data = dataclasses.asdict(p)
    data["scan"] = data.pop("scan_id")
    return data
