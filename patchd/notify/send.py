"""Sending over SMTP, recorded in the ledger so that no email goes out twice.

For each email: skip it when the ledger says ``sent``; leave it when ``pending`` from an
earlier attempt (it may have left; ``retry_pending`` after checking the mail log); else
``mark_pending``, wait for the rate limit, hand it to SMTP with the customer's address as
the only envelope recipient, then ``mark_sent`` or ``mark_failed`` (retried next time).
"""

from __future__ import annotations

import smtplib
import ssl
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from email.message import EmailMessage

from patchd.errors import LedgerError
from patchd.ledger import emails as ledger_emails
from patchd.ledger.db import Ledger
from patchd.ledger.models import EmailState
from patchd.notify.group import Notice


@dataclass(frozen=True)
class SmtpSettings:
    """Where and how to deliver: host, port, STARTTLS, login, timeout, rate limit."""

    host: str = "localhost"
    port: int = 25
    starttls: bool = False
    user: str | None = None
    password: str | None = None
    timeout: float = 30.0
    rate_per_minute: float = 60.0


class RateLimiter:
    """At most ``per_minute`` calls of :meth:`wait` return per minute (evenly spaced)."""

    def __init__(
        self,
        per_minute: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if per_minute <= 0:
            raise ValueError("the rate must be positive")
        self.interval = 60.0 / per_minute
        self._clock = clock
        self._sleep = sleep
        self._next: float | None = None

    def wait(self) -> None:
        """Sleep until the next send is allowed."""
        now = self._clock()
        if self._next is not None and now < self._next:
            self._sleep(self._next - now)
            now = self._next
        self._next = now + self.interval


@dataclass(frozen=True)
class SendOutcome:
    """What happened to one email: ``sent``, ``failed``, ``already-sent`` or ``pending``."""

    customer_id: str
    recipient: str
    message_id: str
    status: str
    error: str | None = None


class _Connection:
    """One SMTP session, opened on first use and reopened after a failure."""

    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings
        self._smtp: smtplib.SMTP | None = None

    def get(self) -> smtplib.SMTP:
        if self._smtp is None:
            s = self.settings
            smtp = smtplib.SMTP(s.host, s.port, timeout=s.timeout)
            try:
                smtp.ehlo()
                if s.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                    smtp.ehlo()
                if s.user:
                    smtp.login(s.user, s.password or "")
            except BaseException:
                smtp.close()
                raise
            self._smtp = smtp
        return self._smtp

    def drop(self) -> None:
        if self._smtp is not None:
            try:
                self._smtp.quit()
            except (smtplib.SMTPException, OSError):
                self._smtp.close()
            self._smtp = None


def send_messages(
    ledger: Ledger,
    messages: Iterable[tuple[Notice, EmailMessage]],
    settings: SmtpSettings,
    *,
    retry_pending: bool = False,
    limiter: RateLimiter | None = None,
) -> list[SendOutcome]:
    """Send each notice's message (filed under the notice's run, keyed by what it tells);
    one :class:`SendOutcome` each."""
    limiter = limiter or RateLimiter(settings.rate_per_minute)
    conn = _Connection(settings)
    out: list[SendOutcome] = []
    try:
        for notice, msg in messages:
            out.append(_send_one(ledger, notice, msg, conn, limiter, retry_pending))
    finally:
        conn.drop()
    return out


def _send_one(
    ledger: Ledger,
    notice: Notice,
    msg: EmailMessage,
    conn: _Connection,
    limiter: RateLimiter,
    retry_pending: bool,
) -> SendOutcome:
    run_id, customer_id, told = notice.run_id, notice.customer_id, notice.told
    key = ledger_emails.told_key(told)
    recipient = msg["To"].addresses[0].addr_spec
    current = ledger_emails.email_state(ledger, run_id, customer_id, key)
    if current is not None and current.state is EmailState.SENT:
        return SendOutcome(customer_id, current.recipient, current.message_id, "already-sent")
    if current is not None and current.state is EmailState.PENDING and not retry_pending:
        return SendOutcome(
            customer_id,
            current.recipient,
            current.message_id,
            "pending",
            "pending since an earlier attempt: it may have been sent; check the mail log, "
            "then pass --retry-pending",
        )
    try:
        record = ledger_emails.mark_pending(
            ledger,
            run_id,
            customer_id,
            message_id=str(msg["Message-ID"]),
            recipient=recipient,
            subject=str(msg["Subject"]),
            told=told,
            retry_pending=retry_pending,
        )
    except LedgerError as exc:  # NOTE: another notify process got there first
        return SendOutcome(customer_id, recipient, str(msg["Message-ID"]), "pending", str(exc))
    if record.message_id != msg["Message-ID"]:
        # NOTE: a retry keeps the first attempt's Message-ID so receivers can drop duplicates.
        msg.replace_header("Message-ID", record.message_id)
    limiter.wait()
    try:
        smtp = conn.get()
        sender = msg["From"].addresses[0].addr_spec
        refused = smtp.send_message(msg, from_addr=sender, to_addrs=[recipient])
        if refused:
            raise smtplib.SMTPRecipientsRefused(refused)
    except (smtplib.SMTPException, OSError) as exc:
        conn.drop()
        error = f"{type(exc).__name__}: {exc}"
        ledger_emails.mark_failed(ledger, run_id, customer_id, error, key)
        return SendOutcome(customer_id, recipient, record.message_id, "failed", error)
    ledger_emails.mark_sent(ledger, run_id, customer_id, key)
    return SendOutcome(customer_id, recipient, record.message_id, "sent")
