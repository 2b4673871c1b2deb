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

from patchd.errors import UsageError
from patchd.ledger import current as ledger_current
from patchd.ledger import runs as ledger_runs
from patchd.ledger.db import Ledger
from patchd.ledger.models import Result
from patchd.notify.explain import explain
from patchd.outcomes import SUCCESS_OUTCOMES, Outcome, Reason, skipped_kind
from patchd.report.headline import dry_run_counts
from patchd.report.results import (
    RESULT_COLUMNS,
    ResultFilter,
    result_row,
    run_json,
    success_rate,
)
from patchd.report.sites import RunSites, as_site_row

#: Columns of ``patchd report`` (table, CSV, HTML), in order. Stable: documented in
#: docs/support.md. The first nine are DESIGN.md's result keys.
REPORT_COLUMNS: tuple[str, ...] = (*RESULT_COLUMNS, "policy", "explanation")

#: Columns of the per-host summary.
HOST_COLUMNS: tuple[str, ...] = ("host", "total", "success", "failed", "success_rate")

#: Outcomes listed in the failure list (and counted as "failed" per host).
FAILURE_OUTCOMES = frozenset(
    {
        Outcome.DRY_RUN_FAILED,
        Outcome.APPLY_FAILED,
        Outcome.REVERTED,
        Outcome.ROLLED_BACK,
        Outcome.UNREACHABLE,
        Outcome.ERROR,
    }
)

#: The groups of the table output, in order: (title, outcomes).
GROUPS: tuple[tuple[str, frozenset[Outcome]], ...] = (
    ("success list", frozenset(SUCCESS_OUTCOMES)),
    ("failure list", FAILURE_OUTCOMES),
    ("skipped (policy or gate)", frozenset({Outcome.SKIPPED})),
    ("not affected", frozenset({Outcome.NOT_AFFECTED})),
)


def _host_rows(results: list[Result]) -> list[dict[str, Any]]:
    per: dict[str, Counter[str]] = {}
    for r in results:
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
    everything = ledger_runs.results(ledger, run_id)
    data["per_host"] = _host_rows(everything)
    if data["dry_run"]:
        # NOTE (issue 17): over the whole run, like summary (results may be filtered).
        data["dry_run_counts"] = dry_run_counts((r.outcome.value, r.detail) for r in everything)
    data["filters"] = {k: v for k, v in asdict(flt).items() if v is not None}
    return data


def _matches(r: Result, flt: ResultFilter) -> bool:
    return all(
        want is None or want == got
        for want, got in (
            (flt.outcome, r.outcome.value),
            (flt.reason, r.reason.value if r.reason else None),
            (flt.host, r.host),
            (flt.customer, r.customer_id),
            (flt.account, r.account),
        )
    )


def bundle_report_data(
    ledger: Ledger, bundle_id: str, flt: ResultFilter | None = None
) -> dict[str, Any]:
    """The report over every run of ``bundle_id`` that wrote: one current result per
    installation (:mod:`patchd.ledger.current`), each with the ``run`` it comes from.

    The keys of :func:`report_data`, with ``run`` the newest run, ``runs`` every run
    merged and ``status`` ``merged``.
    """
    flt = flt or ResultFilter()
    runs = ledger_current.real_runs(ledger, bundle_id)
    if not runs:
        raise UsageError(f"the ledger has no run of bundle {bundle_id} that wrote")
    merged = ledger_current.bundle_results(ledger, bundle_id)
    counts = Counter(r.outcome.value for r in merged)
    order = [o.value for o in Outcome]
    summary = {
        o: counts[o]
        for o in sorted(
            counts, key=lambda o: (o not in order, order.index(o) if o in order else 0, o)
        )
    }
    rows = []
    sites = RunSites(ledger)
    for r in merged:
        if _matches(r, flt):
            row = as_site_row(result_row(r), sites(r.run_id))
            row["run"] = r.run_id
            row["explanation"] = explain(row["outcome"], row["reason"], row["detail"], "en")
            rows.append(row)
    return {
        "run": runs[-1].id,
        "runs": [r.id for r in runs],
        "bundle": bundle_id,
        "dry_run": False,
        "status": "merged",
        "summary": summary,
        "success_rate": success_rate(summary),
        "results": rows,
        "per_host": _host_rows(merged),
        "filters": {k: v for k, v in asdict(flt).items() if v is not None},
    }


def _why_skipped(row: dict[str, Any]) -> str:
    """``policy``, ``dry run``, ``gate`` or ``untested``: why a skipped row was not written
    (issue 17: a dry run's rows were listed as "skipped (policy)")."""
    kind = skipped_kind(row.get("detail"))
    if kind == "dry-run":
        return "dry run"
    if kind == "policy" or row.get("reason") == Reason.POLICY.value:
        return "policy"
    if row.get("reason") == Reason.GATE.value:
        return "gate"
    return "untested" if "untested" in (row.get("detail") or "") else "other"


def grouped(results: list[dict[str, Any]], *, all_groups: bool) -> list[tuple[str, list]]:
    """``results`` split into :data:`GROUPS` (non-empty ones; "not affected" only when
    ``all_groups``, since it is most of a fleet)."""
    out: list[tuple[str, list]] = []
    for title, outcomes in GROUPS:
        if Outcome.NOT_AFFECTED in outcomes and not all_groups:
            continue
        rows = [r for r in results if r["outcome"] in outcomes]
        if rows and Outcome.SKIPPED in outcomes:
            title = f"skipped ({', '.join(sorted({_why_skipped(r) for r in rows}))})"
        if rows:
            out.append((title, rows))
    known = {o.value for _, outs in GROUPS for o in outs}
    other = [r for r in results if r["outcome"] not in known]
    if other:
        out.append(("other outcomes", other))
    return out
