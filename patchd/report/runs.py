"""``patchd runs``: every run of the ledger with its bundle, times, status, outcome counts,
and where its records live (the ledger file, the backup stores on the hosts)."""

from __future__ import annotations

import posixpath
from collections import defaultdict
from typing import Any

from patchd.ledger import runs as ledger_runs
from patchd.ledger.db import Ledger
from patchd.ledger.models import Run, RunStatus
from patchd.patcher.journal import JOURNAL_NAME

#: Columns of ``patchd runs`` (stable; docs/operator.md).
RUNS_COLUMNS = (
    "run",
    "bundle",
    "started",
    "finished",
    "status",
    "counts",
    "ledger",
    "backups",
)


def status_word(run: Run) -> str:
    """``dry run``, ``canary-stopped``, ``finished``, ``running``, ``interrupted``; a run
    that was resumed says so (``finished, resumed``)."""
    if run.dry_run and run.status is RunStatus.FINISHED:
        word = "dry run"
    elif run.dry_run:
        word = f"dry run, {run.status.value}"
    else:
        word = run.status.value
    return f"{word}, resumed" if run.resumes else word


def backup_stores(ledger: Ledger) -> dict[int, list[str]]:
    """run id -> the backup stores its journals are in, as ``host:/folder``."""
    out: dict[int, set[str]] = defaultdict(set)
    for r in ledger.query(
        "SELECT DISTINCT run_id, host, journal FROM results WHERE journal IS NOT NULL"
    ):
        entry = r["journal"].rstrip("/")
        if posixpath.basename(entry) == JOURNAL_NAME:
            entry = posixpath.dirname(entry)
        # NOTE: a journal's entry is <store>/<run>/<key>/ (patchd.patcher.journal).
        out[r["run_id"]].add(f"{r['host']}:{posixpath.dirname(posixpath.dirname(entry))}")
    return {k: sorted(v) for k, v in out.items()}


def runs_rows(ledger: Ledger, *, bundle_id: str | None = None) -> list[dict[str, Any]]:
    """One row per run (newest first): :data:`RUNS_COLUMNS` plus ``dry_run`` and
    ``resumes``; ``counts`` is outcome -> count, ``backups`` a list."""
    counts = ledger_runs.summaries(ledger)
    stores = backup_stores(ledger)
    rows = []
    for run in reversed(ledger_runs.list_runs(ledger, bundle_id=bundle_id)):
        rows.append(
            {
                "run": run.id,
                "bundle": run.bundle_id,
                "started": run.started_at.isoformat(timespec="seconds"),
                "finished": run.finished_at.isoformat(timespec="seconds")
                if run.finished_at
                else None,
                "status": status_word(run),
                "dry_run": run.dry_run,
                "resumes": run.resumes,
                "counts": counts.get(run.id, {}),
                "ledger": str(ledger.path),
                "backups": stores.get(run.id, []),
            }
        )
    return rows
