"""One path per installation in every output: the scan's (issue 17).

A classic TYPO3 site (``html``) keeps its core in the folder its ``typo3_src`` link points
to (``typo3_src-12.4.9``); a rollout patches, records and rolls back that source folder,
so the ledger's results carry its path. Listings, reports and emails show the site's
path from the run's scan instead, with the source folder named in ``detail``:
``... (TYPO3 source folder typo3_src-12.4.9)``. The ledger keeps the source path: it is
what rollback, resume and the merged current state work with.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from patchd.ledger import runs as ledger_runs
from patchd.ledger import scans as ledger_scans
from patchd.ledger.db import Ledger
from patchd.ledger.models import Result
from patchd.rollout.match import source_folder

#: (account, source folder) -> the sites using it (scan paths, sorted).
Sites = dict[tuple[str, str], list[str]]


def sites_of_scan(ledger: Ledger, scan_id: int | None) -> Sites:
    """The classic TYPO3 sites of ``scan_id`` by the source folder a rollout patches."""
    if scan_id is None:
        return {}
    sites: Sites = {}
    for inst in ledger_scans.scan_installations(ledger, scan_id, cms="typo3"):
        source, problem = source_folder(inst)
        if problem is None and source != inst.path:
            sites.setdefault((inst.account, source), []).append(inst.path)
    return {k: sorted(v) for k, v in sites.items()}


def sites_of_run(ledger: Ledger, run_id: int) -> Sites:
    """:func:`sites_of_scan` of the run's scan."""
    return sites_of_scan(ledger, ledger_runs.get_run(ledger, run_id).scan_id)


def _note(source: str, sites: list[str]) -> str:
    shared = f", shared with {', '.join(sites[1:])}" if len(sites) > 1 else ""
    return f"TYPO3 source folder {source}{shared}"


def as_site_row(row: dict[str, Any], sites: Sites) -> dict[str, Any]:
    """A result row (``result_row`` keys) with the site's path (changed in place)."""
    found = sites.get((row["account"], row["path"]))
    if found:
        note = _note(row["path"], found)
        row["path"] = found[0]
        row["detail"] = f"{row['detail']} ({note})" if row.get("detail") else note
    return row


def as_site_rows(rows: Iterable[dict[str, Any]], sites: Sites) -> Iterator[dict[str, Any]]:
    for row in rows:
        yield as_site_row(row, sites)


def as_site_result(result: Result, sites: Sites) -> Result:
    """A stored result shown with its site's path (a copy; the ledger is unchanged)."""
    found = sites.get((result.account, result.path))
    if not found:
        return result
    note = _note(result.path, found)
    detail = f"{result.detail} ({note})" if result.detail else note
    return result.model_copy(update={"path": found[0], "detail": detail})


class RunSites:
    """:func:`sites_of_run` per run, each read once (merged views span runs)."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self._by_run: dict[int, Sites] = {}

    def __call__(self, run_id: int) -> Sites:
        if run_id not in self._by_run:
            self._by_run[run_id] = sites_of_run(self.ledger, run_id)
        return self._by_run[run_id]


__all__ = [
    "RunSites",
    "Sites",
    "as_site_result",
    "as_site_row",
    "as_site_rows",
    "sites_of_run",
    "sites_of_scan",
]
