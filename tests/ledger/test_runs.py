"""Runs, results, touched files, resume bookkeeping, summaries."""

from __future__ import annotations

import os
import socket

import pytest
from pydantic import ValidationError

from patchd.errors import LedgerError
from patchd.ledger import Ledger
from patchd.ledger.models import (
    FileState,
    Outcome,
    Reason,
    ResultRecord,
    RunStatus,
    TouchedFileRecord,
)
from patchd.ledger.runs import (
    create_run,
    done_installations,
    find_unfinished_run,
    get_run,
    list_runs,
    options_key,
    record_result,
    record_touched_file,
    results,
    set_run_status,
    summary,
    touched_files,
    update_touched_file_state,
)
from patchd.ledger.scans import start_scan

OPTIONS = {"accounts": "accounts.yaml", "hosts": ["web01"], "canary": 5}


def _run(ledger: Ledger, bundle: str = "wp-2024-001", **kw: object) -> int:
    args: dict[str, object] = {"bundle_digest": "sha256:" + "0" * 64, "dry_run": False}
    args.update(kw)
    return create_run(ledger, bundle_id=bundle, options=OPTIONS, **args)  # type: ignore[arg-type]


def _res(
    account: str,
    outcome: Outcome,
    reason: Reason | None = None,
    path: str = "",
    host: str = "web01",
    customer: str = "c1",
    **kw: object,
) -> ResultRecord:
    return ResultRecord(
        account=account,
        customer_id=customer,
        host=host,
        path=path,
        cms="wordpress",
        version="6.4.1",
        outcome=outcome,
        reason=reason,
        **kw,
    )


def test_create_and_get_run(ledger: Ledger) -> None:
    scan_id = start_scan(ledger, inventory_path="a.yaml", inventory_sha256="0", accounts=1)
    run_id = _run(ledger, scan_id=scan_id, dry_run=True)
    run = get_run(ledger, run_id)
    assert run.status is RunStatus.RUNNING
    assert run.dry_run is True
    assert run.scan_id == scan_id
    assert run.options == OPTIONS
    assert run.options_key == options_key(dict(reversed(OPTIONS.items())))
    assert run.pid == os.getpid()
    assert run.host_of_controller == socket.gethostname()
    assert run.finished_at is None
    with pytest.raises(LedgerError, match="no run 42"):
        get_run(ledger, 42)


def test_run_needs_existing_scan(ledger: Ledger) -> None:
    with pytest.raises(LedgerError, match="FOREIGN KEY"):
        _run(ledger, scan_id=5)


def test_status_and_list(ledger: Ledger) -> None:
    a = _run(ledger)
    b = _run(ledger, bundle="t3-2024-002")
    set_run_status(ledger, a, RunStatus.CANARY_STOPPED)
    run = get_run(ledger, a)
    assert run.status is RunStatus.CANARY_STOPPED and run.finished_at is not None
    set_run_status(ledger, a, RunStatus.RUNNING)  # resumed
    assert get_run(ledger, a).finished_at is None
    assert [r.id for r in list_runs(ledger)] == [a, b]
    assert [r.id for r in list_runs(ledger, bundle_id="t3-2024-002")] == [b]
    with pytest.raises(LedgerError, match="no run 9"):
        set_run_status(ledger, 9, RunStatus.FINISHED)
    with pytest.raises(ValueError):
        set_run_status(ledger, a, "exploded")  # type: ignore[arg-type]


def test_find_unfinished_run(ledger: Ledger) -> None:
    key = options_key(OPTIONS)
    assert find_unfinished_run(ledger, "wp-2024-001", key) is None
    old = _run(ledger)
    set_run_status(ledger, old, RunStatus.FINISHED)
    assert find_unfinished_run(ledger, "wp-2024-001", key) is None
    crashed = _run(ledger)
    assert find_unfinished_run(ledger, "wp-2024-001", key).id == crashed
    set_run_status(ledger, crashed, RunStatus.INTERRUPTED)
    assert find_unfinished_run(ledger, "wp-2024-001", key).id == crashed
    assert find_unfinished_run(ledger, "wp-2024-001", options_key({"canary": 1})) is None
    assert find_unfinished_run(ledger, "other", key) is None
    set_run_status(ledger, crashed, RunStatus.CANARY_STOPPED)
    assert find_unfinished_run(ledger, "wp-2024-001", key) is None


def test_results_upsert_filters_and_summary(ledger: Ledger) -> None:
    run_id = _run(ledger)
    record_result(ledger, run_id, _res("p1", Outcome.PATCHED, variant="6.4"))
    record_result(
        ledger,
        run_id,
        _res(
            "p2",
            Outcome.DRY_RUN_FAILED,
            Reason.MODIFIED,
            detail="wp-login.php hunk 2",
            customer="c2",
        ),
    )
    record_result(ledger, run_id, _res("p3", Outcome.UNREACHABLE, host="web02"))
    record_result(ledger, run_id, _res("p4", Outcome.ERROR, error_traceback="Traceback ..."))
    record_result(ledger, run_id, _res("p5", Outcome.PATCHED, path="blog"))
    # upsert: p1 first failed, then patched on retry -> one row, last outcome
    record_result(ledger, run_id, _res("p5", Outcome.ALREADY_PATCHED, path="blog"))

    everything = results(ledger, run_id)
    assert [(r.account, r.path) for r in everything] == [
        ("p1", ""),
        ("p2", ""),
        ("p4", ""),
        ("p5", "blog"),
        ("p3", ""),
    ]
    assert everything[0].variant == "6.4" and everything[0].run_id == run_id
    assert everything[2].error_traceback == "Traceback ..."
    assert [r.account for r in results(ledger, run_id, outcome=Outcome.PATCHED)] == ["p1"]
    assert [r.account for r in results(ledger, run_id, outcome="dry-run-failed")] == ["p2"]
    assert [r.account for r in results(ledger, run_id, reason=Reason.MODIFIED)] == ["p2"]
    assert [r.account for r in results(ledger, run_id, host="web02")] == ["p3"]
    assert [r.account for r in results(ledger, run_id, customer="c2")] == ["p2"]
    assert [r.path for r in results(ledger, run_id, account="p5")] == ["blog"]
    assert results(ledger, run_id, account="p1", outcome=Outcome.ERROR) == []
    with pytest.raises(ValueError):
        results(ledger, run_id, outcome="exploded")
    assert summary(ledger, run_id) == {
        "patched": 1,
        "already-patched": 1,
        "dry-run-failed": 1,
        "unreachable": 1,
        "error": 1,
    }
    assert list(summary(ledger, run_id)) == [
        "patched",
        "already-patched",
        "dry-run-failed",
        "unreachable",
        "error",
    ]
    with pytest.raises(LedgerError, match="no run 77"):
        results(ledger, 77)


def test_results_are_per_run(ledger: Ledger) -> None:
    a, b = _run(ledger), _run(ledger)
    record_result(ledger, a, _res("p1", Outcome.PATCHED))
    record_result(ledger, b, _res("p1", Outcome.ALREADY_PATCHED))
    assert summary(ledger, a) == {"patched": 1}
    assert summary(ledger, b) == {"already-patched": 1}


def test_reason_goes_with_dry_run_failed_only() -> None:
    with pytest.raises(ValidationError, match="needs a reason"):
        _res("p1", Outcome.DRY_RUN_FAILED)
    with pytest.raises(ValidationError, match="only goes with dry-run-failed"):
        _res("p1", Outcome.PATCHED, Reason.MODIFIED)
    with pytest.raises(ValidationError):
        _res("p1", "exploded")  # type: ignore[arg-type]


def test_done_installations_for_resume(ledger: Ledger) -> None:
    run_id = _run(ledger)
    assert done_installations(ledger, run_id) == set()
    record_result(ledger, run_id, _res("p1", Outcome.PATCHED))
    record_result(ledger, run_id, _res("p1", Outcome.NOT_AFFECTED, path="old"))
    record_result(ledger, run_id, _res("p2", Outcome.DRY_RUN_FAILED, Reason.PHP_INCOMPATIBLE))
    record_result(ledger, run_id, _res("p3", Outcome.UNREACHABLE))
    record_result(ledger, run_id, _res("p4", Outcome.ERROR))
    assert done_installations(ledger, run_id) == {("p1", ""), ("p1", "old"), ("p2", ""), ("p4", "")}
    assert ("p3", "") in done_installations(ledger, run_id, retry=())
    assert ("p4", "") not in done_installations(
        ledger, run_id, retry=(Outcome.UNREACHABLE, Outcome.ERROR)
    )
    # the unreachable host answers on resume: its result replaces the old one
    record_result(ledger, run_id, _res("p3", Outcome.PATCHED))
    assert ("p3", "") in done_installations(ledger, run_id)
    other = _run(ledger)
    assert done_installations(ledger, other) == set()


def test_touched_files_lifecycle(ledger: Ledger) -> None:
    run_id = _run(ledger)
    odd = b"wp-includes/\xff\n.php".decode("utf-8", "surrogateescape")
    for account, file in (("p1", "wp-login.php"), ("p1", odd), ("p2", "wp-login.php")):
        record_touched_file(
            ledger,
            run_id,
            TouchedFileRecord(
                account=account,
                path="html",
                file=file,
                pre_sha256="a" * 64,
                mode=0o644,
                uid=10001,
                gid=10001,
            ),
        )
    files = touched_files(ledger, run_id, account="p1")
    # NOTE: the non-UTF-8 name is stored as a BLOB, which SQLite sorts after TEXT
    assert [f.file for f in files] == ["wp-login.php", odd]
    assert all(f.state is FileState.PLANNED for f in files)
    assert files[0].mode == 0o644 and files[0].uid == 10001

    update_touched_file_state(
        ledger,
        run_id,
        "p1",
        "html",
        odd,
        FileState.BACKED_UP,
        backup_path="/var/lib/patchd/backups/1/p1/x",
    )
    update_touched_file_state(
        ledger, run_id, "p1", "html", odd, FileState.REPLACED, post_sha256="b" * 64
    )
    (f,) = [f for f in touched_files(ledger, run_id, account="p1") if f.file == odd]
    assert f.state is FileState.REPLACED
    assert f.post_sha256 == "b" * 64
    assert f.backup_path == "/var/lib/patchd/backups/1/p1/x"
    assert f.pre_sha256 == "a" * 64

    # a crash left p1 half-done: files in backed-up/replaced state without a result
    half_done = {
        (f.account, f.path)
        for f in touched_files(ledger, run_id)
        if f.state in (FileState.BACKED_UP, FileState.REPLACED)
    }
    assert half_done == {("p1", "html")}
    assert len(touched_files(ledger, run_id)) == 3

    with pytest.raises(LedgerError, match="no touched file"):
        update_touched_file_state(ledger, run_id, "p1", "html", "nope.php", FileState.VERIFIED)
    with pytest.raises(ValueError):
        update_touched_file_state(ledger, run_id, "p1", "html", odd, "melted")  # type: ignore[arg-type]


def test_record_touched_file_replaces(ledger: Ledger) -> None:
    run_id = _run(ledger)
    rec = TouchedFileRecord(account="p1", path="", file="index.php", pre_sha256="a" * 64)
    record_touched_file(ledger, run_id, rec)
    record_touched_file(ledger, run_id, rec.model_copy(update={"state": FileState.VERIFIED}))
    (f,) = touched_files(ledger, run_id)
    assert f.state is FileState.VERIFIED


def test_reasons_of_skipped_reverted_and_the_health_checks_error() -> None:
    assert _res("p1", Outcome.SKIPPED, Reason.GATE).reason is Reason.GATE
    assert _res("p1", Outcome.SKIPPED).reason is None
    assert _res("p1", Outcome.ERROR, Reason.HEALTH_CHECK).reason is Reason.HEALTH_CHECK
    with pytest.raises(ValidationError, match="outcome reverted needs a reason"):
        _res("p1", Outcome.REVERTED)
    with pytest.raises(ValidationError, match="reason gate only goes with skipped"):
        _res("p1", Outcome.PATCHED, Reason.GATE)
    with pytest.raises(ValidationError, match="reason health-check only goes with error/reverted"):
        _res("p1", Outcome.SKIPPED, Reason.HEALTH_CHECK)


def test_gate_skipped_installations_are_not_done(ledger: Ledger) -> None:
    run_id = _run(ledger)
    record_result(ledger, run_id, _res("p1", Outcome.SKIPPED, Reason.GATE))
    record_result(ledger, run_id, _res("p2", Outcome.SKIPPED))
    record_result(ledger, run_id, _res("p3", Outcome.REVERTED, Reason.HEALTH_CHECK))
    assert done_installations(ledger, run_id) == {("p2", ""), ("p3", "")}
    assert done_installations(ledger, run_id, retry=()) == {("p2", ""), ("p3", "")}
