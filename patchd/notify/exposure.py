"""``patchd notify --exposure``: one email per customer from a scan's exposure.

A customer with exposed installations gets one email listing every one of them (path,
CMS and version, each advisory's title and CVE ids, the version to update to); with
``all_clear`` a customer whose installations were all checked and none is exposed is
told so. A customer with an installation whose version could not be read is not told
"all clear" (held). The ledger keeps at most one exposure email per scan and customer.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from patchd.errors import LedgerError, UsageError
from patchd.exposure.model import ExposureRow, Status
from patchd.inventory import Customer, Inventory
from patchd.ledger import exposure_emails as ledger_mails
from patchd.ledger import scans as ledger_scans
from patchd.ledger.db import Ledger
from patchd.ledger.models import EmailState
from patchd.notify.preview import write_preview
from patchd.notify.render import CMS_NAMES, MailSettings, build_message, template_environments
from patchd.notify.run import NotifyRow
from patchd.notify.send import RateLimiter, SmtpSettings, _Connection


@dataclass
class ExposureNotice:
    """What one customer is told about one scan."""

    scan_id: int
    customer: Customer
    installations: list[dict[str, Any]] = field(default_factory=list)
    checked: int = 0
    unknown: int = 0

    @property
    def kind(self) -> str | None:
        if self.installations:
            return "exposed"
        return "all-clear" if self.checked and not self.unknown else None


def plan_exposure(
    ledger: Ledger, scan_id: int, rows: Iterable[ExposureRow], inventory: Inventory
) -> list[ExposureNotice]:
    """One notice per customer with an installation in the scan."""
    accounts = {a.id: a for a in inventory.accounts}
    notices: dict[str, ExposureNotice] = {}
    for inst in ledger_scans.iter_scan_installations(ledger, scan_id, with_extensions=False):
        account = accounts.get(inst.account)
        if account is None:
            continue
        c = account.customer
        notices.setdefault(c.id, ExposureNotice(scan_id, c)).checked += 1
    grouped: dict[tuple[str, str, str], list[ExposureRow]] = defaultdict(list)
    for r in rows:
        account = accounts.get(r.account)
        if account is None or account.customer.id not in notices:
            continue
        if r.status is Status.UNKNOWN:
            notices[account.customer.id].unknown += 1
        elif r.status is Status.EXPOSED:
            grouped[(r.account, r.host, r.path)].append(r)
    for (acct, _host, path), found in sorted(grouped.items()):
        core = next((r for r in found if r.component == "core"), found[0])
        notices[accounts[acct].customer.id].installations.append(
            {
                "account": acct,
                "path": path or "/",
                "cms": core.cms,
                "cms_name": CMS_NAMES.get(core.cms, core.cms),
                "version": next((r.version for r in found if r.component == "core"), None) or "",
                "advisories": [
                    {
                        "title": r.title,
                        "cve": list(r.cve) or [r.advisory],
                        "component": r.component,
                        "version": r.version or "",
                        "fixed_in": r.fixed_in or "",
                        "severity": r.severity,
                    }
                    for r in sorted(found, key=lambda r: (r.component != "core", r.component))
                ],
            }
        )
    return sorted(notices.values(), key=lambda n: n.customer.id)


def exposure_message_id(scan_id: int, customer_id: str, domain: str) -> str:
    digest = hashlib.sha256(f"exposure\0{scan_id}\0{customer_id}".encode()).hexdigest()[:12]
    return f"<patchd-exposure-scan{scan_id}-{customer_id}-{digest}@{domain}>"


def render_exposure(notice: ExposureNotice, settings: MailSettings, support: str) -> EmailMessage:
    """The email of ``notice`` in its customer's language."""
    text_env, html_env = template_environments(settings)
    lang = notice.customer.language
    ctx = {
        "lang": lang,
        "kind": notice.kind,
        "scan": notice.scan_id,
        "customer": {"id": notice.customer.id, "name": notice.customer.name},
        "installations": notice.installations,
        "support": support,
    }
    return build_message(
        settings,
        notice.customer.name,
        notice.customer.email,
        lang,
        text_env.get_template(f"{lang}/exposure_subject.txt.j2").render(ctx),
        text_env.get_template(f"{lang}/exposure_body.txt.j2").render(ctx),
        html_env.get_template(f"{lang}/exposure_body.html.j2").render(ctx),
        {
            "Message-ID": exposure_message_id(notice.scan_id, notice.customer.id, settings.domain),
            "X-Patchd-Scan": str(notice.scan_id),
        },
    )


def _row(n: ExposureNotice, status: str, detail: str | None = None) -> NotifyRow:
    c = n.customer
    return NotifyRow(c.id, c.email, c.language, n.kind, len(n.installations), status, detail)


def notify_exposure(
    ledger: Ledger,
    scan_id: int,
    rows: Iterable[ExposureRow],
    inventory: Inventory,
    settings: MailSettings,
    *,
    preview: Path | None = None,
    smtp: SmtpSettings | None = None,
    all_clear: bool = False,
    retry_pending: bool = False,
    limiter: RateLimiter | None = None,
) -> list[NotifyRow]:
    """Preview or send the exposure emails of ``scan_id`` (never twice per customer)."""
    if (preview is None) == (smtp is None):
        raise UsageError("choose exactly one of --preview DIR and --send")
    from patchd.notify.render import parse_address

    support = settings.support or parse_address(settings.sender).addr_spec
    out: list[NotifyRow] = []
    ready: list[tuple[ExposureNotice, EmailMessage]] = []
    for n in plan_exposure(ledger, scan_id, rows, inventory):
        if n.kind is None:
            if n.unknown:
                out.append(_row(n, "held", f"{n.unknown} findings with an unreadable version"))
            continue
        if n.kind == "all-clear" and not all_clear:
            continue
        state = ledger_mails.email_state(ledger, scan_id, n.customer.id)
        if state is not None and state.state is EmailState.SENT:
            out.append(_row(n, "already-sent", state.message_id))
            continue
        ready.append((n, render_exposure(n, settings, support)))
    if preview is not None:
        for n, msg in ready:
            path = write_preview(preview, scan_id, n.customer.id, msg, of="scan")
            out.append(_row(n, "previewed", str(path)))
        return sorted(out, key=lambda r: r.customer)
    assert smtp is not None
    limiter = limiter or RateLimiter(smtp.rate_per_minute)
    conn = _Connection(smtp)
    try:
        for n, msg in ready:
            out.append(_send(ledger, n, msg, conn, limiter, retry_pending))
    finally:
        conn.drop()
    return sorted(out, key=lambda r: r.customer)


def _send(
    ledger: Ledger,
    n: ExposureNotice,
    msg: EmailMessage,
    conn: _Connection,
    limiter: RateLimiter,
    retry_pending: bool,
) -> NotifyRow:
    import smtplib

    recipient = msg["To"].addresses[0].addr_spec
    try:
        record = ledger_mails.mark_pending(
            ledger,
            n.scan_id,
            n.customer.id,
            kind=n.kind or "",
            message_id=str(msg["Message-ID"]),
            recipient=recipient,
            subject=str(msg["Subject"]),
            retry_pending=retry_pending,
        )
    except LedgerError as exc:
        return _row(n, "pending", str(exc))
    limiter.wait()
    try:
        refused = conn.get().send_message(
            msg, from_addr=msg["From"].addresses[0].addr_spec, to_addrs=[recipient]
        )
        if refused:
            raise smtplib.SMTPRecipientsRefused(refused)
    except (smtplib.SMTPException, OSError) as exc:
        conn.drop()
        error = f"{type(exc).__name__}: {exc}"
        ledger_mails.mark_done(ledger, n.scan_id, n.customer.id, error=error)
        return _row(n, "failed", error)
    ledger_mails.mark_done(ledger, n.scan_id, n.customer.id)
    return _row(n, "sent", record.message_id)
