"""``patchd notify`` as a library call: plan a run's (or a bundle's) emails, then preview or
send them.

Emails tell the *current* state of each installation over all runs of the bundle
(:mod:`patchd.ledger.current`): a rolled-back installation is never told it is patched,
and the canary's ``patched`` is what a customer reads, not the rest's ``already-patched``.
A customer already told exactly this about the bundle (in any run) gets nothing new:
status ``already-sent``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

from patchd.bundle.manifest import Bundle, diffs_digest
from patchd.errors import BundleError, UsageError
from patchd.inventory import Inventory
from patchd.ledger import current as ledger_current
from patchd.ledger import emails as ledger_emails
from patchd.ledger import runs as ledger_runs
from patchd.ledger.db import Ledger
from patchd.ledger.models import Result, Run, RunStatus
from patchd.notify.group import Notice, plan_notices
from patchd.notify.preview import write_preview
from patchd.notify.render import BundleFacts, MailSettings, Renderer
from patchd.notify.send import RateLimiter, SmtpSettings, send_messages
from patchd.report.sites import RunSites, as_site_result

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


def _check_bundle(run: Run, bundle: Bundle) -> None:
    # NOTE: a run of a bundle sealed by an older patchd recorded the diffs-only digest; the
    # same bundle re-sealed after review (patchd reseal) still describes that run.
    digests = {bundle.manifest.digest, diffs_digest(bundle.diffs)}
    if bundle.id != run.bundle_id or run.bundle_digest not in digests:
        raise BundleError(
            f"run {run.id} rolled out bundle {run.bundle_id} ({run.bundle_digest[:12]}), "
            f"not this one ({bundle.id}, {bundle.manifest.digest[:12]})",
            where=str(bundle.path),
        )


def _finished(run: Run) -> None:
    if run.dry_run:
        raise UsageError(f"run {run.id} is a dry run: nothing was done to tell customers about")
    if run.status in (RunStatus.RUNNING, RunStatus.INTERRUPTED):
        raise UsageError(f"run {run.id} is {run.status.value}: finish (resume) it first")


def current_of_run(ledger: Ledger, run: Run) -> list[Result]:
    """The results of ``run``, each replaced by its installation's current result over
    every real run of the bundle."""
    merged = {(r.account, r.path): r for r in ledger_current.bundle_results(ledger, run.bundle_id)}
    return [merged.get((r.account, r.path), r) for r in ledger_runs.results(ledger, run.id)]


def plan_run(
    ledger: Ledger,
    run_id: int,
    inventory: Inventory,
    bundle: Bundle,
    *,
    all_clear: bool = False,
    include_unresolved: bool = False,
) -> list[Notice]:
    """The notices of a finished, non-dry run of ``bundle`` (current states, see the
    module); UsageError/BundleError if not."""
    run = ledger_runs.get_run(ledger, run_id)
    _finished(run)
    _check_bundle(run, bundle)
    sites = RunSites(ledger)  # NOTE (issue 17): the scan's path of each installation
    return plan_notices(
        run_id,
        [as_site_result(r, sites(r.run_id)) for r in current_of_run(ledger, run)],
        inventory,
        all_clear=all_clear,
        include_unresolved=include_unresolved,
    )


def plan_bundle(
    ledger: Ledger,
    inventory: Inventory,
    bundle: Bundle,
    *,
    all_clear: bool = False,
    include_unresolved: bool = False,
) -> list[Notice]:
    """One notice per customer over every real run of ``bundle``: the current state of
    each installation. The email is filed under the newest run naming the customer."""
    runs = ledger_current.real_runs(ledger, bundle.id)
    if not runs:
        raise UsageError(f"bundle {bundle.id} has no run that wrote (only dry runs, or none)")
    for run in runs:
        _finished(run)
        _check_bundle(run, bundle)
    results = ledger_current.bundle_results(ledger, bundle.id)
    newest: dict[str, int] = {}
    for run in runs:
        for r in ledger_runs.results(ledger, run.id):
            newest[r.customer_id or ""] = run.id
    sites = RunSites(ledger)  # NOTE (issue 17): the scan's path of each installation
    notices = plan_notices(
        runs[-1].id,
        [as_site_result(r, sites(r.run_id)) for r in results],
        inventory,
        all_clear=all_clear,
        include_unresolved=include_unresolved,
    )
    return [dataclasses.replace(n, run_id=newest.get(n.customer_id, n.run_id)) for n in notices]


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
    run_id: int | None,
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
    """Preview (``preview`` folder) or send (``smtp``) the emails of ``run_id``, or of
    every run of ``bundle`` when ``run_id`` is None (one email per customer per bundle)."""
    if (preview is None) == (smtp is None):
        raise UsageError("choose exactly one of --preview DIR and --send")
    options = {"all_clear": all_clear, "include_unresolved": include_unresolved}
    if run_id is None:
        notices = plan_bundle(ledger, inventory, bundle, **options)
    else:
        notices = plan_run(ledger, run_id, inventory, bundle, **options)
    renderer = Renderer(BundleFacts.from_manifest(bundle.manifest), settings)
    rows: list[NotifyRow] = []
    ready: list[tuple[Notice, EmailMessage]] = []
    for n in notices:
        if n.held:
            rows.append(_row(n, "held", n.held))
            continue
        told = ledger_emails.told_before(ledger, bundle.id, n.customer_id)
        if told is not None and all(told.get(k) == v for k, v in n.told.items()):
            rows.append(_row(n, "already-sent", "told this before about this bundle"))
            continue
        ready.append((n, renderer.render(n)))
    if preview is not None:
        for n, msg in ready:
            path = write_preview(preview, n.run_id, n.customer_id, msg)
            key = ledger_emails.told_key(n.told)
            state = ledger_emails.email_state(ledger, n.run_id, n.customer_id, key)
            note = f"ledger: {state.state.value}" if state else None
            rows.append(_row(n, "previewed", f"{path}" + (f" ({note})" if note else "")))
    else:
        assert smtp is not None
        sent = send_messages(
            ledger,
            [(n, msg) for n, msg in ready],
            smtp,
            retry_pending=retry_pending,
            limiter=limiter,
        )
        by_id = {n.customer_id: n for n, _ in ready}
        for s in sent:
            rows.append(_row(by_id[s.customer_id], s.status, s.error or s.message_id))
    return sorted(rows, key=lambda r: r.customer)
