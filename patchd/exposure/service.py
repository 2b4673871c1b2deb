"""Exposure of a scan, computed (and kept in the ledger) or read back.

A scan's exposure is computed once and stored with the scan; asking again reads it back,
so the trend compares what each scan's day knew. It is computed again when advisories
were imported after it (or when the caller asks): the newest advisories then count.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from patchd.bundle.manifest import Bundle, load_bundle
from patchd.errors import LedgerError, PatchdError
from patchd.exposure.compute import compute_exposure
from patchd.exposure.index import AdvisoryIndex
from patchd.exposure.mitigation import Mitigations
from patchd.exposure.model import ExposureRow
from patchd.ledger import exposure as ledger_exposure
from patchd.ledger import scans as ledger_scans
from patchd.ledger.advisories import load_advisories
from patchd.ledger.db import Ledger
from patchd.ledger.models import Scan

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ScanExposure:
    """One scan's exposure rows and whether they were computed now."""

    scan: Scan
    rows: list[ExposureRow]
    computed: bool


def pick_scan(ledger: Ledger, scan_id: int | None) -> Scan:
    """The scan ``scan_id``, or the newest finished one."""
    if scan_id is not None:
        return ledger_scans.get_scan(ledger, scan_id)
    scan = ledger_scans.latest_scan(ledger)
    if scan is None:
        raise LedgerError("no finished scan: run 'patchd scan' first", where=ledger.where)
    return scan


def load_bundles(folders: Iterable[Path]) -> list[Bundle]:
    """The bundles in ``folders`` (each a bundle, or a folder of bundles); a folder that
    is no valid bundle is left out with a warning."""
    found: list[Bundle] = []
    for folder in folders:
        candidates = [folder] if (folder / "manifest.yaml").is_file() else sorted(folder.iterdir())
        for path in candidates:
            if not (path / "manifest.yaml").is_file():
                continue
            try:
                found.append(load_bundle(path))
            except PatchdError as exc:
                log.warning("bundle %s left out: %s", path, exc)
    return found


def _stale(ledger: Ledger, scan_id: int) -> bool:
    row = ledger.query_one(
        "SELECT (SELECT MAX(imported_at) FROM advisory_sources) > computed_at AS stale "
        "FROM exposure_scans WHERE scan_id = ?",
        (scan_id,),
    )
    return row is None or bool(row["stale"])


def scan_exposure(
    ledger: Ledger,
    scan: Scan,
    *,
    customers: dict[str, str],
    bundles: Iterable[Bundle],
    recompute: bool = False,
) -> ScanExposure:
    """The exposure of ``scan``: stored, or computed and stored (see the module)."""
    if not recompute and not _stale(ledger, scan.id):
        return ScanExposure(scan, ledger_exposure.load_exposure(ledger, scan.id), False)
    advisories = load_advisories(ledger)
    index = AdvisoryIndex(advisories)
    as_of: datetime = scan.finished_at or scan.started_at
    mitigations = Mitigations.load(ledger, bundles, as_of=as_of)
    installations = 0

    def counted():
        nonlocal installations
        for inst in ledger_exposure.iter_installed(ledger, scan.id):
            installations += 1
            yield inst

    rows = list(compute_exposure(counted(), index, mitigations, customers))
    ledger_exposure.store_exposure(
        ledger, scan.id, as_of.isoformat(), index.count, rows, installations
    )
    return ScanExposure(scan, rows, True)
