"""``patchd advisories import``: read a source (detecting its format) into the ledger."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from patchd.advisories import friendsofphp, osv
from patchd.advisories.mapping import PackageMap
from patchd.advisories.sources import SourceRead
from patchd.errors import AdvisoryError
from patchd.ledger.advisories import ImportCounts, store_source
from patchd.ledger.db import Ledger

SourceFormat = Literal["auto", "friendsofphp", "osv"]


def read_source(path: Path, mapping: PackageMap, fmt: SourceFormat = "auto") -> SourceRead:
    """The advisories of ``path``: a FriendsOfPHP checkout (a folder of
    ``vendor/package/*.yaml``) or OSV JSON (a file or a folder of ``*.json``)."""
    if not path.exists():
        raise AdvisoryError("no such file or folder", where=str(path))
    if fmt == "auto":
        fmt = "friendsofphp" if friendsofphp.is_checkout(path) else "osv"
    if fmt == "friendsofphp":
        return friendsofphp.read_checkout(path, mapping)
    return osv.read_osv(path, mapping)


def import_source(
    ledger: Ledger, path: Path, mapping: PackageMap, fmt: SourceFormat = "auto"
) -> tuple[SourceRead, ImportCounts]:
    """Read ``path`` and store its advisories (re-importing updates them in place)."""
    read = read_source(path, mapping, fmt)
    return read, store_source(ledger, read)
