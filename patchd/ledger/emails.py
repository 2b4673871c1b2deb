"""Emails: one per customer per run, recorded *before* sending so none goes out twice.

The sender calls :func:`mark_pending` before handing the message to SMTP, then
:func:`mark_sent` or :func:`mark_failed`. States::

    (none) --mark_pending--> pending --mark_sent--> sent      (final: never again)
                               |  ^
                   mark_failed |  | mark_pending (retry)
                               v  |
                              failed

A crash between ``pending`` and ``sent`` leaves ``pending``: the message may or may not
have left. :func:`mark_pending` refuses such an email unless ``retry_pending=True`` (the
operator checked the mail log), so a second ``notify`` never silently sends it again.
A retry keeps the first Message-ID, so the receiving side can drop a duplicate.
"""

from __future__ import annotations

from typing import Any

from patchd.errors import LedgerError
from patchd.ledger.db import Ledger, utc_now
from patchd.ledger.models import EmailRecord, EmailState


def _record(row: dict[str, Any]) -> EmailRecord:
    row.pop("id", None)
    return EmailRecord.model_validate(row)


def email_state(ledger: Ledger, run_id: int, customer_id: str) -> EmailRecord | None:
    """The email of ``run_id`` to ``customer_id``, or None when none was attempted."""
    row = ledger.query_one(
        "SELECT * FROM emails WHERE run_id = ? AND customer_id = ?", (run_id, customer_id)
    )
    return _record(row) if row else None


def list_emails(ledger: Ledger, run_id: int) -> list[EmailRecord]:
    """Every email of a run, by customer."""
    rows = ledger.query("SELECT * FROM emails WHERE run_id = ? ORDER BY customer_id", (run_id,))
    return [_record(r) for r in rows]


def mark_pending(
    ledger: Ledger,
    run_id: int,
    customer_id: str,
    *,
    message_id: str,
    recipient: str,
    subject: str,
    retry_pending: bool = False,
) -> EmailRecord:
    """Record that the email is about to be sent; return the record to send with.

    Use the returned ``message_id`` (on a retry it is the first attempt's). Raises
    :class:`LedgerError` when the email was already sent, or is ``pending`` from an
    earlier attempt and ``retry_pending`` is false.
    """
    with ledger.transaction():
        current = email_state(ledger, run_id, customer_id)
        if current is None:
            ledger.insert(
                "INSERT INTO emails (run_id, customer_id, message_id, recipient, subject, "
                "state, attempts, created_at) VALUES (?, ?, ?, ?, ?, ?, 1, ?)",
                (
                    run_id,
                    customer_id,
                    message_id,
                    recipient,
                    subject,
                    EmailState.PENDING.value,
                    utc_now(),
                ),
            )
        elif current.state is EmailState.SENT:
            raise LedgerError(
                f"email of run {run_id} to customer {customer_id} was already sent "
                f"at {current.sent_at:%Y-%m-%d %H:%M:%S} UTC ({current.message_id})",
                where=ledger.where,
            )
        elif current.state is EmailState.PENDING and not retry_pending:
            raise LedgerError(
                f"email of run {run_id} to customer {customer_id} is pending since an "
                f"earlier attempt ({current.message_id}): it may have been sent; check the "
                "mail log, then retry pending emails explicitly",
                where=ledger.where,
            )
        else:
            ledger.execute(
                "UPDATE emails SET state = ?, attempts = attempts + 1, recipient = ?, "
                "subject = ? WHERE run_id = ? AND customer_id = ?",
                (EmailState.PENDING.value, recipient, subject, run_id, customer_id),
            )
        record = email_state(ledger, run_id, customer_id)
    assert record is not None
    return record


def _finish(
    ledger: Ledger, run_id: int, customer_id: str, sql: str, params: tuple[Any, ...], what: str
) -> None:
    with ledger.transaction():
        current = email_state(ledger, run_id, customer_id)
        if current is None or current.state is not EmailState.PENDING:
            state = current.state.value if current else "not recorded"
            raise LedgerError(
                f"cannot mark the email of run {run_id} to customer {customer_id} {what}: "
                f"it is {state}, not pending",
                where=ledger.where,
            )
        ledger.execute(
            sql + " WHERE run_id = ? AND customer_id = ?", (*params, run_id, customer_id)
        )


def mark_sent(ledger: Ledger, run_id: int, customer_id: str) -> None:
    """Record that the SMTP server accepted the pending email."""
    _finish(
        ledger,
        run_id,
        customer_id,
        "UPDATE emails SET state = ?, sent_at = ?, last_error = NULL",
        (EmailState.SENT.value, utc_now()),
        "sent",
    )


def mark_failed(ledger: Ledger, run_id: int, customer_id: str, error: str) -> None:
    """Record that sending the pending email failed (it may be retried)."""
    _finish(
        ledger,
        run_id,
        customer_id,
        "UPDATE emails SET state = ?, last_error = ?",
        (EmailState.FAILED.value, error),
        "failed",
    )
