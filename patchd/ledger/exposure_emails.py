"""Exposure emails in the ledger: at most one per scan and customer, ever.

An email is recorded ``pending`` before it is handed to SMTP and ``sent`` after; a
``failed`` one may be tried again, a ``pending`` one only on request (it may have gone
out before a crash).
"""

from __future__ import annotations

from dataclasses import dataclass

from patchd.errors import LedgerError
from patchd.ledger.db import Ledger, utc_now
from patchd.ledger.models import EmailState


@dataclass(frozen=True)
class ExposureEmail:
    scan_id: int
    customer_id: str
    kind: str
    message_id: str
    recipient: str
    state: EmailState
    attempts: int
    sent_at: str | None


def email_state(ledger: Ledger, scan_id: int, customer_id: str) -> ExposureEmail | None:
    """The recorded email of ``scan_id`` to ``customer_id``, or None."""
    row = ledger.query_one(
        "SELECT scan_id, customer_id, kind, message_id, recipient, state, attempts, sent_at "
        "FROM exposure_emails WHERE scan_id = ? AND customer_id = ?",
        (scan_id, customer_id),
    )
    if row is None:
        return None
    row["state"] = EmailState(row["state"])
    return ExposureEmail(**row)


def mark_pending(
    ledger: Ledger,
    scan_id: int,
    customer_id: str,
    *,
    kind: str,
    message_id: str,
    recipient: str,
    subject: str,
    retry_pending: bool = False,
) -> ExposureEmail:
    """Record that the email is about to be sent; LedgerError when it was sent already
    (or is pending and ``retry_pending`` is false). Use the returned ``message_id``."""
    with ledger.transaction():
        current = email_state(ledger, scan_id, customer_id)
        if current is None:
            ledger.insert(
                "INSERT INTO exposure_emails (scan_id, customer_id, kind, message_id, "
                "recipient, subject, state, attempts, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, 1, ?)",
                (
                    scan_id,
                    customer_id,
                    kind,
                    message_id,
                    recipient,
                    subject,
                    EmailState.PENDING.value,
                    utc_now(),
                ),
            )
        elif current.state is EmailState.SENT or (
            current.state is EmailState.PENDING and not retry_pending
        ):
            raise LedgerError(
                f"exposure email of scan {scan_id} to customer {customer_id} is "
                f"{current.state.value} ({current.message_id})",
                where=ledger.where,
            )
        else:
            ledger.execute(
                "UPDATE exposure_emails SET state = ?, attempts = attempts + 1, recipient = ?, "
                "subject = ? WHERE scan_id = ? AND customer_id = ?",
                (EmailState.PENDING.value, recipient, subject, scan_id, customer_id),
            )
        record = email_state(ledger, scan_id, customer_id)
    assert record is not None
    return record


def mark_done(ledger: Ledger, scan_id: int, customer_id: str, *, error: str | None = None) -> None:
    """Record that SMTP accepted the pending email (``sent``) or refused it (``failed``)."""
    if error is None:
        sql, params = "state = ?, sent_at = ?, last_error = NULL", (EmailState.SENT, utc_now())
    else:
        sql, params = "state = ?, last_error = ?", (EmailState.FAILED, error)
    changed = ledger.execute(
        f"UPDATE exposure_emails SET {sql} WHERE scan_id = ? AND customer_id = ? AND state = ?",
        (params[0].value, params[1], scan_id, customer_id, EmailState.PENDING.value),
    )
    if changed != 1:
        raise LedgerError(
            f"exposure email of scan {scan_id} to customer {customer_id} is not pending",
            where=ledger.where,
        )
