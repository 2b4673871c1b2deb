"""Releases: the per-file checksums of known CMS releases (to spot customer-modified files).

A release, once registered, is immutable: registering the same CMS and version again with
the same files is a no-op, with different checksums an error (one of the two archives is
not what its name says).
"""

from __future__ import annotations

from collections.abc import Iterable

from patchd.errors import LedgerError
from patchd.ledger.db import Ledger, utc_now
from patchd.ledger.models import Release

ReleaseFile = tuple[str, str, int]
"""(path relative to the release root, sha256 hex, size in bytes)."""


def register_release(
    ledger: Ledger, cms: str, version: str, source: str, files: Iterable[ReleaseFile]
) -> int:
    """Register the files of ``cms`` ``version`` (read from ``source``); return its id.

    Raises :class:`LedgerError` when the release is already registered with other files
    or checksums, or when ``files`` names one path twice.
    """
    entries: dict[str, tuple[str, int]] = {}
    for path, sha256, size in files:
        if path in entries:
            raise LedgerError(
                f"release {cms} {version}: file {path!r} listed twice", where=ledger.where
            )
        entries[path] = (sha256.lower(), int(size))
    with ledger.transaction():
        row = ledger.query_one(
            "SELECT id FROM releases WHERE cms = ? AND version = ?", (cms, version)
        )
        if row is not None:
            existing = {
                r["path"]: (r["sha256"], r["size"])
                for r in ledger.query(
                    "SELECT path, sha256, size FROM release_files WHERE release_id = ?",
                    (row["id"],),
                )
            }
            if existing != entries:
                differing = sorted(set(existing.items()) ^ set(entries.items()))
                first = differing[0][0] if differing else "?"
                raise LedgerError(
                    f"release {cms} {version} is already registered with different files "
                    f"({len({p for p, _ in differing})} differ, e.g. {first!r})",
                    where=ledger.where,
                )
            return int(row["id"])
        release_id = ledger.insert(
            "INSERT INTO releases (cms, version, source, registered_at) VALUES (?, ?, ?, ?)",
            (cms, version, source, utc_now()),
        )
        ledger.executemany(
            "INSERT INTO release_files (release_id, path, sha256, size) VALUES (?, ?, ?, ?)",
            ((release_id, p, s, n) for p, (s, n) in entries.items()),
        )
        return release_id


def get_release(ledger: Ledger, cms: str, version: str) -> Release | None:
    """The registered release ``cms`` ``version``, or None."""
    row = ledger.query_one("SELECT * FROM releases WHERE cms = ? AND version = ?", (cms, version))
    return Release.model_validate(row) if row else None


def list_releases(ledger: Ledger, cms: str | None = None) -> list[Release]:
    """Registered releases (of one CMS), by CMS then registration order."""
    if cms is None:
        rows = ledger.query("SELECT * FROM releases ORDER BY cms, id")
    else:
        rows = ledger.query("SELECT * FROM releases WHERE cms = ? ORDER BY id", (cms,))
    return [Release.model_validate(r) for r in rows]


def release_checksums(ledger: Ledger, cms: str, version: str) -> dict[str, str] | None:
    """path -> sha256 of every file of ``cms`` ``version``; None when not registered."""
    release = get_release(ledger, cms, version)
    if release is None:
        return None
    rows = ledger.query(
        "SELECT path, sha256 FROM release_files WHERE release_id = ? ORDER BY path",
        (release.id,),
    )
    return {r["path"]: r["sha256"] for r in rows}
