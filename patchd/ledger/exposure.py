"""Exposure per scan in the ledger: the rows, a summary per scan (the trend), and the
exposure emails (never twice per scan and customer)."""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from patchd.exposure.model import ExposureRow, Status
from patchd.ledger.db import Ledger, utc_now


@dataclass(frozen=True, slots=True)
class Installed:
    """What exposure reads of one stored installation (no pydantic: 50,000 of them)."""

    id: int
    account: str
    host: str
    path: str
    cms: str
    version: str | None
    extensions: tuple[tuple[str, str, str | None], ...]  # (name, kind, version)
    modified_files: tuple[str, ...]
    patched_files: tuple[tuple[str, str], ...]  # (path, bundle)
    core_path: str  # where a rollout records it: a classic TYPO3 site's source folder


def iter_installed(ledger: Ledger, scan_id: int, page: int = 2000) -> Iterator[Installed]:
    """The installations of ``scan_id``, a page of rows at a time."""
    last = 0
    while True:
        rows = ledger.query(
            "SELECT id, account, host, path, cms, version, extensions, modified_files, "
            "patched_files, facts FROM scan_installations WHERE scan_id = ? AND id > ? "
            "ORDER BY id LIMIT ?",
            (scan_id, last, page),
        )
        if not rows:
            return
        for r in rows:
            yield Installed(
                r["id"],
                r["account"],
                r["host"],
                r["path"],
                r["cms"],
                r["version"],
                tuple(
                    (e["name"], e.get("kind") or "extension", e.get("version"))
                    for e in _loads(r["extensions"])
                ),
                tuple(_loads(r["modified_files"])),
                tuple((p["path"], p["bundle"]) for p in _loads(r["patched_files"])),
                _core_path(r["cms"], r["path"], r["facts"]),
            )
        last = rows[-1]["id"]


def _core_path(cms: str, path: str, facts: str) -> str:
    if cms != "typo3" or facts == "{}":
        return path
    from patchd.rollout.match import source_folder_of

    return source_folder_of(cms, path, json.loads(facts))[0]


def _loads(text: str) -> list[Any]:
    return [] if text == "[]" else json.loads(text)


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
    packed = _pack(kept)
    with ledger.transaction():
        ledger.execute("DELETE FROM exposure_scans WHERE scan_id = ?", (scan_id,))
        ledger.execute(
            "INSERT INTO exposure_scans (scan_id, computed_at, scan_date, advisories, summary, "
            "rows) VALUES (?, ?, ?, ?, ?, ?)",
            (
                scan_id,
                utc_now(),
                scan_date,
                advisories,
                json.dumps(summary, sort_keys=True),
                packed,
            ),
        )
    return kept


_PAGE = 5000


def _pack(rows: list[ExposureRow]) -> bytes:
    """The rows as zlib-compressed lines, each a JSON array of up to ``_PAGE`` rows.

    NOTE: ensure_ascii (the default) writes undecodable bytes of file names (lone
    surrogates) as escapes that json.loads turns back into the same string; a status is
    a str enum and is written as its word.
    """
    packer = zlib.compressobj(6)
    parts: list[bytes] = []
    for start in range(0, len(rows), _PAGE):
        page = [
            [
                r.installation,
                r.customer,
                r.component,
                r.version,
                r.ref,
                r.status,
                r.severity,
                r.fixed_in,
                r.detail,
            ]
            for r in rows[start : start + _PAGE]
        ]
        line = json.dumps(page, separators=(",", ":")) + "\n"
        parts.append(packer.compress(line.encode("ascii")))
    parts.append(packer.flush())
    return b"".join(parts)


def _unpack(blob: bytes) -> Iterator[list[Any]]:
    for line in zlib.decompress(blob).split(b"\n"):
        if line:
            yield from json.loads(line)


def load_exposure(ledger: Ledger, scan_id: int) -> list[ExposureRow]:
    """The stored rows of ``scan_id``, with the advisories' current titles and CVEs (an
    advisory since removed from its source keeps its row, named ``removed-N``).

    NOTE: installations and advisories are read once and shared by their rows: a fleet's
    exposure is hundreds of thousands of rows.
    """
    row = ledger.query_one("SELECT rows FROM exposure_scans WHERE scan_id = ?", (scan_id,))
    if row is None:
        return []
    blob = row["rows"]
    if isinstance(blob, str):  # NOTE: the ledger hands bytes back surrogate-escaped
        blob = blob.encode("utf-8", "surrogateescape")
    places = {
        r["id"]: (r["account"], r["host"], r["path"], r["cms"])
        for r in ledger.query(
            "SELECT id, account, host, path, cms FROM scan_installations WHERE scan_id = ?",
            (scan_id,),
        )
    }
    advisories: dict[int, tuple[str, str, str, tuple[str, ...], str, str | None]] = {}
    for r in ledger.query(
        "SELECT id, source, advisory_id, package, title, cve, link FROM advisories"
    ):
        cve = tuple(json.loads(r["cve"]))
        advisories[r["id"]] = (
            r["advisory_id"],
            r["source"],
            r["package"],
            cve,
            r["title"],
            r["link"],
        )
    out: list[ExposureRow] = []
    for inst, customer, component, version, ref, status, severity, fixed, detail in _unpack(blob):
        account, host, path, cms = places[inst]
        removed = f"removed-{ref}"
        advisory, source, package, cve, title, link = advisories.get(
            ref, (removed, "", "", (), removed, None)
        )
        out.append(
            ExposureRow(
                account,
                customer,
                host,
                path,
                cms,
                component,
                version,
                advisory,
                cve,
                title,
                severity,
                fixed,
                Status(status),
                source,
                package,
                link,
                detail,
                inst,
                ref,
            )
        )
    return out


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
