"""The error hierarchy of patchd.

Every error a user can cause (bad input, unreachable host, refused archive member) is a
:class:`PatchdError`; the CLI prints it as one labelled line and exits with code 2 (input)
or 1 (targets failed). Anything else is a bug and is reported with a traceback.

NOTE: this module is stdlib-only; it is shipped to remote hosts with the agent.
"""

from __future__ import annotations


class PatchdError(Exception):
    """Root of every expected patchd error. ``where`` says which input is at fault."""

    exit_code: int = 2

    def __init__(self, message: str, *, where: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.where = where

    def __str__(self) -> str:
        return f"{self.where}: {self.message}" if self.where else self.message


class UsageError(PatchdError):
    """The command line or a combination of options is wrong."""


class DiffParseError(PatchdError):
    """A unified diff is malformed; names the line (1-based) and shows it."""

    def __init__(
        self,
        message: str,
        *,
        line_no: int | None = None,
        line: bytes | None = None,
        source: str = "diff",
    ) -> None:
        where = f"{source} line {line_no}" if line_no is not None else source
        if line is not None:
            message = f"{message}: {line[:120]!r}"
        super().__init__(message, where=where)
        self.line_no = line_no
        self.line = line


class UnsupportedDiffError(DiffParseError):
    """A diff uses a feature patchd refuses (binary, rename, mode change, ...)."""


class UnsafePathError(PatchdError):
    """A path would leave its root (absolute, ``..``, symlink, hardlink, not a regular file)."""


class ArchiveError(PatchdError):
    """A release archive is malformed or hostile; names the archive and the member."""

    def __init__(self, message: str, *, archive: str, member: str | None = None) -> None:
        where = f"{archive}: member {member!r}" if member is not None else archive
        super().__init__(message, where=where)
        self.archive = archive
        self.member = member


class InventoryError(PatchdError):
    """``accounts.yaml`` is malformed; names the account (or host) and the field."""


class BundleError(PatchdError):
    """A patch bundle is malformed, or its digest does not match its diffs."""


class LedgerError(PatchdError):
    """The ledger database is unusable or a run/scan id does not exist."""


class TransportError(PatchdError):
    """A host could not be reached, refused login, or dropped the connection."""

    def __init__(self, message: str, *, host: str) -> None:
        super().__init__(message, where=f"host {host}")
        self.host = host


class AdvisoryError(PatchdError):
    """An advisory source (FriendsOfPHP checkout, OSV file) cannot be read."""
