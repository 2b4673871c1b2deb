"""Support's lists of a run: summary, per-host counts, success and failure lists.

Builds on :func:`patchd.report.results.run_json` (DESIGN.md's stable JSON shape) and adds
keys: ``per_host`` (outcome counts per host, over the whole run), ``filters`` (what the
listing was filtered by) and, on every result, ``policy`` and ``explanation`` (the outcome
and reason in plain words, with file and hunk, PHP versions or the host error).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict
from typing import Any

from patchd.ledger import runs as ledger_runs
from patchd.ledger.db import Ledger
from patchd.notify.explain import explain
from patchd.outcomes import SUCCESS_OUTCOMES, Outcome
from patchd.report.results import RESULT_COLUMNS, ResultFilter, run_json, success_rate

#: Columns of ``patchd report`` (table, CSV, HTML), in order. Stable: documented in
#: docs/support.md. The first nine are DESIGN.md's result keys.
REPORT_COLUMNS: tuple[str, ...] = (*RESULT_COLUMNS, "policy", "explanation")

#: Columns of the per-host summary.
HOST_COLUMNS: tuple[str, ...] = ("host", "total", "success", "failed", "success_rate")

#: Outcomes listed in the failure list (and counted as "failed" per host).
FAILURE_OUTCOMES = frozenset(
    {Outcome.DRY_RUN_FAILED, Outcome.APPLY_FAILED, Outcome.UNREACHABLE, Outcome.ERROR}
)

#: The groups of the table output, in order: (title, outcomes).
GROUPS: tuple[tuple[str, frozenset[Outcome]], ...] = (
    ("success list", frozenset(SUCCESS_OUTCOMES)),
    ("failure list", FAILURE_OUTCOMES),
    ("skipped (policy)", frozenset({Outcome.SKIPPED})),
    ("not affected", frozenset({Outcome.NOT_AFFECTED})),
)


def _host_rows(ledger: Ledger, run_id: int) -> list[dict[str, Any]]:
    per: dict[str, Counter[str]] = {}
    for r in ledger_runs.results(ledger, run_id):
        per.setdefault(r.host, Counter())[r.outcome.value] += 1
    rows: list[dict[str, Any]] = []
    for host in sorted(per):
        counts = per[host]
        rows.append(
            {
                "host": host,
                "total": sum(counts.values()),
                "success": sum(counts[o.value] for o in SUCCESS_OUTCOMES),
                "failed": sum(counts[o.value] for o in FAILURE_OUTCOMES),
                "success_rate": success_rate(dict(counts)),
                "outcomes": dict(sorted(counts.items())),
            }
        )
    return rows


def report_data(ledger: Ledger, run_id: int, flt: ResultFilter | None = None) -> dict[str, Any]:
    """The run's report: DESIGN.md's JSON object plus ``per_host``, ``filters`` and, per
    result, ``policy`` and ``explanation``.

    ``summary``, ``success_rate`` and ``per_host`` always cover the whole run; ``results``
    are filtered by ``flt``.
    """
    flt = flt or ResultFilter()
    data = run_json(ledger, run_id, flt)
    for row in data["results"]:
        row["explanation"] = explain(row["outcome"], row["reason"], row["detail"], "en")
    data["per_host"] = _host_rows(ledger, run_id)
    data["filters"] = {k: v for k, v in asdict(flt).items() if v is not None}
    return data


def grouped(results: list[dict[str, Any]], *, all_groups: bool) -> list[tuple[str, list]]:
    """``results`` split into :data:`GROUPS` (non-empty ones; "not affected" only when
    ``all_groups``, since it is most of a fleet)."""
    out: list[tuple[str, list]] = []
    for title, outcomes in GROUPS:
        if Outcome.NOT_AFFECTED in outcomes and not all_groups:
            continue
        rows = [r for r in results if r["outcome"] in outcomes]
        if rows:
            out.append((title, rows))
    known = {o.value for _, outs in GROUPS for o in outs}
    other = [r for r in results if r["outcome"] not in known]
    if other:
        out.append(("other outcomes", other))
    return out
