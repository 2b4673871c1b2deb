"""``patchd notify`` as a library call: plan a run's emails, then preview or send them."""

from __future__ import annotations

from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

from patchd.bundle.manifest import Bundle
from patchd.errors import BundleError, UsageError
from patchd.inventory import Inventory
from patchd.ledger import emails as ledger_emails
from patchd.ledger import runs as ledger_runs
from patchd.ledger.db import Ledger
from patchd.ledger.models import RunStatus
from patchd.notify.group import Notice, plan_notices
from patchd.notify.preview import write_preview
from patchd.notify.render import BundleFacts, MailSettings, Renderer
from patchd.notify.send import RateLimiter, SmtpSettings, send_messages

#: Columns of the listing ``patchd notify`` prints (stable; see docs/support.md).
NOTIFY_COLUMNS = ("customer", "email", "language", "kind", "installations", "status", "detail")


@dataclass(frozen=True)
class NotifyRow:
    """What happened to one customer's email."""

    customer: str
    email: str | None
    language: str | None
    kind: str | None
    installations: int
    status: str
    """``previewed``, ``sent``, ``failed``, ``already-sent``, ``pending`` or ``held``."""
    detail: str | None = None


def plan_run(
    ledger: Ledger,
    run_id: int,
    inventory: Inventory,
    bundle: Bundle,
    *,
    all_clear: bool = False,
    include_unresolved: bool = False,
) -> list[Notice]:
    """The notices of a finished, non-dry run of ``bundle``; UsageError/BundleError if not."""
    run = ledger_runs.get_run(ledger, run_id)
    if run.dry_run:
        raise UsageError(f"run {run_id} is a dry run: nothing was done to tell customers about")
    if run.status in (RunStatus.RUNNING, RunStatus.INTERRUPTED):
        raise UsageError(f"run {run_id} is {run.status.value}: finish (resume) it first")
    if bundle.id != run.bundle_id or bundle.manifest.digest != run.bundle_digest:
        raise BundleError(
            f"run {run_id} rolled out bundle {run.bundle_id} ({run.bundle_digest[:12]}), "
            f"not this one ({bundle.id}, {bundle.manifest.digest[:12]})",
            where=str(bundle.path),
        )
    return plan_notices(
        run_id,
        ledger_runs.results(ledger, run_id),
        inventory,
        all_clear=all_clear,
        include_unresolved=include_unresolved,
    )


def _row(n: Notice, status: str, detail: str | None = None) -> NotifyRow:
    c = n.customer
    return NotifyRow(
        n.customer_id,
        c.email if c else None,
        c.language if c else None,
        n.kind,
        len(n.items),
        status,
        detail,
    )


def notify_run(
    ledger: Ledger,
    run_id: int,
    inventory: Inventory,
    bundle: Bundle,
    settings: MailSettings,
    *,
    preview: Path | None = None,
    smtp: SmtpSettings | None = None,
    all_clear: bool = False,
    include_unresolved: bool = False,
    retry_pending: bool = False,
    limiter: RateLimiter | None = None,
) -> list[NotifyRow]:
    """Preview (``preview`` folder) or send (``smtp``) the emails of ``run_id``."""
    if (preview is None) == (smtp is None):
        raise UsageError("choose exactly one of --preview DIR and --send")
    notices = plan_run(
        ledger,
        run_id,
        inventory,
        bundle,
        all_clear=all_clear,
        include_unresolved=include_unresolved,
    )
    renderer = Renderer(BundleFacts.from_manifest(bundle.manifest), settings)
    rows: list[NotifyRow] = []
    ready: list[tuple[Notice, EmailMessage]] = []
    for n in notices:
        if n.held:
            rows.append(_row(n, "held", n.held))
        else:
            ready.append((n, renderer.render(n)))
    if preview is not None:
        for n, msg in ready:
            path = write_preview(preview, run_id, n.customer_id, msg)
            state = ledger_emails.email_state(ledger, run_id, n.customer_id)
            note = f"ledger: {state.state.value}" if state else None
            rows.append(_row(n, "previewed", f"{path}" + (f" ({note})" if note else "")))
    else:
        assert smtp is not None
        by_id = {n.customer_id: n for n, _ in ready}
        sent = send_messages(
            ledger,
            run_id,
            [(n.customer_id, msg) for n, msg in ready],
            smtp,
            retry_pending=retry_pending,
            limiter=limiter,
        )
        for s in sent:
            rows.append(_row(by_id[s.customer_id], s.status, s.error or s.message_id))
    return sorted(rows, key=lambda r: r.customer)
