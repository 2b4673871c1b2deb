"""How commands name runs and bundles: ``RUN`` (a number or ``latest``) and ``--bundle``
(a bundle folder, or a bundle id found as ``patches/<id>``)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from patchd.errors import UsageError
from patchd.ledger.db import Ledger

LATEST = "latest"
#: Where a bundle named by id is looked for (relative to the working folder).
PATCHES = Path("patches")


def check_known(option: str, given: Iterable[str], known: Iterable[str], source: str) -> None:
    """:class:`UsageError` (exit 2) naming every value of ``option`` not in ``known``.

    NOTE (issue 17): a mistyped account id used to select nothing, silently.
    """
    known_set = set(known)
    unknown = sorted({v for v in given if v not in known_set})
    if unknown:
        raise UsageError(f"{option}: not in {source}: {', '.join(unknown)}")


def run_id_of(ledger: Ledger, value: str) -> int:
    """The run named by ``value``: its number, or ``latest`` (the newest run that wrote;
    the newest dry run when there is none)."""
    if value == LATEST:
        row = ledger.query_one("SELECT id FROM runs WHERE dry_run = 0 ORDER BY id DESC LIMIT 1")
        row = row or ledger.query_one("SELECT id FROM runs ORDER BY id DESC LIMIT 1")
        if row is None:
            raise UsageError("the ledger has no run yet; 'latest' names none")
        return int(row["id"])
    try:
        return int(value)
    except ValueError:
        raise UsageError(f"RUN: expected a run number or 'latest', got {value!r}") from None


def bundle_folder(value: str, *, name: str = "--bundle") -> Path:
    """The bundle folder named by ``value``: a folder as given, else ``patches/<value>``."""
    path = Path(value)
    if path.is_dir():
        return path
    guess = PATCHES / value
    if "/" not in value and guess.is_dir():
        return guess
    raise UsageError(f"{name}: {value!r} is neither a bundle folder nor a bundle id in {PATCHES}/")


def bundle_named(value: str) -> tuple[str, Path | None]:
    """(bundle id, its folder or None) of ``--bundle VALUE`` for commands that read the
    ledger: a folder's id is read from its checked manifest by the caller; an id without a
    folder in ``patches/`` is still a valid name of the ledger's runs."""
    path = Path(value)
    if path.is_dir():
        return "", path
    guess = PATCHES / value
    if "/" not in value and guess.is_dir():
        return value, guess
    if "/" in value:
        raise UsageError(f"--bundle: {value!r}: no such bundle folder")
    return value, None
