"""Filters and groupings of exposure rows for the command line and the HTML page."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from patchd.advisories.model import SEVERITIES
from patchd.exposure.model import ExposureRow, Status

COLUMNS = (
    "account",
    "customer",
    "host",
    "path",
    "cms",
    "component",
    "version",
    "advisory",
    "cve",
    "title",
    "severity",
    "fixed_in",
    "status",
    "source",
)
CUSTOMER_COLUMNS = (
    "customer",
    "installations",
    "exposed_installations",
    "exposed",
    "mitigated",
    "unknown",
    "advisories",
)
TREND_COLUMNS = (
    "scan",
    "scan_date",
    "installations",
    "exposed_installations",
    "exposed_customers",
    "mitigated",
    "unknown",
    "advisories",
)


def filter_rows(
    rows: Iterable[ExposureRow],
    *,
    cms: Sequence[str] = (),
    severity: str | None = None,
    status: Sequence[str] = (),
) -> list[ExposureRow]:
    """Rows of the CMSs ``cms``, at least ``severity``, with a status in ``status``
    (empty: no filter)."""
    floor = SEVERITIES.index(severity) if severity else 0
    want_cms = {c.lower() for c in cms}
    if not floor and not want_cms and not status:
        return list(rows)
    return [
        r
        for r in rows
        if (not want_cms or r.cms.lower() in want_cms)
        and SEVERITIES.index(r.severity if r.severity in SEVERITIES else "unknown") >= floor
        and (not status or r.status.value in status)
    ]


def table_row(r: ExposureRow) -> dict[str, Any]:
    """A row for table and CSV (CVE ids joined); JSON uses :meth:`ExposureRow.to_json`."""
    data = r.to_json()
    data["cve"] = ", ".join(r.cve)
    data["version"] = r.version or "unknown"
    data["fixed_in"] = r.fixed_in or ""
    data["detail"] = r.detail or ""
    return data


def by_customer(rows: Iterable[ExposureRow]) -> list[dict[str, Any]]:
    """One row per customer: installations named, how many exposed, counts per status."""
    groups: dict[str, list[ExposureRow]] = defaultdict(list)
    for r in rows:
        groups[r.customer or f"(account {r.account})"].append(r)
    out = []
    for customer in sorted(groups):
        mine = groups[customer]
        counts = {s.value: sum(1 for r in mine if r.status is s) for s in Status}
        out.append(
            {
                "customer": customer,
                "installations": len({(r.account, r.host, r.path) for r in mine}),
                "exposed_installations": len(
                    {(r.account, r.host, r.path) for r in mine if r.status is Status.EXPOSED}
                ),
                **counts,
                "advisories": len({(r.source, r.advisory) for r in mine}),
            }
        )
    return out


def sort_rows(rows: Iterable[ExposureRow]) -> list[ExposureRow]:
    """Most severe first, then by customer, account, path, component, advisory."""
    return sorted(
        rows,
        key=lambda r: (
            -SEVERITIES.index(r.severity if r.severity in SEVERITIES else "unknown"),
            r.customer or "",
            r.account,
            r.path,
            r.component,
            r.advisory,
        ),
    )
