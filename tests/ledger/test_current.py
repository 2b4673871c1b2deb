"""The current state over several runs of a bundle, and the run listing's words."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from patchd.ledger import Ledger
from patchd.ledger import runs as ledger_runs
from patchd.ledger.current import bundle_results, fixed_installations, merge_results
from patchd.ledger.models import Outcome, Reason, Result, ResultRecord, RunStatus
from patchd.report.runs import runs_rows, status_word

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _r(run: int, minute: int, outcome: Outcome, reason: Reason | None = None) -> Result:
    return Result(
        run_id=run,
        updated_at=T0 + timedelta(minutes=minute),
        account="p1",
        host="web01",
        path="html",
        outcome=outcome,
        reason=reason,
    )


def test_the_later_informative_result_wins() -> None:
    patched, already = _r(1, 1, Outcome.PATCHED), _r(2, 2, Outcome.ALREADY_PATCHED)
    assert merge_results([already, patched]) == [patched]  # canary's patched beats the rest's
    rolled = _r(1, 3, Outcome.ROLLED_BACK)
    assert merge_results([patched, already, rolled]) == [rolled]  # the rollback came later
    again = _r(3, 4, Outcome.PATCHED)
    assert merge_results([patched, rolled, again]) == [again]
    for noise in (_r(4, 5, Outcome.UNREACHABLE), _r(4, 5, Outcome.ERROR)):
        assert merge_results([again, noise]) == [again]
    edited = _r(5, 6, Outcome.DRY_RUN_FAILED, Reason.MODIFIED)
    assert merge_results([again, edited]) == [edited]


def test_bundle_results_skip_dry_runs_and_fixed_is_as_of_a_time(ledger: Ledger) -> None:
    dry = ledger_runs.create_run(ledger, bundle_id="b", bundle_digest="d", dry_run=True)
    real = ledger_runs.create_run(ledger, bundle_id="b", bundle_digest="d", dry_run=False)
    rec = {"account": "p1", "host": "web01", "path": "html"}
    ledger_runs.record_result(ledger, dry, ResultRecord(**rec, outcome=Outcome.SKIPPED))
    before = datetime.now(UTC) - timedelta(seconds=1)
    ledger_runs.record_result(ledger, real, ResultRecord(**rec, outcome=Outcome.PATCHED))
    (cur,) = bundle_results(ledger, "b")
    assert (cur.run_id, cur.outcome) == (real, Outcome.PATCHED)
    assert fixed_installations(ledger, "b") == {("p1", "html")}
    assert fixed_installations(ledger, "b", as_of=before) == set()
    ledger_runs.mark_rolled_back(ledger, real, "p1", "html", "rolled back 2 file(s)")
    assert fixed_installations(ledger, "b") == set()
    (cur,) = bundle_results(ledger, "b")
    assert cur.outcome is Outcome.ROLLED_BACK and cur.rolled_back_at is not None


def test_runs_listing_says_dry_run_canary_and_resumed(ledger: Ledger) -> None:
    dry = ledger_runs.create_run(ledger, bundle_id="b", bundle_digest="d", dry_run=True)
    ledger_runs.set_run_status(ledger, dry, RunStatus.FINISHED)
    canary = ledger_runs.create_run(ledger, bundle_id="b", bundle_digest="d", dry_run=False)
    ledger_runs.set_run_status(ledger, canary, RunStatus.CANARY_STOPPED)
    crashed = ledger_runs.create_run(ledger, bundle_id="b", bundle_digest="d", dry_run=False)
    ledger_runs.set_run_status(ledger, crashed, RunStatus.INTERRUPTED)
    ledger_runs.set_run_status(ledger, crashed, RunStatus.RUNNING)  # resumed
    ledger_runs.set_run_status(ledger, crashed, RunStatus.FINISHED)
    ledger_runs.record_result(
        ledger,
        crashed,
        ResultRecord(
            account="p1",
            host="web01",
            path="html",
            outcome=Outcome.PATCHED,
            journal="/var/lib/patchd/backups/3/k1/journal.json",
        ),
    )
    rows = runs_rows(ledger)
    assert [r["run"] for r in rows] == [crashed, canary, dry]
    assert [r["status"] for r in rows] == ["finished, resumed", "canary-stopped", "dry run"]
    assert rows[0]["resumes"] == 1 and rows[0]["counts"] == {"patched": 1}
    assert rows[0]["backups"] == ["web01:/var/lib/patchd/backups"]
    assert rows[0]["ledger"] == str(ledger.path) and rows[0]["finished"] is not None
    assert status_word(ledger_runs.get_run(ledger, dry)) == "dry run"
    assert runs_rows(ledger, bundle_id="other") == []
