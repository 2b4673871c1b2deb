"""Runs: one rollout of a bundle, its per-installation results and the files it touched.

Resuming a run: :func:`find_unfinished_run` finds it by bundle and options,
:func:`done_installations` says which installations already have a final result, and
:func:`touched_files` tells what a crash left half-done (state ``backed-up`` or
``replaced`` without a result).
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from patchd.errors import LedgerError
from patchd.ledger.db import Ledger, utc_now
from patchd.ledger.models import (
    FileState,
    Outcome,
    Reason,
    Result,
    ResultRecord,
    Run,
    RunStatus,
    TouchedFile,
    TouchedFileRecord,
)

UNFINISHED = (RunStatus.RUNNING, RunStatus.INTERRUPTED, RunStatus.GATE_STOPPED)
"""Statuses of a run that a rollout may resume (``gate-stopped`` only when told to)."""

RETRY_ON_RESUME = frozenset({Outcome.UNREACHABLE})
"""Outcomes that a resumed run tries again (the host may be back)."""


def _canonical(options: Mapping[str, Any]) -> str:
    return json.dumps(options, sort_keys=True, separators=(",", ":"), default=str)


def options_key(options: Mapping[str, Any]) -> str:
    """A stable key of a run's options (sha256 of their canonical JSON)."""
    return hashlib.sha256(_canonical(options).encode()).hexdigest()


def create_run(
    ledger: Ledger,
    *,
    bundle_id: str,
    bundle_digest: str,
    dry_run: bool,
    scan_id: int | None = None,
    options: Mapping[str, Any] | None = None,
    pid: int | None = None,
    host_of_controller: str | None = None,
) -> int:
    """Record a new run (status ``running``); return its id.

    ``pid`` and ``host_of_controller`` default to this process and this machine.
    """
    opts = dict(options or {})
    return ledger.insert(
        "INSERT INTO runs (bundle_id, bundle_digest, started_at, status, dry_run, scan_id, "
        "options, options_key, pid, host_of_controller) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            bundle_id,
            bundle_digest,
            utc_now(),
            RunStatus.RUNNING.value,
            int(bool(dry_run)),
            scan_id,
            _canonical(opts),
            options_key(opts),
            os.getpid() if pid is None else pid,
            socket.gethostname() if host_of_controller is None else host_of_controller,
        ),
    )


def _run(row: dict[str, Any]) -> Run:
    row["options"] = json.loads(row["options"])
    return Run.model_validate(row)


def get_run(ledger: Ledger, run_id: int) -> Run:
    """The run ``run_id``; LedgerError ``no run N`` when there is none."""
    row = ledger.query_one("SELECT * FROM runs WHERE id = ?", (run_id,))
    if row is None:
        raise LedgerError(f"no run {run_id}", where=ledger.where)
    return _run(row)


def list_runs(ledger: Ledger, *, bundle_id: str | None = None) -> list[Run]:
    """Every run (of one bundle), oldest first."""
    if bundle_id is None:
        rows = ledger.query("SELECT * FROM runs ORDER BY id")
    else:
        rows = ledger.query("SELECT * FROM runs WHERE bundle_id = ? ORDER BY id", (bundle_id,))
    return [_run(r) for r in rows]


def find_unfinished_run(ledger: Ledger, bundle_id: str, options_key: str) -> Run | None:
    """The newest ``running``, ``interrupted`` or ``gate-stopped`` run of ``bundle_id`` with
    these options.

    ``options_key`` is :func:`options_key` of the options the new rollout would use.
    """
    row = ledger.query_one(
        "SELECT * FROM runs WHERE bundle_id = ? AND options_key = ? AND status IN (?, ?, ?) "
        "ORDER BY id DESC LIMIT 1",
        (bundle_id, options_key, *(s.value for s in UNFINISHED)),
    )
    return _run(row) if row else None


def set_run_status(ledger: Ledger, run_id: int, status: RunStatus) -> None:
    """Set a run's status; any status but ``running`` also sets ``finished_at``.

    Setting ``running`` again (resuming) clears ``finished_at`` and takes over the run
    for this process.
    """
    status = RunStatus(status)
    if status is RunStatus.RUNNING:
        changed = ledger.execute(
            "UPDATE runs SET status = ?, finished_at = NULL, pid = ?, host_of_controller = ?, "
            "resumes = resumes + 1 WHERE id = ?",
            (status.value, os.getpid(), socket.gethostname(), run_id),
        )
    else:
        changed = ledger.execute(
            "UPDATE runs SET status = ?, finished_at = ? WHERE id = ?",
            (status.value, utc_now(), run_id),
        )
    if not changed:
        raise LedgerError(f"no run {run_id}", where=ledger.where)


def set_run_scan(ledger: Ledger, run_id: int, scan_id: int) -> None:
    """Record which scan a run matched against (a run may start before its scan exists)."""
    if not ledger.execute("UPDATE runs SET scan_id = ? WHERE id = ?", (scan_id, run_id)):
        raise LedgerError(f"no run {run_id}", where=ledger.where)


def record_result(ledger: Ledger, run_id: int, result: ResultRecord) -> None:
    """Store (or replace) the result of one installation in ``run_id``."""
    record_results(ledger, run_id, [(result, ())])


def record_results(
    ledger: Ledger,
    run_id: int,
    results: Sequence[tuple[ResultRecord, Sequence[TouchedFileRecord]]],
) -> None:
    """Store (or replace) several results, each with its touched files, in ONE transaction.

    NOTE: one commit per result cost more than the result itself on large rollouts; a
    batch lost to a crash is redone on resume (finished applies are found by their
    journals), so batching costs no safety.
    """
    if not results:
        return
    now = utc_now()
    with ledger.transaction():
        ledger.executemany(_RESULT_SQL, [_result_params(run_id, r, now) for r, _f in results])
        files = [_file_params(run_id, f, now) for _r, fs in results for f in fs]
        if files:
            ledger.executemany(_FILE_SQL, files)


def _result_params(run_id: int, result: ResultRecord, now: str) -> tuple[Any, ...]:
    return (
        run_id,
        result.account,
        result.customer_id,
        result.host,
        result.path,
        result.cms,
        result.version,
        result.outcome.value,
        result.reason.value if result.reason else None,
        result.detail,
        result.variant,
        result.error_traceback,
        result.journal,
        result.policy,
        now,
    )


def _file_params(run_id: int, record: TouchedFileRecord, now: str) -> tuple[Any, ...]:
    return (
        run_id,
        record.account,
        record.path,
        record.file,
        record.pre_sha256,
        record.post_sha256,
        record.backup_path,
        record.mode,
        record.uid,
        record.gid,
        FileState(record.state).value,
        now,
    )


_RESULT_SQL = (
    "INSERT INTO results (run_id, account, customer_id, host, path, cms, version, outcome, "
    "reason, detail, variant, error_traceback, journal, policy, updated_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (run_id, account, path) DO UPDATE SET "
    "customer_id = excluded.customer_id, host = excluded.host, cms = excluded.cms, "
    "version = excluded.version, outcome = excluded.outcome, reason = excluded.reason, "
    "detail = excluded.detail, variant = excluded.variant, "
    "error_traceback = excluded.error_traceback, journal = excluded.journal, "
    "policy = excluded.policy, updated_at = excluded.updated_at"
)
_FILE_SQL = (
    "INSERT INTO touched_files (run_id, account, path, file, pre_sha256, post_sha256, "
    "backup_path, mode, uid, gid, state, updated_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (run_id, account, path, file) DO UPDATE SET "
    "pre_sha256 = excluded.pre_sha256, post_sha256 = excluded.post_sha256, "
    "backup_path = excluded.backup_path, mode = excluded.mode, uid = excluded.uid, "
    "gid = excluded.gid, state = excluded.state, updated_at = excluded.updated_at"
)


def results(
    ledger: Ledger,
    run_id: int,
    *,
    outcome: Outcome | str | None = None,
    reason: Reason | str | None = None,
    host: str | None = None,
    customer: str | None = None,
    account: str | None = None,
) -> list[Result]:
    """The results of a run, filtered; ordered by host, account, path."""
    get_run(ledger, run_id)
    sql = "SELECT * FROM results WHERE run_id = ?"
    params: list[Any] = [run_id]
    for column, value in (
        ("outcome", Outcome(outcome) if outcome is not None else None),
        ("reason", Reason(reason) if reason is not None else None),
        ("host", host),
        ("customer_id", customer),
        ("account", account),
    ):
        if value is not None:
            sql += f" AND {column} = ?"
            params.append(str(value))
    sql += " ORDER BY host, account, path"
    rows = ledger.query(sql, params)
    for row in rows:
        row.pop("id")
    return [Result.model_validate(r) for r in rows]


def summaries(ledger: Ledger) -> dict[int, dict[str, int]]:
    """run id -> outcome -> count, for every run with results (one query)."""
    out: dict[int, dict[str, int]] = {}
    for r in ledger.query(
        "SELECT run_id, outcome, COUNT(*) AS n FROM results GROUP BY run_id, outcome"
    ):
        out.setdefault(r["run_id"], {})[r["outcome"]] = r["n"]
    order = {o.value: i for i, o in enumerate(Outcome)}
    return {
        run: dict(sorted(c.items(), key=lambda kv: (order.get(kv[0], len(order)), kv[0])))
        for run, c in out.items()
    }


def summary(ledger: Ledger, run_id: int) -> dict[str, int]:
    """outcome -> count for a run (only outcomes that occur, in Outcome order)."""
    get_run(ledger, run_id)
    rows = ledger.query(
        "SELECT outcome, COUNT(*) AS n FROM results WHERE run_id = ? GROUP BY outcome",
        (run_id,),
    )
    counts = {r["outcome"]: r["n"] for r in rows}
    known = [o.value for o in Outcome if o.value in counts]
    unknown = sorted(set(counts) - set(known))  # NOTE: words from a newer patchd, kept
    return {o: counts[o] for o in known + unknown}


def mark_rolled_back(ledger: Ledger, run_id: int, account: str, path: str, detail: str) -> None:
    """Record that ``patchd rollback`` undid the change of ``run_id`` in one installation:
    outcome ``rolled-back`` (the current state, not patched), ``detail`` saying what was
    undone, ``rolled_back_at`` now. The journal is kept (a rollback left with conflicts may
    be tried again)."""
    now = utc_now()
    changed = ledger.execute(
        "UPDATE results SET outcome = ?, reason = NULL, detail = ?, rolled_back_at = ?, "
        "updated_at = ? WHERE run_id = ? AND account = ? AND path = ?",
        (Outcome.ROLLED_BACK.value, detail, now, now, run_id, account, path),
    )
    if not changed:
        raise LedgerError(f"run {run_id} has no result for {account}:{path!r}", where=ledger.where)


def done_installations(
    ledger: Ledger, run_id: int, *, retry: Iterable[Outcome] = RETRY_ON_RESUME
) -> set[tuple[str, str]]:
    """(account, path) of every installation of ``run_id`` a resume must not redo.

    That is every installation with a result, except those whose outcome is in ``retry``
    (by default ``unreachable``) and those ``skipped`` by the fleet failure gate (they
    were never looked at).
    """
    get_run(ledger, run_id)
    skip = sorted(Outcome(o).value for o in retry)
    marks = ", ".join("?" * len(skip))
    cond = f" AND outcome NOT IN ({marks})" if skip else ""
    cond += " AND NOT (outcome = ? AND COALESCE(reason, '') = ?)"
    gate = (Outcome.SKIPPED.value, Reason.GATE.value)
    rows = ledger.query(
        f"SELECT account, path FROM results WHERE run_id = ?{cond}", (run_id, *skip, *gate)
    )
    return {(r["account"], r["path"]) for r in rows}


def record_touched_file(ledger: Ledger, run_id: int, record: TouchedFileRecord) -> None:
    """Store (or replace) what a run knows about one file it touches."""
    ledger.execute(_FILE_SQL, _file_params(run_id, record, utc_now()))


def update_touched_file_state(
    ledger: Ledger,
    run_id: int,
    account: str,
    path: str,
    file: str,
    state: FileState,
    *,
    post_sha256: str | None = None,
    backup_path: str | None = None,
) -> None:
    """Move one touched file to ``state`` (optionally setting its post hash / backup).

    Raises :class:`LedgerError` when the file was never recorded for this run.
    """
    sets = ["state = ?", "updated_at = ?"]
    params: list[Any] = [FileState(state).value, utc_now()]
    if post_sha256 is not None:
        sets.append("post_sha256 = ?")
        params.append(post_sha256)
    if backup_path is not None:
        sets.append("backup_path = ?")
        params.append(backup_path)
    changed = ledger.execute(
        f"UPDATE touched_files SET {', '.join(sets)} "
        "WHERE run_id = ? AND account = ? AND path = ? AND file = ?",
        (*params, run_id, account, path, file),
    )
    if not changed:
        raise LedgerError(
            f"run {run_id} has no touched file {file!r} in {account}:{path!r}",
            where=ledger.where,
        )


def touched_files(ledger: Ledger, run_id: int, account: str | None = None) -> list[TouchedFile]:
    """The files a run touched (of one account), by account, path, file."""
    get_run(ledger, run_id)
    sql = "SELECT * FROM touched_files WHERE run_id = ?"
    params: list[Any] = [run_id]
    if account is not None:
        sql += " AND account = ?"
        params.append(account)
    rows = ledger.query(sql + " ORDER BY account, path, file", params)
    for row in rows:
        row.pop("id")
    return [TouchedFile.model_validate(r) for r in rows]
