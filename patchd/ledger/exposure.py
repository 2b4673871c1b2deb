"""Exposure per scan in the ledger: the rows, a summary per scan (the trend), and the
exposure emails (never twice per scan and customer)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from patchd.exposure.model import ExposureRow, Status
from patchd.ledger.db import Ledger, utc_now

_INSERT = (
    "INSERT INTO exposures (scan_id, account, customer_id, host, path, cms, component, "
    "version, source, advisory_id, package, status, severity, fixed_in, detail) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


@dataclass(frozen=True)
class TrendPoint:
    """One scan's exposure in numbers."""

    scan_id: int
    scan_date: str
    computed_at: str
    advisories: int
    installations: int
    exposed_installations: int
    exposed_customers: int
    mitigated: int
    unknown: int


def summarize(rows: list[ExposureRow], installations: int) -> dict[str, int]:
    """The numbers the trend shows, from one scan's rows."""
    exposed = {(r.account, r.host, r.path) for r in rows if r.status is Status.EXPOSED}
    customers = {r.customer or r.account for r in rows if r.status is Status.EXPOSED}
    return {
        "installations": installations,
        "exposed_installations": len(exposed),
        "exposed_customers": len(customers),
        "mitigated": sum(1 for r in rows if r.status is Status.MITIGATED),
        "unknown": sum(1 for r in rows if r.status is Status.UNKNOWN),
    }


def store_exposure(
    ledger: Ledger,
    scan_id: int,
    scan_date: str,
    advisories: int,
    rows: Iterable[ExposureRow],
    installations: int,
) -> list[ExposureRow]:
    """Replace the stored exposure of ``scan_id`` with ``rows``; return them."""
    kept = list(rows)
    summary = summarize(kept, installations)
    with ledger.transaction():
        ledger.execute("DELETE FROM exposure_scans WHERE scan_id = ?", (scan_id,))
        ledger.execute(
            "INSERT INTO exposure_scans (scan_id, computed_at, scan_date, advisories, summary) "
            "VALUES (?, ?, ?, ?, ?)",
            (scan_id, utc_now(), scan_date, advisories, json.dumps(summary, sort_keys=True)),
        )
        ledger.executemany(
            _INSERT,
            (
                (
                    scan_id,
                    r.account,
                    r.customer,
                    r.host,
                    r.path,
                    r.cms,
                    r.component,
                    r.version,
                    r.source,
                    r.advisory,
                    r.package,
                    r.status.value,
                    r.severity,
                    r.fixed_in,
                    r.detail,
                )
                for r in kept
            ),
        )
    return kept


def has_exposure(ledger: Ledger, scan_id: int) -> bool:
    return (
        ledger.query_one("SELECT 1 FROM exposure_scans WHERE scan_id = ?", (scan_id,)) is not None
    )


def load_exposure(ledger: Ledger, scan_id: int) -> list[ExposureRow]:
    """The stored rows of ``scan_id``, with the advisories' current titles and CVEs."""
    rows = ledger.query(
        "SELECT e.*, a.title, a.cve, a.link FROM exposures e "
        "LEFT JOIN advisories a ON a.source = e.source AND a.advisory_id = e.advisory_id "
        "AND a.package = e.package WHERE e.scan_id = ? ORDER BY e.id",
        (scan_id,),
    )
    return [_row(r) for r in rows]


def _row(r: dict[str, Any]) -> ExposureRow:
    return ExposureRow(
        account=r["account"],
        customer=r["customer_id"],
        host=r["host"],
        path=r["path"],
        cms=r["cms"],
        component=r["component"],
        version=r["version"],
        advisory=r["advisory_id"],
        cve=tuple(json.loads(r["cve"])) if r["cve"] else (),
        title=r["title"] or r["advisory_id"],
        severity=r["severity"] or "unknown",
        fixed_in=r["fixed_in"],
        status=Status(r["status"]),
        source=r["source"],
        package=r["package"],
        link=r["link"],
        detail=r["detail"],
    )


def trend(ledger: Ledger) -> list[TrendPoint]:
    """Every scan's exposure numbers, by scan date."""
    points = []
    for r in ledger.query("SELECT * FROM exposure_scans ORDER BY scan_date, scan_id"):
        s = json.loads(r["summary"])
        points.append(
            TrendPoint(
                scan_id=r["scan_id"],
                scan_date=r["scan_date"],
                computed_at=r["computed_at"],
                advisories=r["advisories"],
                installations=s.get("installations", 0),
                exposed_installations=s.get("exposed_installations", 0),
                exposed_customers=s.get("exposed_customers", 0),
                mitigated=s.get("mitigated", 0),
                unknown=s.get("unknown", 0),
            )
        )
    return points
