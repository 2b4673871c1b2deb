"""The fleet failure gate's arithmetic (patchd.rollout.gate) and its ledger side."""

from __future__ import annotations

import pytest

from patchd.ledger.models import ResultRecord
from patchd.outcomes import Outcome, Reason
from patchd.rollout.gate import FailureGate, gate_minimum


def _r(outcome: Outcome, reason: Reason | None = None) -> ResultRecord:
    return ResultRecord(account="a", host="h", path="", outcome=outcome, reason=reason)


PATCHED = _r(Outcome.PATCHED)
REVERTED = _r(Outcome.REVERTED, Reason.HEALTH_CHECK)
APPLY_FAILED = _r(Outcome.APPLY_FAILED)


def test_judged_only_after_the_minimum() -> None:
    gate = FailureGate(max_rate=0.05, minimum=4)
    gate.count([REVERTED, APPLY_FAILED, REVERTED])
    assert not gate.tripped and gate.batch_size(25) == 1
    gate.count([PATCHED])
    assert gate.tripped
    assert gate.describe() == (
        "3 of 4 applied installations failed (apply-failed or reverted: 75% > 5%)"
    )


def test_not_applied_outcomes_do_not_count() -> None:
    gate = FailureGate(max_rate=0.05, minimum=4)
    others = [
        _r(Outcome.DRY_RUN_FAILED, Reason.MODIFIED),
        _r(Outcome.ALREADY_PATCHED),
        _r(Outcome.UNREACHABLE),
        _r(Outcome.ERROR),
        _r(Outcome.SKIPPED, Reason.POLICY),
    ]
    gate.count(others * 10)
    assert (gate.applied, gate.failed, gate.tripped) == (0, 0, False)
    gate.count([_r(Outcome.ERROR, Reason.HEALTH_CHECK)])  # the undo failed: counts
    assert (gate.applied, gate.failed) == (1, 1)


@pytest.mark.parametrize(("patched", "failed", "tripped"), [(19, 1, False), (18, 1, True)])
def test_the_rate_must_be_exceeded(patched: int, failed: int, tripped: bool) -> None:
    gate = FailureGate(max_rate=0.05, minimum=4)
    gate.count([PATCHED] * patched + [REVERTED] * failed)
    assert gate.tripped is tripped


def test_batches_grow_to_the_minimum_then_full() -> None:
    gate = FailureGate(max_rate=0.05, minimum=4)
    assert gate.batch_size(25) == 4
    gate.count([PATCHED, PATCHED, PATCHED])
    assert gate.batch_size(25) == 1
    gate.count([PATCHED])
    assert gate.batch_size(25) == 25
    assert FailureGate(active=False).batch_size(25) == 25


def test_an_inactive_gate_counts_nothing() -> None:
    gate = FailureGate(active=False)
    gate.count([REVERTED] * 10)
    assert (gate.applied, gate.tripped) == (0, False)


def test_minimum_is_the_canary_size_at_least_four() -> None:
    assert (gate_minimum(None), gate_minimum(2), gate_minimum(20)) == (4, 4, 20)


def test_a_resumed_run_counts_its_summary_without_judging() -> None:
    gate = FailureGate(max_rate=0.05, minimum=4)
    gate.count_summary({"patched": 10, "reverted": 2, "apply-failed": 1, "skipped": 5})
    assert (gate.applied, gate.failed, gate.tripped) == (13, 3, False)
    gate.count([PATCHED])
    assert gate.tripped
