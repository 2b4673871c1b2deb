"""The fleet failure gate: stop applying when too many applies went wrong.

Of the installations a run *applied* (``patched``, ``reverted``, ``apply-failed``, and an
``error`` of the health check whose undo failed), the failed ones (all but ``patched``)
may be at most ``max_rate`` (default 5%). The rate is judged only once ``minimum``
installations were applied (the canary size, at least :data:`GATE_MINIMUM`), so that one
early failure is not 100%. Until then a host gets only as many installations per batch as
are missing to that minimum, so the first judgement comes before many more were written.

When the gate trips, no further batch is sent; batches already on their way finish (at
most one per agent session; with the health check, whose results come a few seconds after
a batch, at most two). The installations left get ``skipped`` with reason ``gate``,
the run ends ``gate-stopped``, and only ``--continue-past-gate`` resumes it; the gate then
counts afresh from the continuation on.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass, field

from patchd.ledger.models import ResultRecord
from patchd.outcomes import Outcome, Reason

#: Applied installations the gate waits for before it judges the rate.
GATE_MINIMUM = 4
#: Default of ``--max-failure-rate``.
DEFAULT_MAX_FAILURE_RATE = 0.05


_APPLIED = frozenset({Outcome.PATCHED, Outcome.REVERTED, Outcome.APPLY_FAILED})


def gate_minimum(canary: int | None) -> int:
    """Applied installations before the gate judges: the canary size, at least 4."""
    return max(canary or 0, GATE_MINIMUM)


def applied_and_failed(outcome: Outcome, reason: Reason | None) -> tuple[bool, bool]:
    """Whether an installation with this outcome was applied, and whether that failed."""
    if outcome is Outcome.PATCHED:
        return True, False
    if outcome in (Outcome.REVERTED, Outcome.APPLY_FAILED):
        return True, True
    undo_failed = outcome is Outcome.ERROR and reason is Reason.HEALTH_CHECK
    return undo_failed, undo_failed


@dataclass
class FailureGate:
    """Counts applies and failures of a run (thread-safe) and says when to stop."""

    max_rate: float = DEFAULT_MAX_FAILURE_RATE
    minimum: int = GATE_MINIMUM
    applied: int = 0
    failed: int = 0
    tripped: bool = False
    active: bool = True  # False: a dry run, or no gate (nothing is counted)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count(self, records: Iterable[ResultRecord]) -> None:
        """Count the results of a batch; trip the gate when the rate is exceeded."""
        if not self.active:
            return
        with self._lock:
            for r in records:
                applied, failed = applied_and_failed(r.outcome, r.reason)
                self.applied += applied
                self.failed += failed
            if self.applied >= self.minimum and self.failed > self.max_rate * self.applied:
                self.tripped = True

    def count_summary(self, summary: dict[str, int]) -> None:
        """Count a resumed run's results so far from its outcome counts (without judging:
        the next batch's results are judged with them)."""
        with self._lock:
            self.applied += sum(summary.get(o.value, 0) for o in _APPLIED)
            self.failed += sum(summary.get(o.value, 0) for o in _APPLIED - {Outcome.PATCHED})

    def judging(self) -> bool:
        """Whether the gate judges the rate already (or is off): from then on a batch's
        results may be recorded while the next batch runs."""
        with self._lock:
            return not self.active or self.applied >= self.minimum

    def batch_size(self, batch: int) -> int:
        """How many installations the next batch may hold (fewer before the first
        judgement, see the module docstring)."""
        with self._lock:
            if not self.active or self.applied >= self.minimum:
                return batch
            return max(1, min(batch, self.minimum - self.applied))

    def describe(self) -> str:
        """``3 of 4 applied installations failed (75% > 5%)``."""
        rate = self.failed / self.applied if self.applied else 0.0
        return (
            f"{self.failed} of {self.applied} applied installations failed "
            f"(apply-failed or reverted: {rate * 100:.3g}% > {self.max_rate * 100:g}%)"
        )

    def skipped_detail(self) -> str:
        """The ``detail`` of an installation the gate kept from being applied."""
        return (
            f"not applied: the fleet failure gate stopped the run ({self.describe()}); "
            "continue with --continue-past-gate"
        )
