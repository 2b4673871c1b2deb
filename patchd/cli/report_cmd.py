"""``patchd report RUN``: support's success and failure lists of a run.

Formats: ``table`` (summary, per-host counts, then the success list, the failure list and
the policy-skipped list; "not affected" only with ``--outcome not-affected``), ``csv``
(one line per result, :data:`~patchd.report.lists.REPORT_COLUMNS`), ``json`` (DESIGN.md's
object plus ``per_host``, ``filters`` and per result ``policy``/``explanation``) and
``html`` (one self-contained page; ``--output FILE`` or stdout).
"""

from __future__ import annotations

import os
import sys
import textwrap
from pathlib import Path
from typing import Any

import click

from patchd.bundle.manifest import Bundle, load_bundle
from patchd.cli.ledger_use import reading_ledger
from patchd.cli.listing import TERMINAL_ROWS, all_option, more_line
from patchd.cli.output import format_options, resolve_format, stdout_console
from patchd.cli.selectors import PATCHES, bundle_named, run_id_of
from patchd.errors import BundleError, UsageError
from patchd.ledger import runs as ledger_runs
from patchd.ledger.models import reason_fits
from patchd.outcomes import Outcome, Reason
from patchd.report.formats import escape_text, json_document, render_rows
from patchd.report.headline import headline
from patchd.report.html import render_html
from patchd.report.lists import (
    HOST_COLUMNS,
    REPORT_COLUMNS,
    bundle_report_data,
    grouped,
    report_data,
)
from patchd.report.results import ResultFilter


def _percent(rate: float | None) -> str:
    return "–" if rate is None else f"{rate:.1%}"


def columns_of(data: dict[str, Any]) -> tuple[str, ...]:
    """The listing's columns: a merged bundle view names each result's run first."""
    return ("run", *REPORT_COLUMNS) if data.get("runs") else REPORT_COLUMNS


def render_table(data: dict[str, Any], *, console: Any = None, show_all: bool = True) -> str:
    """Summary, per-host counts and the lists of ``data`` as text tables."""
    footer = headline(data)
    # NOTE: a line of its own: as a table title it would wrap to the narrow table's width.
    if data.get("runs"):
        runs = ", ".join(str(r) for r in data["runs"])
        head = escape_text(f"bundle {data['bundle']}, runs {runs} merged ({footer})")
    else:
        head = escape_text(f"run {data['run']}: {data['bundle']} ({data['status']}; {footer})")
    if console is not None:
        head = textwrap.fill(head, width=console.width, subsequent_indent="  ")
    out = (
        head
        + "\n"
        + render_rows(
            [{"outcome": k, "count": v} for k, v in data["summary"].items()],
            ("outcome", "count"),
            "table",
            title="summary",
            console=console,
        )
    )
    rate_of = (
        (lambda _h: "dry run") if data.get("dry_run") else (lambda h: _percent(h["success_rate"]))
    )
    hosts = [{**h, "success_rate": rate_of(h)} for h in data["per_host"]]
    out += render_rows(hosts, HOST_COLUMNS, "table", title="per host", console=console)
    all_groups = data["filters"].get("outcome") == Outcome.NOT_AFFECTED.value
    groups = grouped(data["results"], all_groups=all_groups)
    cut_any = False
    for title, rows in groups:
        # NOTE (issue 17): on a terminal a list shows TERMINAL_ROWS rows unless --all.
        shown = rows if show_all else rows[:TERMINAL_ROWS]
        out += render_rows(
            shown, columns_of(data), "table", title=f"{title} ({len(rows)})", console=console
        )
        if len(shown) < len(rows):
            cut_any = True
            out += more_line(len(rows) - len(shown)) + "\n"
    if not groups:
        out += "no installation matches the filters\n"
    if cut_any:
        out += head + "\n"
    return out


def check_bundle_folder(folder: Path, bundle_id: str) -> Bundle:
    """Load (and so digest-check) the bundle at ``folder``; BundleError when it is edited
    or is another bundle than ``bundle_id`` (empty: any)."""
    bundle = load_bundle(folder)
    if bundle_id and bundle.id != bundle_id:
        raise BundleError(f"is bundle {bundle.id}, not {bundle_id}", where=str(folder))
    return bundle


def _write(text: str, output: Path | None) -> None:
    if output is None:
        click.echo(text, nl=False)
        return
    # NOTE: the report names customers and paths: readable by the operator only.
    fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)


@click.command(name="report")
@click.argument("run_arg", metavar="[RUN]", required=False, default=None)
@click.option(
    "--bundle",
    "bundle_arg",
    default=None,
    help="Instead of RUN: every run of this bundle (id or folder) merged into one current "
    "outcome per installation.",
)
@click.option("--outcome", type=click.Choice([o.value for o in Outcome]), default=None)
@click.option(
    "--reason",
    type=click.Choice([r.value for r in Reason]),
    default=None,
    help="Only this reason (of dry-run-failed, skipped or reverted).",
)
@click.option("--host", default=None, help="Only this host.")
@click.option("--customer", default=None, help="Only this customer id.")
@click.option("--account", default=None, help="Only this account id.")
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write to this file (mode 0600) instead of stdout.",
)
@all_option
@format_options(extra=("html",))
@click.pass_context
def report_command(
    ctx: click.Context,
    run_arg: str | None,
    bundle_arg: str | None,
    outcome: str | None,
    reason: str | None,
    host: str | None,
    customer: str | None,
    account: str | None,
    output: Path | None,
    show_all: bool,
    fmt: str,
    as_json: bool,
) -> None:
    """Summary, success list and failure list of run RUN (a number or 'latest'), or of
    every run of a bundle merged (--bundle ID), with filters.

    --format html writes one self-contained page (sortable, filterable, no network).
    """
    fmt = resolve_format(fmt, as_json)
    if (run_arg is None) == (bundle_arg is None):
        raise UsageError("name a RUN (a number or 'latest') or --bundle ID, not both")
    if reason and outcome and not reason_fits(Outcome(outcome), Reason(reason)):
        raise UsageError(f"--reason {reason} does not go with --outcome {outcome}")
    flt = ResultFilter(outcome, reason, host, customer, account)
    if bundle_arg is not None:
        # NOTE: a bundle named on the command line is checked before the ledger is needed.
        bundle_id, folder = bundle_named(bundle_arg)
        if folder is not None:
            bundle_id = check_bundle_folder(folder, bundle_id).id
    with reading_ledger(ctx) as ledger:
        if bundle_arg is not None:
            data = bundle_report_data(ledger, bundle_id, flt)
        else:
            run = ledger_runs.get_run(ledger, run_id_of(ledger, run_arg or ""))
            folder = PATCHES / run.bundle_id
            if folder.is_dir():
                check_bundle_folder(folder, run.bundle_id)
            data = report_data(ledger, run.id, flt)
    if fmt == "json":
        text = json_document(data)
    elif fmt == "csv":
        text = render_rows(data["results"], columns_of(data), "csv")
        # NOTE (issue 17): stdout stays CSV; which run it is goes to stderr.
        runs = ", ".join(str(r) for r in data.get("runs") or [data["run"]])
        click.echo(f"# run {runs}: {data['bundle']} ({headline(data)})", err=True)
    elif fmt == "html":
        text = render_html(data)
    else:
        # NOTE: off a terminal the default console is wide enough that nothing wraps.
        console = stdout_console() if output is None and sys.stdout.isatty() else None
        text = render_table(data, console=console, show_all=show_all or console is None)
    _write(text, output)
