"""Emails: pending before sending, never sent twice, crashes visible."""

from __future__ import annotations

from typing import Any

import pytest

from patchd.errors import LedgerError
from patchd.ledger import Ledger
from patchd.ledger.emails import (
    email_state,
    list_emails,
    mark_failed,
    mark_pending,
    mark_sent,
    told_before,
    told_key,
)
from patchd.ledger.models import EmailState
from patchd.ledger.runs import create_run


@pytest.fixture
def run_id(ledger: Ledger) -> int:
    return create_run(ledger, bundle_id="wp-2024-001", bundle_digest="d", dry_run=False)


def _pending(
    ledger: Ledger, run_id: int, customer: str = "c501", mid: str = "<1@patchd>", **kw: Any
):
    return mark_pending(
        ledger,
        run_id,
        customer,
        message_id=mid,
        recipient="it@example.org",
        subject="Sicherheitsupdate",
        **kw,
    )


def test_pending_then_sent(ledger: Ledger, run_id: int) -> None:
    assert email_state(ledger, run_id, "c501") is None
    rec = _pending(ledger, run_id)
    assert rec.state is EmailState.PENDING and rec.attempts == 1
    assert rec.message_id == "<1@patchd>" and rec.sent_at is None
    mark_sent(ledger, run_id, "c501")
    rec = email_state(ledger, run_id, "c501")
    assert rec.state is EmailState.SENT and rec.sent_at is not None
    # a second notify run never sends it again
    with pytest.raises(LedgerError, match="already sent"):
        _pending(ledger, run_id, mid="<2@patchd>")
    with pytest.raises(LedgerError, match="already sent"):
        _pending(ledger, run_id, retry_pending=True)
    with pytest.raises(LedgerError, match="it is sent, not pending"):
        mark_sent(ledger, run_id, "c501")


def test_crash_between_pending_and_sent_is_visible(ledger: Ledger, run_id: int) -> None:
    _pending(ledger, run_id)
    # (the process died here: no mark_sent)
    assert email_state(ledger, run_id, "c501").state is EmailState.PENDING
    with pytest.raises(LedgerError, match="pending since an earlier attempt"):
        _pending(ledger, run_id, mid="<2@patchd>")
    rec = _pending(ledger, run_id, mid="<2@patchd>", retry_pending=True)
    assert rec.attempts == 2
    assert rec.message_id == "<1@patchd>"  # the first Message-ID is kept


def test_failed_then_retried(ledger: Ledger, run_id: int) -> None:
    _pending(ledger, run_id)
    mark_failed(ledger, run_id, "c501", "421 try again later")
    rec = email_state(ledger, run_id, "c501")
    assert rec.state is EmailState.FAILED and rec.last_error == "421 try again later"
    rec = _pending(ledger, run_id, mid="<ignored@patchd>")
    assert rec.state is EmailState.PENDING and rec.attempts == 2
    mark_sent(ledger, run_id, "c501")
    rec = email_state(ledger, run_id, "c501")
    assert rec.state is EmailState.SENT and rec.last_error is None


def test_mark_without_pending_is_refused(ledger: Ledger, run_id: int) -> None:
    with pytest.raises(LedgerError, match="not recorded"):
        mark_sent(ledger, run_id, "c999")
    with pytest.raises(LedgerError, match="not recorded"):
        mark_failed(ledger, run_id, "c999", "x")
    _pending(ledger, run_id)
    mark_failed(ledger, run_id, "c501", "x")
    with pytest.raises(LedgerError, match="it is failed, not pending"):
        mark_failed(ledger, run_id, "c501", "y")


def test_message_ids_unique_and_emails_per_run(ledger: Ledger, run_id: int) -> None:
    _pending(ledger, run_id, "c1", "<a@patchd>")
    _pending(ledger, run_id, "c2", "<b@patchd>")
    with pytest.raises(LedgerError, match="UNIQUE"):
        _pending(ledger, run_id, "c3", "<a@patchd>")
    other = create_run(ledger, bundle_id="wp-2024-002", bundle_digest="d", dry_run=False)
    _pending(ledger, other, "c1", "<c@patchd>")  # same customer, another run: its own email
    assert [e.customer_id for e in list_emails(ledger, run_id)] == ["c1", "c2"]
    assert [e.customer_id for e in list_emails(ledger, other)] == ["c1"]
    assert email_state(ledger, run_id, "c3") is None


def test_email_needs_existing_run(ledger: Ledger) -> None:
    with pytest.raises(LedgerError, match="no run 404"):
        _pending(ledger, 404)


def test_one_email_per_content_and_what_was_told(ledger: Ledger, run_id: int) -> None:
    told = {"p1:html": "patched"}
    _pending(ledger, run_id, told=told)
    mark_sent(ledger, run_id, "c501", told_key(told))
    assert told_before(ledger, "wp-2024-001", "c501") == told
    assert told_before(ledger, "wp-2024-001", "c999") is None
    # the same content again is refused; new content (a rollback) is its own email
    with pytest.raises(LedgerError, match="already sent"):
        _pending(ledger, run_id, mid="<2@patchd>", told=told)
    after = {"p1:html": "rolled-back"}
    rec = _pending(ledger, run_id, mid="<3@patchd>", told=after)
    assert rec.told == after and rec.told_key == told_key(after) != told_key(told)
    assert rec.bundle_id == "wp-2024-001"
    mark_sent(ledger, run_id, "c501", told_key(after))
    assert told_before(ledger, "wp-2024-001", "c501") == after
    assert [e.told for e in list_emails(ledger, run_id)] == [told, after]
