"""``patchd rollout`` and ``patchd rollback``; :func:`emit_run` prints a run's results."""

from __future__ import annotations

import dataclasses
import gc
import shlex
import textwrap
from collections import Counter
from pathlib import Path

import click

from patchd.bundle.manifest import load_bundle
from patchd.cli.confirm import confirm_writes
from patchd.cli.exits import EXIT_OK, EXIT_TARGETS_FAILED
from patchd.cli.ledger_use import ledger_is_new, reading_ledger, writing_ledger
from patchd.cli.listing import (
    TERMINAL_ROWS,
    all_option,
    counts_text,
    cut,
    more_line,
    on_terminal,
    table_console,
)
from patchd.cli.output import (
    accounts_option,
    format_options,
    make_progress,
    parallel_option,
    resolve_format,
)
from patchd.cli.rollout_prompt import rollout_question
from patchd.cli.selectors import bundle_folder, check_known, run_id_of
from patchd.errors import UsageError
from patchd.inventory import HeldCache, Inventory, load_inventory
from patchd.ledger.backup_store import backup_dirs, describe_stores
from patchd.ledger.inventory_cache import LedgerInventoryCache
from patchd.ledger.models import RunStatus
from patchd.outcomes import Outcome
from patchd.report.formats import json_document, json_document_chunks, render_rows
from patchd.report.headline import headline
from patchd.report.results import RESULT_COLUMNS, iter_result_rows, run_json, run_json_head
from patchd.rollout.rollback import rollback_run
from patchd.rollout.run import RolloutOptions, run_rollout

#: Outcomes after which the command exits 1 ("some targets failed").
FAILED = {
    Outcome.DRY_RUN_FAILED,
    Outcome.APPLY_FAILED,
    Outcome.REVERTED,
    Outcome.UNREACHABLE,
    Outcome.ERROR,
}


def _split(values: tuple[str, ...]) -> frozenset[str]:
    return frozenset(v.strip() for value in values for v in value.split(",") if v.strip())


#: Outcomes a long terminal listing leaves to the summary (nothing to act on).
QUIET = {Outcome.NOT_AFFECTED.value, Outcome.PATCHED.value, Outcome.ALREADY_PATCHED.value}


def emit_run(data: dict, fmt: str, *, title: str, show_all: bool = False) -> None:
    """Print a run's results: a JSON object, CSV (the run's id on stderr), or a results
    table fitted to the terminal and a closing summary."""
    if fmt == "json":
        click.echo(json_document(data), nl=False)
        return
    if fmt == "csv":
        click.echo(render_rows(data["results"], RESULT_COLUMNS, "csv"), nl=False)
        # NOTE (issue 17): stdout stays CSV; the id and headline go to stderr.
        click.echo(f"# run {data['run']}: {data['bundle']} ({headline(data)})", err=True)
        return
    console = table_console()
    rows = data["results"]
    hidden: Counter[str] = Counter()
    if on_terminal() and not show_all and len(rows) > TERMINAL_ROWS:
        hidden = Counter(r["outcome"] for r in rows if r["outcome"] in QUIET)
        rows = [r for r in rows if r["outcome"] not in QUIET]
    shown, left = cut(rows, show_all)
    out = render_rows(shown, RESULT_COLUMNS, "table", title=title, console=console)
    if hidden or left:
        hidden.update(Counter(r["outcome"] for r in rows[len(shown) :]))
        line = f"{more_line(sum(hidden.values()))} ({counts_text(hidden)})"
        out += (textwrap.fill(line, console.width) if console else line) + "\n"
    summary = [{"outcome": k, "count": v} for k, v in data["summary"].items()]
    out += render_rows(
        summary,
        ("outcome", "count"),
        "table",
        title=f"summary of run {data['run']} ({headline(data)})",
        console=console,
    )
    click.echo(out, nl=False)


def _check_limits(inventory: Inventory, options: RolloutOptions, accounts_file: Path) -> None:
    """Every --limit-* value names something in the inventory (exit 2 otherwise)."""
    source = str(accounts_file)
    check_known("--limit-account", options.accounts, (a.id for a in inventory.accounts), source)
    check_known("--limit-host", options.hosts, inventory.hosts, source)
    check_known(
        "--limit-customer", options.customers, (a.customer.id for a in inventory.accounts), source
    )


def exit_code(data: dict) -> int:
    if data.get("status") == RunStatus.GATE_STOPPED.value:
        return EXIT_TARGETS_FAILED
    return EXIT_TARGETS_FAILED if any(o in FAILED for o in data["summary"]) else EXIT_OK


def _failure_rate(_ctx: click.Context, _param: click.Parameter, value: str) -> float:
    """``--max-failure-rate``: a percentage (``5``, ``5%``, ``2.5``) as a fraction."""
    text = value.strip().removesuffix("%").strip()
    try:
        percent = float(text)
    except ValueError:
        raise click.BadParameter(f"not a percentage: {value!r} (e.g. 5 or 5%)") from None
    if not 0 <= percent <= 100:
        raise click.BadParameter(f"must be between 0 and 100 (percent), not {value!r}")
    return percent / 100


@click.command(name="rollout")
@click.argument("bundle_arg", metavar="BUNDLE")
@accounts_option()
@click.option("--dry-run", is_flag=True, help="Match and dry-run only; write nothing.")
@click.option(
    "--scan",
    "scan_id",
    type=int,
    default=None,
    help="Match against this stored scan instead of scanning now.",
)
@click.option("--resume", "resume_run", type=int, default=None, help="Resume this interrupted run.")
@click.option("--limit-host", multiple=True, help="Only these hosts (comma list, repeatable).")
@click.option("--limit-account", multiple=True, help="Only these accounts.")
@click.option("--limit-customer", multiple=True, help="Only these customers.")
@click.option(
    "--canary",
    type=click.IntRange(1),
    default=None,
    help="Stop after N installations were patched, then report.",
)
@parallel_option("Hosts worked on at once.")
@click.option(
    "--per-host",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Agent sessions per host working at once (ignored with --canary).",
)
@click.option(
    "--batch",
    default=25,
    show_default=True,
    type=click.IntRange(1, 10000),
    help="Installations sent to a host per request.",
)
@click.option(
    "--backup-dir",
    default=None,
    help="Backup store on every host (default: the host's backup_dir, else one tied to "
    "the ledger: .patchd/backups for local hosts, /var/lib/patchd/backups/<ledger id> "
    "over ssh).",
)
@click.option(
    "--require-tested",
    is_flag=True,
    help="Skip installations whose CMS version and PHP no 'patchd test' cell passed.",
)
@click.option(
    "--no-health-check",
    "no_health_check",
    is_flag=True,
    help="Do not fetch the sites' URLs before and after applying (see docs/operator.md).",
)
@click.option(
    "--health-timeout",
    default=10.0,
    show_default=True,
    type=click.FloatRange(0.1, 300),
    help="Seconds a health check request may take.",
)
@click.option(
    "--health-per-host",
    default=4,
    show_default=True,
    type=click.IntRange(1, 256),
    help="Health check requests to one host at once.",
)
@click.option(
    "--health-settle",
    default=3.0,
    show_default=True,
    type=click.FloatRange(0, 60),
    help="Seconds after an apply during which PHP's opcache may still serve the old code "
    "(opcache.revalidate_freq + 1; a site found fine earlier is fetched again then).",
)
@click.option(
    "--max-failure-rate",
    metavar="P",
    default="5%",
    show_default=True,
    callback=_failure_rate,
    help="Fleet failure gate: stop applying when more than this share of the installations "
    "applied failed (apply-failed or reverted); judged after max(canary, 4) applies; "
    "100 turns it off.",
)
@click.option(
    "--continue-past-gate",
    is_flag=True,
    help="Resume a run the fleet failure gate stopped (after looking at its failures).",
)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@all_option
@format_options()
@click.pass_context
def rollout_command(
    ctx: click.Context,
    bundle_arg: str,
    accounts_file: Path,
    dry_run: bool,
    scan_id: int | None,
    resume_run: int | None,
    limit_host: tuple[str, ...],
    limit_account: tuple[str, ...],
    limit_customer: tuple[str, ...],
    canary: int | None,
    parallel: int,
    per_host: int,
    batch: int,
    backup_dir: str | None,
    require_tested: bool,
    no_health_check: bool,
    health_timeout: float,
    health_per_host: int,
    health_settle: float,
    max_failure_rate: float,
    continue_past_gate: bool,
    yes: bool,
    show_all: bool,
    fmt: str,
    as_json: bool,
) -> None:
    """Match BUNDLE (a bundle folder, or an id in patches/) against the accounts, dry-run
    it everywhere, apply where it succeeded.

    Running the same command again resumes an interrupted run; a finished bundle is
    reported as already-patched. Exit 1 when any installation failed.
    """
    fmt = resolve_format(fmt, as_json)
    if backup_dir is not None and not backup_dir.startswith("/"):
        # NOTE: the path is used by the agent on each host (local agents run in "/", SSH
        # agents in the login's home), never relative to where patchd was started.
        raise UsageError(f"--backup-dir must be an absolute path, not {backup_dir!r}")
    bundle = load_bundle(bundle_folder(bundle_arg, name="BUNDLE"))
    options = RolloutOptions(
        dry_run=dry_run,
        hosts=_split(limit_host),
        accounts=_split(limit_account),
        customers=_split(limit_customer),
        canary=canary,
        parallel_hosts=parallel,
        per_host=per_host,
        batch=batch,
        backup_dir=backup_dir,
        require_tested=require_tested,
        health_check=not no_health_check,
        health_per_host=health_per_host,
        health_timeout=health_timeout,
        health_settle=health_settle,
        max_failure_rate=max_failure_rate,
        continue_past_gate=continue_past_gate,
    )
    # NOTE (issue 17): a new ledger is created only after the inventory passed its checks.
    inventory = None
    held = HeldCache()
    if ledger_is_new(ctx):
        inventory = load_inventory(accounts_file, cache=held)
        _check_limits(inventory, options, accounts_file)
    with writing_ledger(ctx) as ledger:
        held.hand_to(LedgerInventoryCache(ledger))
        inventory = inventory or load_inventory(accounts_file, cache=LedgerInventoryCache(ledger))
        _check_limits(inventory, options, accounts_file)
        stores = backup_dirs(ledger, inventory, backup_dir)
        options = dataclasses.replace(options, host_backup_dirs=stores)
        if not dry_run:
            confirm_writes(
                lambda inv=inventory: rollout_question(
                    bundle,
                    inv,
                    options,
                    ledger,
                    accounts_file=accounts_file,
                    scan_id=scan_id,
                    stores=stores,
                ),
                yes,
                what=f"Roll out {bundle.id} into the accounts of {accounts_file}?",
            )
            used = {a.host for a in inventory.accounts if options.in_scope(a)}
            click.echo(f"backups go to {describe_stores(stores, used)}", err=True)
        # NOTE: the inventory (and all else loaded) lives as long as the rollout; frozen,
        # the cyclic collector stops walking its objects on every full collection (a few
        # hundred thousand at 50,000 accounts). Unfrozen afterwards: nothing leaks into a
        # longer-lived process (tests call the command in-process).
        gc.freeze()
        try:
            report = run_rollout(
                bundle,
                inventory,
                ledger,
                inventory_path=accounts_file,
                options=options,
                scan_id=scan_id,
                resume_run=resume_run,
                progress=make_progress(),
            )
        finally:
            gc.unfreeze()
        del inventory  # NOTE: not needed for the output; large fleets need the room
        if report.resumed and fmt != "json":
            click.echo(f"resumed run {report.run_id}", err=True)
        if report.gate is not None:
            _gate_message(ctx, report.run_id, report.gate)
        if report.untested:
            action = (
                "skipped"
                if require_tested
                else "would be rolled out anyway"
                if dry_run
                else "rolled out anyway"
            )
            click.echo(
                f"warning: {len(report.untested)} installation(s) run a configuration no "
                f"'patchd test' cell passed ({action}), e.g. {report.untested[0]}",
                err=True,
            )
        if fmt == "json":
            # NOTE: written a row at a time from the ledger (50,000 rows held as models,
            # dicts and one string were the controller's peak memory).
            head = run_json_head(ledger, report.run_id)
            rows = iter_result_rows(ledger, report.run_id)
            for chunk in json_document_chunks(head, "results", rows):
                click.echo(chunk, nl=False)
            ctx.exit(exit_code(head))
        data = run_json(ledger, report.run_id)
    emit_run(
        data,
        fmt,
        title=f"run {report.run_id}: {bundle.id} ({report.status.value})",
        show_all=show_all,
    )
    ctx.exit(exit_code(data))


def _gate_message(ctx: click.Context, run_id: int, why: str) -> None:
    """Tell the operator the gate stopped the run, and how to look and go on."""
    argv = (ctx.find_root().meta.get("patchd.argv") or []) + ["--continue-past-gate"]
    again = " ".join(shlex.quote(a) for a in argv)
    click.echo(
        f"fleet failure gate: {why}; stopped applying, the rest is skipped (gate).\n"
        f"Look at the failures: patchd report {run_id} --outcome reverted (and apply-failed);"
        f" to go on: patchd {again}",
        err=True,
    )


@click.command(name="rollback")
@click.argument("run_arg", metavar="RUN")
@accounts_option()
@click.option("--account", default=None, help="Only this account.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@format_options()
@click.pass_context
def rollback_command(
    ctx: click.Context,
    run_arg: str,
    accounts_file: Path,
    account: str | None,
    yes: bool,
    fmt: str,
    as_json: bool,
) -> None:
    """Restore the originals of run RUN (a number or 'latest') exactly; files changed
    since are left and reported."""
    fmt = resolve_format(fmt, as_json)
    inventory = load_inventory(accounts_file)
    with reading_ledger(ctx) as ledger:
        run_id = run_id_of(ledger, run_arg)
        what = f"account {account} of run {run_id}" if account else f"run {run_id}"
        confirm_writes(f"Roll back {what}?", yes)
        items = rollback_run(ledger, inventory, run_id, account=account, progress=make_progress())
    rows = [
        {
            "account": i.account,
            "host": i.host,
            "path": i.path,
            "status": "restored" if i.ok else "conflict",
            "detail": i.detail,
            "conflicts": ", ".join(i.conflicts),
        }
        for i in items
    ]
    click.echo(
        render_rows(
            rows,
            ("account", "host", "path", "status", "detail", "conflicts"),
            fmt,
            title=f"rollback of {what}",
            json_key="installations",  # type: ignore[arg-type]
            meta={"run": run_id},
        ),
        nl=False,
    )
    if fmt == "csv":
        click.echo(f"# run {run_id}: rollback of {what}", err=True)
    ctx.exit(EXIT_OK if all(i.ok for i in items) else EXIT_TARGETS_FAILED)
