"""The results of a run as DESIGN.md's stable JSON object and as listing rows.

``{"run": ID, "bundle": ID, "results": [{"account", "customer", "host", "path", "cms",
"version", "outcome", "reason", "detail"}], "summary": {OUTCOME: COUNT}}`` — used by
``patchd rollout --json`` and ``patchd report``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from patchd.ledger import runs as ledger_runs
from patchd.ledger.db import Ledger
from patchd.ledger.models import Result
from patchd.outcomes import AFFECTED_OUTCOMES, SUCCESS_OUTCOMES

#: Columns of the results listing, in order (stable; documented in docs/reference.md).
RESULT_COLUMNS = (
    "account",
    "customer",
    "host",
    "path",
    "cms",
    "version",
    "outcome",
    "reason",
    "detail",
)


@dataclass(frozen=True)
class ResultFilter:
    """Which results to list (all when every field is None)."""

    outcome: str | None = None
    reason: str | None = None
    host: str | None = None
    customer: str | None = None
    account: str | None = None


def result_row(r: Result) -> dict[str, Any]:
    """One result with the stable keys."""
    return {
        "account": r.account,
        "customer": r.customer_id,
        "host": r.host,
        "path": r.path,
        "cms": r.cms,
        "version": r.version,
        "outcome": r.outcome.value,
        "reason": r.reason.value if r.reason else None,
        "detail": r.detail,
        "policy": r.policy,
    }


def success_rate(summary: dict[str, int]) -> float | None:
    """(patched + already-patched) / affected; None when nothing was affected."""
    affected = sum(n for o, n in summary.items() if o in AFFECTED_OUTCOMES)
    if not affected:
        return None
    return sum(n for o, n in summary.items() if o in SUCCESS_OUTCOMES) / affected


def run_json_head(ledger: Ledger, run_id: int) -> dict[str, Any]:
    """:func:`run_json` of the whole run without its ``results`` (see
    :func:`iter_result_rows`): for output written a row at a time."""
    run = ledger_runs.get_run(ledger, run_id)
    summary = ledger_runs.summary(ledger, run_id)
    return {
        "run": run.id,
        "bundle": run.bundle_id,
        "dry_run": run.dry_run,
        "status": run.status.value,
        "summary": summary,
        "success_rate": success_rate(summary),
    }


#: The ledger's columns as the keys of :func:`result_row` (for :func:`iter_result_rows`).
_ROW_SELECT = (
    "SELECT id, account, customer_id AS customer, host, path, cms, version, outcome, "
    "reason, detail, policy FROM results"
)


def iter_result_rows(ledger: Ledger, run_id: int, *, page: int = 1000) -> Iterator[dict[str, Any]]:
    """Every row of :func:`run_json`'s ``results``, in its order, read ``page`` at a time.

    NOTE: the order is taken once as row ids (a few MB for 50,000 results; no index on
    the sort columns is needed), then the rows are read by id a page at a time, with the
    keys of :func:`result_row` straight from SQL: the stored values are those the
    validated records had (a model per row was half of writing 50,000 rows).
    """
    from patchd.report.sites import as_site_row, sites_of_run

    sites = sites_of_run(ledger, run_id)  # NOTE (issue 17): the scan's path, see sites.py
    ids = [
        r["id"]
        for r in ledger.query(
            "SELECT id FROM results WHERE run_id = ? ORDER BY host, account, path", (run_id,)
        )
    ]
    for start in range(0, len(ids), page):
        chunk = ids[start : start + page]
        marks = ",".join("?" * len(chunk))
        rows = {
            row.pop("id"): row
            for row in ledger.query(f"{_ROW_SELECT} WHERE id IN ({marks})", chunk)
        }
        for row_id in chunk:
            yield as_site_row(rows[row_id], sites)


def run_json(ledger: Ledger, run_id: int, flt: ResultFilter | None = None) -> dict[str, Any]:
    """The run's results (filtered) in the stable JSON shape."""
    flt = flt or ResultFilter()
    head = run_json_head(ledger, run_id)
    rows = ledger_runs.results(
        ledger,
        run_id,
        outcome=flt.outcome,
        reason=flt.reason,
        host=flt.host,
        customer=flt.customer,
        account=flt.account,
    )
    from patchd.report.sites import as_site_rows, sites_of_run

    # NOTE (issue 17): a classic TYPO3 site is shown at the scan's path, see sites.py
    sites = sites_of_run(ledger, run_id)
    return {**head, "results": list(as_site_rows((result_row(r) for r in rows), sites))}


__all__ = [
    "RESULT_COLUMNS",
    "ResultFilter",
    "iter_result_rows",
    "result_row",
    "run_json",
    "run_json_head",
    "success_rate",
]
