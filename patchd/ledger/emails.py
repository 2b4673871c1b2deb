"""Emails: one per customer per run and content, recorded *before* sending so none goes out
twice.

An email is identified by its run, its customer and ``told_key`` (the digest of what it
tells: installation -> outcome). A rollback changes what a run did, so the same run and
customer may get a second email with new content; never the same content twice.
:func:`told_before` merges what a customer was told about a bundle over all its runs.

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

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from patchd.errors import LedgerError
from patchd.ledger.db import Ledger, utc_now
from patchd.ledger.models import EmailRecord, EmailState


def _record(row: dict[str, Any]) -> EmailRecord:
    row.pop("id", None)
    row["told"] = json.loads(row.get("told") or "{}")
    return EmailRecord.model_validate(row)


def told_key(told: Mapping[str, str]) -> str:
    """The digest identifying an email's content (``account:path`` -> outcome)."""
    text = json.dumps(dict(told), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def email_state(ledger: Ledger, run_id: int, customer_id: str, key: str = "") -> EmailRecord | None:
    """The email of ``run_id`` to ``customer_id`` with content ``key`` (the newest of the
    run's emails to the customer when ``key`` is empty), or None when none was attempted."""
    if key:
        row = ledger.query_one(
            "SELECT * FROM emails WHERE run_id = ? AND customer_id = ? AND told_key = ?",
            (run_id, customer_id, key),
        )
    else:
        row = ledger.query_one(
            "SELECT * FROM emails WHERE run_id = ? AND customer_id = ? ORDER BY id DESC LIMIT 1",
            (run_id, customer_id),
        )
    return _record(row) if row else None


def list_emails(ledger: Ledger, run_id: int) -> list[EmailRecord]:
    """Every email of a run, by customer (oldest first)."""
    rows = ledger.query("SELECT * FROM emails WHERE run_id = ? ORDER BY customer_id, id", (run_id,))
    return [_record(r) for r in rows]


def told_before(ledger: Ledger, bundle_id: str, customer_id: str) -> dict[str, str] | None:
    """What ``customer_id`` was told about ``bundle_id`` over all its runs: per
    ``account:path`` the outcome of the newest sent email naming it; None when no email
    about the bundle was sent to the customer."""
    rows = ledger.query(
        "SELECT told FROM emails WHERE bundle_id = ? AND customer_id = ? AND state = ? "
        "ORDER BY COALESCE(sent_at, created_at), id",
        (bundle_id, customer_id, EmailState.SENT.value),
    )
    if not rows:
        return None
    told: dict[str, str] = {}
    for row in rows:
        told.update(json.loads(row["told"] or "{}"))
    return told


def mark_pending(
    ledger: Ledger,
    run_id: int,
    customer_id: str,
    *,
    message_id: str,
    recipient: str,
    subject: str,
    told: Mapping[str, str] | None = None,
    retry_pending: bool = False,
) -> EmailRecord:
    """Record that the email is about to be sent; return the record to send with.

    ``told`` is what the email says (``account:path`` -> outcome); its :func:`told_key`
    tells this email apart from the run's other emails to the customer.

    Use the returned ``message_id`` (on a retry it is the first attempt's). Raises
    :class:`LedgerError` when the email was already sent, or is ``pending`` from an
    earlier attempt and ``retry_pending`` is false.
    """
    told = dict(told or {})
    key = told_key(told)
    with ledger.transaction():
        current = email_state(ledger, run_id, customer_id, key)
        if current is None:
            run = ledger.query_one("SELECT bundle_id FROM runs WHERE id = ?", (run_id,))
            if run is None:
                raise LedgerError(f"no run {run_id}", where=ledger.where)
            ledger.insert(
                "INSERT INTO emails (run_id, customer_id, bundle_id, told, told_key, "
                "message_id, recipient, subject, state, attempts, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?)",
                (
                    run_id,
                    customer_id,
                    run["bundle_id"],
                    json.dumps(told, sort_keys=True),
                    key,
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
                "subject = ? WHERE run_id = ? AND customer_id = ? AND told_key = ?",
                (EmailState.PENDING.value, recipient, subject, run_id, customer_id, key),
            )
        record = email_state(ledger, run_id, customer_id, key)
    assert record is not None
    return record


def _finish(
    ledger: Ledger,
    run_id: int,
    customer_id: str,
    key: str,
    sql: str,
    params: tuple[Any, ...],
    what: str,
) -> None:
    with ledger.transaction():
        current = email_state(ledger, run_id, customer_id, key)
        if current is None or current.state is not EmailState.PENDING:
            state = current.state.value if current else "not recorded"
            raise LedgerError(
                f"cannot mark the email of run {run_id} to customer {customer_id} {what}: "
                f"it is {state}, not pending",
                where=ledger.where,
            )
        ledger.execute(
            sql + " WHERE run_id = ? AND customer_id = ? AND told_key = ?",
            (*params, run_id, customer_id, current.told_key),
        )


def mark_sent(ledger: Ledger, run_id: int, customer_id: str, key: str = "") -> None:
    """Record that the SMTP server accepted the pending email (with content ``key``; the
    run's newest email to the customer when empty)."""
    _finish(
        ledger,
        run_id,
        customer_id,
        key,
        "UPDATE emails SET state = ?, sent_at = ?, last_error = NULL",
        (EmailState.SENT.value, utc_now()),
        "sent",
    )


def mark_failed(ledger: Ledger, run_id: int, customer_id: str, error: str, key: str = "") -> None:
    """Record that sending the pending email failed (it may be retried)."""
    _finish(
        ledger,
        run_id,
        customer_id,
        key,
        "UPDATE emails SET state = ?, last_error = ?",
        (EmailState.FAILED.value, error),
        "failed",
    )
