"""Scans: dated snapshots of the installations found in every account, and their diffs."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from pydantic import TypeAdapter

from patchd.errors import LedgerError
from patchd.ledger.db import Ledger, utc_now
from patchd.ledger.models import (
    InstallationKey,
    InstallationRecord,
    Scan,
    ScanDiff,
    ScanErrorRow,
    ScanInstallation,
    ScanStatus,
    VersionChange,
)

_BATCH = 5_000
_SCAN_COLUMNS = (
    "s.*, "
    "(SELECT COUNT(*) FROM scan_installations i WHERE i.scan_id = s.id) AS installations, "
    "(SELECT COUNT(*) FROM scan_errors e WHERE e.scan_id = s.id) AS errors"
)
_INSERT = (
    "INSERT INTO scan_installations (scan_id, account, host, path, cms, version, "
    "version_error, extensions, php, php_source, modified_files, facts, patched_files) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    # NOTE: the same installation reported twice in one scan is one installation; the
    # last report wins rather than failing a scan of thousands of accounts.
    "ON CONFLICT (scan_id, account, host, path, cms) DO UPDATE SET "
    "version = excluded.version, version_error = excluded.version_error, "
    "extensions = excluded.extensions, php = excluded.php, php_source = excluded.php_source, "
    "modified_files = excluded.modified_files, facts = excluded.facts, "
    "patched_files = excluded.patched_files"
)


# NOTE: ensure_ascii (the default) keeps surrogate-escaped file names representable. One
# encoder for all rows: json.dumps with options builds a new one per call.
_ENCODE = json.JSONEncoder(sort_keys=True, separators=(",", ":")).encode


def _json(value: Any) -> str:
    if not value:
        return "{}" if isinstance(value, dict) else "[]"
    return _ENCODE(value)


def _unjson(text: str) -> Any:
    if text == "[]":
        return []
    return {} if text == "{}" else json.loads(text)


_INSTALLATIONS = TypeAdapter(list[ScanInstallation])


def start_scan(ledger: Ledger, *, inventory_path: str, inventory_sha256: str, accounts: int) -> int:
    """Record the start of a scan of ``accounts`` accounts; return its id."""
    return ledger.insert(
        "INSERT INTO scans (started_at, inventory_path, inventory_sha256, accounts, status) "
        "VALUES (?, ?, ?, ?, ?)",
        (utc_now(), inventory_path, inventory_sha256, accounts, ScanStatus.RUNNING.value),
    )


def _params(scan_id: int, rec: InstallationRecord) -> tuple[Any, ...]:
    return (
        scan_id,
        rec.account,
        rec.host,
        rec.path,
        rec.cms,
        rec.version,
        rec.version_error,
        _json([{"kind": e.kind, "name": e.name, "version": e.version} for e in rec.extensions]),
        rec.php,
        rec.php_source,
        _json(list(rec.modified_files)),
        _json(rec.facts),
        _json([{"path": p.path, "bundle": p.bundle} for p in rec.patched_files]),
    )


def add_installations(
    ledger: Ledger, scan_id: int, rows: Iterable[InstallationRecord | Mapping[str, Any]]
) -> int:
    """Store ``rows`` (records or mappings validated as records) for ``scan_id``.

    Inserted in batches with ``executemany``, all in one transaction; returns the count.
    """
    get_scan(ledger, scan_id)
    count = 0
    with ledger.transaction():
        batch: list[tuple[Any, ...]] = []
        for row in rows:
            rec = row if isinstance(row, InstallationRecord) else InstallationRecord(**row)
            batch.append(_params(scan_id, rec))
            if len(batch) >= _BATCH:
                ledger.executemany(_INSERT, batch)
                count += len(batch)
                batch = []
        if batch:
            ledger.executemany(_INSERT, batch)
            count += len(batch)
    return count


def add_scan_error(
    ledger: Ledger,
    scan_id: int,
    *,
    host: str,
    account: str | None,
    message: str,
    kind: str | None = None,
) -> None:
    """Record that ``host`` (or one ``account`` on it) could not be scanned."""
    ledger.insert(
        "INSERT INTO scan_errors (scan_id, host, account, message, kind) VALUES (?, ?, ?, ?, ?)",
        (scan_id, host, account, message, kind or ("host" if account is None else "account")),
    )


def finish_scan(ledger: Ledger, scan_id: int, status: ScanStatus = ScanStatus.FINISHED) -> None:
    """Mark a scan as ended with ``status``."""
    status = ScanStatus(status)
    if status is ScanStatus.RUNNING:
        raise ValueError("finish_scan needs an end status")
    changed = ledger.execute(
        "UPDATE scans SET finished_at = ?, status = ? WHERE id = ?",
        (utc_now(), status.value, scan_id),
    )
    if not changed:
        raise LedgerError(f"no scan {scan_id}", where=ledger.where)


def list_scans(ledger: Ledger) -> list[Scan]:
    """Every scan, oldest first, with its installation and error counts."""
    rows = ledger.query(f"SELECT {_SCAN_COLUMNS} FROM scans s ORDER BY s.id")
    return [Scan.model_validate(r) for r in rows]


def get_scan(ledger: Ledger, scan_id: int) -> Scan:
    """The scan ``scan_id``; LedgerError ``no scan N`` when there is none."""
    row = ledger.query_one(f"SELECT {_SCAN_COLUMNS} FROM scans s WHERE s.id = ?", (scan_id,))
    if row is None:
        raise LedgerError(f"no scan {scan_id}", where=ledger.where)
    return Scan.model_validate(row)


def latest_scan(ledger: Ledger, *, finished_only: bool = True) -> Scan | None:
    """The newest (by default: newest finished) scan, or None."""
    cond = "WHERE s.status = 'finished'" if finished_only else ""
    row = ledger.query_one(f"SELECT {_SCAN_COLUMNS} FROM scans s {cond} ORDER BY s.id DESC LIMIT 1")
    return Scan.model_validate(row) if row else None


def _prepare(row: dict[str, Any], with_extensions: bool = True) -> dict[str, Any]:
    del row["id"]
    for key in ("modified_files", "facts", "patched_files"):
        if key in row:
            row[key] = _unjson(row[key])
    row["extensions"] = _unjson(row["extensions"]) if with_extensions else []
    return row


def scan_installations(
    ledger: Ledger,
    scan_id: int,
    *,
    account: str | None = None,
    cms: str | None = None,
) -> list[ScanInstallation]:
    """The installations of a scan, optionally of one account and/or one CMS."""
    get_scan(ledger, scan_id)
    sql = "SELECT * FROM scan_installations WHERE scan_id = ?"
    params: list[Any] = [scan_id]
    if account is not None:
        sql += " AND account = ?"
        params.append(account)
    if cms is not None:
        sql += " AND cms = ?"
        params.append(cms)
    sql += " ORDER BY host, account, path, cms"
    # NOTE: one TypeAdapter call validates the whole list in pydantic-core (faster).
    rows = ledger.query(sql, params)
    return _INSTALLATIONS.validate_python([_prepare(r) for r in rows])


def _pages(ledger: Ledger, scan_id: int, columns: str, page: int) -> Iterator[list[dict[str, Any]]]:
    """The rows (``columns``) of a scan's installations ordered by account, host, path
    and CMS, ``page`` rows at a time (keyset paging on the unique index)."""
    get_scan(ledger, scan_id)
    base = f"SELECT {columns} FROM scan_installations WHERE scan_id = ?"
    order = " ORDER BY account, host, path, cms LIMIT ?"
    after: tuple[str, str, str, str] | None = None
    while True:
        if after is None:
            rows = ledger.query(base + order, (scan_id, page))
        else:
            # NOTE: keyset paging on the (scan_id, account, host, path, cms) unique index
            rows = ledger.query(
                base + " AND (account, host, path, cms) > (?, ?, ?, ?)" + order,
                (scan_id, *after, page),
            )
        if not rows:
            return
        last = rows[-1]
        after = (last["account"], last["host"], last["path"], last["cms"])
        yield rows
        if len(rows) < page:
            return


def iter_scan_installations(
    ledger: Ledger, scan_id: int, *, with_extensions: bool = True, page: int = 1000
) -> Iterator[ScanInstallation]:
    """The installations of a scan ordered by account, host, path and CMS, read and
    validated ``page`` rows at a time; ``with_extensions=False`` leaves ``extensions``
    empty (their models are most of the read's cost)."""
    for rows in _pages(ledger, scan_id, "*", page):
        yield from _INSTALLATIONS.validate_python([_prepare(r, with_extensions) for r in rows])


class ExtensionRow(NamedTuple):
    """What matching reads of an installation's extension."""

    name: str
    version: str | None


@dataclass(frozen=True, slots=True)
class MatchRow:
    """What matching reads of one stored installation (the fields
    :func:`patchd.rollout.match.match_installation` and the rollout use).

    NOTE: a slotted dataclass straight from the ledger's row, not a validated
    :class:`ScanInstallation`: the rows were validated when the scan stored them, and
    50,000 models per rollout cost ~4 KB and ~10 us each.
    """

    account: str
    host: str
    path: str
    cms: str
    version: str | None
    version_error: str | None
    php: str | None
    facts_json: str  # see :attr:`facts`
    extensions: tuple[ExtensionRow, ...] = ()

    @property
    def facts(self) -> dict[str, Any]:
        """The detector's facts, parsed when asked (matching reads them for few rows)."""
        facts: dict[str, Any] = _unjson(self.facts_json)
        return facts


_MATCH_COLUMNS = "account, host, path, cms, version, version_error, php, facts"


def iter_match_rows(
    ledger: Ledger, scan_id: int, *, with_extensions: bool = True, page: int = 1000
) -> Iterator[MatchRow]:
    """The installations of a scan as :class:`MatchRow`, in :func:`iter_scan_installations`
    order, ``page`` rows at a time; ``with_extensions=False`` leaves ``extensions`` empty
    (a core bundle's match never looks at them)."""
    columns = _MATCH_COLUMNS + (", extensions" if with_extensions else "")
    for rows in _pages(ledger, scan_id, columns, page):
        for r in rows:
            extensions: tuple[ExtensionRow, ...] = ()
            if with_extensions and r["extensions"] != "[]":
                extensions = tuple(
                    ExtensionRow(e["name"], e.get("version")) for e in json.loads(r["extensions"])
                )
            yield MatchRow(
                r["account"],
                r["host"],
                r["path"],
                r["cms"],
                r["version"],
                r["version_error"],
                r["php"],
                r["facts"],
                extensions,
            )


def match_rows_of(
    records: Iterable[InstallationRecord], *, with_extensions: bool = True
) -> list[MatchRow]:
    """The :class:`MatchRow` of records just stored (a streamed rollout matches a scan batch
    as it arrives), as :func:`iter_match_rows` reads them back, in its order."""
    rows = [
        MatchRow(
            r.account,
            r.host,
            r.path,
            r.cms,
            r.version,
            r.version_error,
            r.php,
            _json(r.facts),
            tuple(ExtensionRow(e.name, e.version) for e in r.extensions) if with_extensions else (),
        )
        for r in records
    ]
    rows.sort(key=lambda m: (m.account, m.host, m.path, m.cms))
    return rows


def scan_errors(ledger: Ledger, scan_id: int) -> list[ScanErrorRow]:
    """The errors recorded for a scan."""
    get_scan(ledger, scan_id)
    rows = ledger.query(
        "SELECT scan_id, host, account, message, kind FROM scan_errors WHERE scan_id = ? "
        "ORDER BY id",
        (scan_id,),
    )
    return [ScanErrorRow.model_validate(r) for r in rows]


def diff_scans(ledger: Ledger, a: int, b: int) -> ScanDiff:
    """What changed from scan ``a`` to scan ``b``, keyed on (account, host, path, cms)."""
    old: dict[InstallationKey, ScanInstallation] = {i.key: i for i in scan_installations(ledger, a)}
    new: dict[InstallationKey, ScanInstallation] = {i.key: i for i in scan_installations(ledger, b)}
    added = tuple(new[k] for k in new if k not in old)
    removed = tuple(old[k] for k in old if k not in new)
    updated: list[VersionChange] = []
    unchanged = 0
    for key, after in new.items():
        before = old.get(key)
        if before is None:
            continue
        if before.version != after.version:
            updated.append(
                VersionChange(
                    **key._asdict(), old_version=before.version, new_version=after.version
                )
            )
        else:
            unchanged += 1
    return ScanDiff(
        a=a, b=b, added=added, removed=removed, updated=tuple(updated), unchanged_count=unchanged
    )
