"""Where the ledger is: one rule for every command (issue 17).

1. ``--ledger FILE`` or ``$PATCHD_LEDGER``: that file. Its folder must exist (a typo in
   the path is an error, never a new folder tree).
2. Else the nearest ``.patchd/ledger.db`` in the current folder or one of its parents,
   the way git finds ``.git``: ``cd accounts/p10001 && patchd report latest`` reads the
   working folder's ledger.
3. Else ``./.patchd/ledger.db``, created there, but only by a command that writes the
   ledger (``scan``, ``rollout``, ``releases add``). A command that only reads (``report``,
   ``runs``, ``scans``, ``notify``, ``rollback`` of a run) never creates a ledger or a
   folder: it stops with exit 2 and says where it looked.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from patchd.errors import UsageError
from patchd.ledger.db import DEFAULT_PATH, ENV_VAR, Ledger, open_ledger


@dataclass(frozen=True)
class LedgerLocation:
    """The ledger a command uses: its file, and how it was chosen."""

    path: Path
    how: str  # "--ledger", "$PATCHD_LEDGER", "found", "default"

    @property
    def explicit(self) -> bool:
        return self.how in ("--ledger", f"${ENV_VAR}")

    def exists(self) -> bool:
        return self.path.is_file()


def locate_ledger(
    given: Path | None, *, from_env: bool = False, cwd: Path | None = None
) -> LedgerLocation:
    """The ledger by the rule of the module docstring. ``given``: ``--ledger``'s value
    (``from_env``: it came from ``$PATCHD_LEDGER``)."""
    if given is None and os.environ.get(ENV_VAR):
        given, from_env = Path(os.environ[ENV_VAR]), True
    if given is not None:
        return LedgerLocation(Path(given).expanduser(), f"${ENV_VAR}" if from_env else "--ledger")
    start = (cwd or Path.cwd()).absolute()
    for folder in (start, *start.parents):
        candidate = folder / DEFAULT_PATH
        if candidate.is_file():
            return LedgerLocation(candidate, "found")
    return LedgerLocation(start / DEFAULT_PATH, "default")


def open_located(location: LedgerLocation, *, write: bool) -> Ledger:
    """Open the ledger at ``location``. A missing ledger is created only when ``write``
    (and, named explicitly, only in a folder that exists); else :class:`UsageError`."""
    path = location.path
    if not location.exists():
        if path.exists():
            raise UsageError(f"ledger {path}: not a file")
        if not write:
            raise UsageError(missing_message(location))
        if location.explicit and not path.parent.is_dir():
            raise UsageError(
                f"ledger {path}: folder {path.parent} does not exist (create it, or give "
                "another --ledger)"
            )
    return open_ledger(path)


def missing_message(location: LedgerLocation) -> str:
    """Why a reading command found no ledger, and what to do."""
    if location.explicit:
        return f"no ledger at {location.path} ({location.how}); nothing was created"
    return (
        f"no ledger: no {DEFAULT_PATH} in {location.path.parent.parent} or a parent folder, "
        f"and no --ledger/${ENV_VAR}; 'patchd scan' or 'patchd rollout' creates one here"
    )


__all__ = ["LedgerLocation", "locate_ledger", "missing_message", "open_located"]
