"""``patchd notify RUN``: one email per customer from a run's results, previewed or sent."""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path
from typing import Any

import click

from patchd.bundle.manifest import load_bundle
from patchd.cli.exits import EXIT_OK, EXIT_TARGETS_FAILED
from patchd.cli.ledger_use import reading_ledger
from patchd.cli.output import accounts_option, format_options, resolve_format
from patchd.cli.selectors import PATCHES, bundle_folder, run_id_of
from patchd.errors import UsageError
from patchd.inventory import Inventory, load_inventory
from patchd.ledger import runs as ledger_runs
from patchd.notify.render import DEFAULT_DOMAIN, MailSettings
from patchd.notify.run import NOTIFY_COLUMNS, NotifyRow, notify_run
from patchd.notify.send import SmtpSettings
from patchd.report.formats import render_rows

PASSWORD_ENV = "PATCHD_SMTP_PASSWORD"
#: The sender of previews when neither --from nor PATCHD_MAIL_FROM names one.
PREVIEW_SENDER = "Security team <security@hoster.example>"
_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(?:/\s*min)?\s*$")


def parse_rate(value: str) -> float:
    """``N/min`` (or ``N``) as emails per minute; UsageError when not positive."""
    m = _RATE.match(value)
    if not m or float(m[1]) <= 0:
        raise UsageError(f"--rate: expected N/min with N > 0, got {value!r}")
    return float(m[1])


@click.command(name="notify")
@click.argument("run_arg", metavar="[RUN]", required=False, default=None)
@accounts_option("The inventory (accounts.yaml): customer names, addresses, languages.")
@click.option(
    "--bundle",
    "bundle_arg",
    default=None,
    help="Bundle folder or id (patches/<id>). Without RUN: one email per customer over "
    "every run of the bundle. With RUN: the run's bundle (default: patches/<bundle id>).",
)
@click.option(
    "--preview",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Write the emails as .eml files into this folder; send nothing.",
)
@click.option("--send", is_flag=True, help="Send the emails over SMTP.")
@click.option("--smtp-host", default="localhost", show_default=True)
@click.option("--smtp-port", default=25, show_default=True, type=click.IntRange(1, 65535))
@click.option("--starttls", is_flag=True, help="Upgrade the SMTP connection with STARTTLS.")
@click.option("--smtp-user", default=None, help=f"SMTP login (password from ${PASSWORD_ENV}).")
@click.option(
    "--from",
    "sender",
    envvar="PATCHD_MAIL_FROM",
    default=None,
    help="Sender, e.g. 'Security <security@hoster.example>' (env PATCHD_MAIL_FROM); "
    f"required with --send, previews default to {PREVIEW_SENDER!r}.",
)
@click.option(
    "--support", default=None, help="Support contact named in the emails (default: --from)."
)
@click.option("--rate", default="60/min", show_default=True, help="At most N emails per minute.")
@click.option("--all-clear", is_flag=True, help="Also tell checked, unaffected customers.")
@click.option(
    "--exposure",
    is_flag=True,
    help="Emails from a scan's exposure to the imported advisories instead of a run.",
)
@click.option(
    "--scan", "scan_id", type=int, default=None, help="With --exposure: the scan (default newest)."
)
@click.option(
    "--include-unresolved",
    is_flag=True,
    help="Also email customers with unreachable/error installations (held otherwise).",
)
@click.option("--retry-pending", is_flag=True, help="Send again emails left pending by a crash.")
@click.option(
    "--templates",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Folder overriding the shipped templates (<lang>/subject.txt.j2, ...).",
)
@click.option("--message-id-domain", default=DEFAULT_DOMAIN, show_default=True)
@format_options()
@click.pass_context
def notify_command(
    ctx: click.Context,
    run_arg: str | None,
    accounts_file: Path,
    bundle_arg: str | None,
    preview: Path | None,
    send: bool,
    smtp_host: str,
    smtp_port: int,
    starttls: bool,
    smtp_user: str | None,
    sender: str | None,
    support: str | None,
    rate: str,
    all_clear: bool,
    exposure: bool,
    scan_id: int | None,
    include_unresolved: bool,
    retry_pending: bool,
    templates: Path | None,
    message_id_domain: str,
    fmt: str,
    as_json: bool,
) -> None:
    """One email per customer from run RUN (a number or 'latest'), or with --bundle ID and
    no RUN over every run of the bundle: --preview DIR writes .eml files, --send sends.

    Emails tell each installation's current state (a rolled-back one is never told it is
    patched). The ledger records every email before and after sending: a customer already
    told the same about the bundle gets nothing new, a failed email is retried. Exit 1
    when an email failed or a customer was held.
    """
    fmt = resolve_format(fmt, as_json)
    if exposure and (run_arg is not None or bundle_arg is not None):
        raise UsageError("--exposure takes --scan ID, not a RUN or --bundle")
    if not exposure and scan_id is not None:
        raise UsageError("--scan goes with --exposure")
    if run_arg is None and bundle_arg is None and not exposure:
        raise UsageError("name a RUN, or a bundle with --bundle ID, or use --exposure")
    if send == (preview is not None):
        raise UsageError("choose exactly one of --preview DIR and --send")
    if sender is None:
        if send:
            raise UsageError("--send needs a sender: --from ADDRESS or $PATCHD_MAIL_FROM")
        # NOTE (issue 17): a preview needs no real sender; say which one it used.
        sender = PREVIEW_SENDER
        click.echo(
            f"preview: sender {PREVIEW_SENDER} (give --from or set PATCHD_MAIL_FROM for yours)",
            err=True,
        )
    per_minute = parse_rate(rate)
    if smtp_user and not os.environ.get(PASSWORD_ENV):
        raise UsageError(f"--smtp-user needs the password in ${PASSWORD_ENV}")
    settings = MailSettings(
        sender=sender, support=support, domain=message_id_domain, templates=templates
    )
    smtp = (
        SmtpSettings(
            host=smtp_host,
            port=smtp_port,
            starttls=starttls,
            user=smtp_user,
            password=os.environ.get(PASSWORD_ENV) if smtp_user else None,
            rate_per_minute=per_minute,
        )
        if send
        else None
    )
    inventory = load_inventory(accounts_file)
    if exposure:
        _notify_exposure(
            ctx, scan_id, inventory, settings, preview, smtp, all_clear, retry_pending, fmt
        )
        return
    # NOTE: a bundle named on the command line is checked before the ledger is needed.
    named = load_bundle(bundle_folder(bundle_arg)) if bundle_arg is not None else None
    with reading_ledger(ctx) as ledger:
        run_id = None if run_arg is None else run_id_of(ledger, run_arg)
        if named is not None:
            bundle = named
        else:
            assert run_id is not None
            bundle = load_bundle(PATCHES / ledger_runs.get_run(ledger, run_id).bundle_id)
        rows = notify_run(
            ledger,
            run_id,
            inventory,
            bundle,
            settings,
            preview=preview,
            smtp=smtp,
            all_clear=all_clear,
            include_unresolved=include_unresolved,
            retry_pending=retry_pending,
        )
    _finish(
        ctx,
        rows,
        fmt,
        f"emails of run {run_id}" if run_id else f"emails of bundle {bundle.id}",
        {"run": run_id, "bundle": bundle.id},
    )


def _finish(
    ctx: click.Context, rows: list[NotifyRow], fmt: str, title: str, meta: dict[str, Any]
) -> None:
    """Print what happened to each email; exit 1 when one failed or a customer was held."""
    click.echo(
        render_rows(
            [dataclasses.asdict(r) for r in rows],
            NOTIFY_COLUMNS,
            fmt,  # type: ignore[arg-type]
            title=title,
            json_key="emails",
            meta=meta,
        ),
        nl=False,
    )
    if fmt == "csv":
        # NOTE (issue 17): stdout stays CSV; which run (or scan) it is goes to stderr.
        click.echo("# " + ", ".join(f"{k} {v}" for k, v in meta.items() if v is not None), err=True)
    failed = any(r.status in ("failed", "held", "pending") for r in rows)
    ctx.exit(EXIT_TARGETS_FAILED if failed else EXIT_OK)


def _notify_exposure(
    ctx: click.Context,
    scan_id: int | None,
    inventory: Inventory,
    settings: MailSettings,
    preview: Path | None,
    smtp: SmtpSettings | None,
    all_clear: bool,
    retry_pending: bool,
    fmt: str,
) -> None:
    """``notify --exposure``: one email per customer with exposed installations."""
    from patchd.exposure.service import load_bundles, pick_scan, scan_exposure
    from patchd.notify.exposure import notify_exposure

    with reading_ledger(ctx) as ledger:
        scan = pick_scan(ledger, scan_id)
        result = scan_exposure(
            ledger,
            scan,
            customers={a.id: a.customer.id for a in inventory.accounts},
            bundles=load_bundles([PATCHES] if PATCHES.is_dir() else []),
        )
        rows = notify_exposure(
            ledger,
            scan.id,
            result.rows,
            inventory,
            settings,
            preview=preview,
            smtp=smtp,
            all_clear=all_clear,
            retry_pending=retry_pending,
        )
    _finish(ctx, rows, fmt, f"exposure emails of scan {scan.id}", {"scan": scan.id})
