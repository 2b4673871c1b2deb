"""Advisories in the ledger: imported per source, updated in place on re-import."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pydantic import TypeAdapter

from patchd.advisories.model import Advisory, SpanModel, Target
from patchd.advisories.sources import SourceRead
from patchd.ledger.db import Ledger, utc_now

_SPANS = TypeAdapter(tuple[SpanModel, ...])
_COLUMNS = (
    "source, advisory_id, package, cms, component, kind, title, link, cve, aliases, "
    "severity, affected"
)


@dataclass(frozen=True)
class ImportCounts:
    """What one import changed in the ledger."""

    source_id: int
    added: int
    updated: int
    unchanged: int
    removed: int
    unmapped: int


@dataclass(frozen=True)
class SourceRow:
    """An imported source, its revision and date."""

    id: int
    kind: str
    location: str
    revision: str
    revision_date: str | None
    imported_at: str
    advisories: int


def _values(a: Advisory) -> tuple[Any, ...]:
    t = a.target
    return (
        a.source,
        a.advisory_id,
        a.package,
        t.cms if t else None,
        t.component if t else None,
        t.kind if t else None,
        a.title,
        a.link,
        json.dumps(list(a.cve)),
        json.dumps(list(a.aliases)),
        a.severity,
        _SPANS.dump_json(a.affected).decode(),
    )


def store_source(ledger: Ledger, read: SourceRead) -> ImportCounts:
    """Store the advisories of ``read``: new ones are added, changed ones updated in place
    (same source, id and package), ones the source no longer has are removed."""
    now = utc_now()
    with ledger.transaction():
        row = ledger.query_one(
            "SELECT id FROM advisory_sources WHERE kind = ? AND location = ?",
            (read.kind, read.location),
        )
        if row is None:
            source_id = ledger.insert(
                "INSERT INTO advisory_sources (kind, location, revision, revision_date, "
                "imported_at) VALUES (?, ?, ?, ?, ?)",
                (read.kind, read.location, read.revision, read.date, now),
            )
        else:
            source_id = row["id"]
        have = {
            (r["source"], r["advisory_id"], r["package"]): (r["id"], r["source_id"], r)
            for r in ledger.query(
                f"SELECT id, source_id, {_COLUMNS} FROM advisories WHERE source = ?",
                (read.kind,),
            )
        }
        added = updated = unchanged = 0
        seen: set[int] = set()
        for a in _unique(read.advisories):
            values = _values(a)
            key = values[:3]
            old = have.get(key)
            if old is None:
                seen.add(
                    ledger.insert(
                        f"INSERT INTO advisories (source_id, {_COLUMNS}, revision, imported_at, "
                        "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (source_id, *values, read.revision, now, now),
                    )
                )
                added += 1
                continue
            row_id, _, stored = old
            seen.add(row_id)
            if tuple(stored[c] for c in _COLUMNS.split(", ")) == values:
                ledger.execute(
                    "UPDATE advisories SET source_id = ?, revision = ? WHERE id = ?",
                    (source_id, read.revision, row_id),
                )
                unchanged += 1
                continue
            ledger.execute(
                "UPDATE advisories SET source_id = ?, cms = ?, component = ?, kind = ?, "
                "title = ?, link = ?, cve = ?, aliases = ?, severity = ?, affected = ?, "
                "revision = ?, updated_at = ? WHERE id = ?",
                (source_id, *values[3:], read.revision, now, row_id),
            )
            updated += 1
        gone = [i for i, src, _ in have.values() if src == source_id and i not in seen]
        ledger.executemany("DELETE FROM advisories WHERE id = ?", ((i,) for i in gone))
        ledger.execute(
            "UPDATE advisory_sources SET revision = ?, revision_date = ?, imported_at = ? "
            "WHERE id = ?",
            (read.revision, read.date, now, source_id),
        )
        # NOTE: advisories a source at another location had (a moved checkout) now
        # belong to this one; a source left with none is forgotten.
        ledger.execute(
            "UPDATE advisory_sources SET advisories = "
            "(SELECT COUNT(*) FROM advisories a WHERE a.source_id = advisory_sources.id)"
        )
        ledger.execute(
            "DELETE FROM advisory_sources WHERE advisories = 0 AND id != ?", (source_id,)
        )
    unmapped = sum(1 for a in read.advisories if a.target is None)
    return ImportCounts(source_id, added, updated, unchanged, len(gone), unmapped)


def _unique(advisories: Iterable[Advisory]) -> list[Advisory]:
    """One advisory per (source, id, package): the last read wins."""
    out: dict[tuple[str, str, str], Advisory] = {}
    for a in advisories:
        out[(a.source, a.advisory_id, a.package)] = a
    return list(out.values())


def list_sources(ledger: Ledger) -> list[SourceRow]:
    """Every imported source, oldest first."""
    return [SourceRow(**r) for r in ledger.query("SELECT * FROM advisory_sources ORDER BY id")]


def load_advisories(ledger: Ledger, *, mapped_only: bool = True) -> list[Advisory]:
    """The stored advisories (by default only those whose package patchd knows)."""
    where = " WHERE cms IS NOT NULL" if mapped_only else ""
    out: list[Advisory] = []
    for r in ledger.query(f"SELECT id, {_COLUMNS} FROM advisories{where} ORDER BY id"):
        target = (
            Target(cms=r["cms"], component=r["component"], kind=r["kind"]) if r["cms"] else None
        )
        out.append(
            Advisory.model_construct(
                source=r["source"],
                advisory_id=r["advisory_id"],
                package=r["package"],
                target=target,
                title=r["title"],
                link=r["link"],
                cve=tuple(json.loads(r["cve"])),
                aliases=tuple(json.loads(r["aliases"])),
                severity=r["severity"],
                affected=_SPANS.validate_json(r["affected"]),
                row_id=r["id"],
            )
        )
    return out


def count_advisories(ledger: Ledger) -> int:
    row = ledger.query_one("SELECT COUNT(*) AS n FROM advisories WHERE cms IS NOT NULL")
    return int(row["n"]) if row else 0
