"""The results the patcher hands back (frozen, JSON-ready for the agent protocol).

File names inside results are ``str`` with ``surrogateescape``; :meth:`to_json` carries them
as raw bytes in base64 next to an escaped display form, so nothing is lost and nothing
unprintable reaches a log. Details are already escaped (see :func:`patchd.patcher.names.show`).

NOTE: stdlib-only.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any, Literal

from patchd.outcomes import Outcome, Reason
from patchd.patcher.names import show

DryRunStatus = Literal["applicable", "already-patched", "failed"]
RestoreStatus = Literal["restored", "unchanged", "conflict", "failed"]


def path_json(rel: str) -> dict[str, str]:
    """A file name as JSON: ``{"path": escaped display form, "path_b64": raw bytes}``."""
    raw = rel.encode("utf-8", "surrogateescape")
    return {"path": show(rel), "path_b64": base64.b64encode(raw).decode("ascii")}


def path_from_json(obj: dict[str, Any]) -> str:
    """The inverse of :func:`path_json`."""
    return base64.b64decode(obj["path_b64"]).decode("utf-8", "surrogateescape")


@dataclass(frozen=True)
class FilePlan:
    """One file of a planned apply. ``rel`` is relative to the installation.

    ``pre_sha256`` is None for a file the patch creates; ``post_sha256`` and ``new_bytes``
    are None for a file it deletes. ``mode``/``uid``/``gid`` are the original's (for a new
    file: what it will get).
    """

    rel: str
    pre_sha256: str | None
    post_sha256: str | None
    new_bytes: bytes | None
    mode: int
    uid: int
    gid: int

    def to_json(self, *, with_content: bool = False) -> dict[str, Any]:
        """JSON form; the new content only when asked (it can be large)."""
        obj: dict[str, Any] = {
            **path_json(self.rel),
            "pre_sha256": self.pre_sha256,
            "post_sha256": self.post_sha256,
            "mode": self.mode,
            "uid": self.uid,
            "gid": self.gid,
        }
        if with_content and self.new_bytes is not None:
            obj["new_bytes_b64"] = base64.b64encode(self.new_bytes).decode("ascii")
        return obj


@dataclass(frozen=True)
class DryRunResult:
    """The verdict of a dry run on one installation.

    ``status`` says whether the patch can be applied; ``outcome`` is the Outcomes word
    when the dry run already decides the installation's outcome (``already-patched``,
    ``dry-run-failed``) and None when it is applicable (the outcome comes from apply).
    """

    status: DryRunStatus
    outcome: Outcome | None
    reason: Reason | None
    detail: str
    files: tuple[FilePlan, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """A JSON-safe form."""
        return {
            "status": self.status,
            "outcome": None if self.outcome is None else str(self.outcome),
            "reason": None if self.reason is None else str(self.reason),
            "detail": self.detail,
            "files": [f.to_json() for f in self.files],
        }


@dataclass(frozen=True)
class ApplyResult:
    """The outcome of applying one installation: ``patched``, ``already-patched``,
    ``dry-run-failed`` (with a reason) or ``apply-failed`` (restored to its prior state).

    ``journal`` is the journal folder in the backup store (None when nothing was written);
    rollback takes it.
    """

    outcome: Outcome
    reason: Reason | None
    detail: str
    journal: str | None = None
    files: tuple[FilePlan, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """A JSON-safe form."""
        return {
            "outcome": str(self.outcome),
            "reason": None if self.reason is None else str(self.reason),
            "detail": self.detail,
            "journal": self.journal,
            "files": [f.to_json() for f in self.files],
        }


@dataclass(frozen=True)
class FileRestore:
    """What happened to one file when putting an installation back."""

    rel: str
    status: RestoreStatus
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        """A JSON-safe form."""
        return {**path_json(self.rel), "status": self.status, "detail": self.detail}


@dataclass(frozen=True)
class RollbackResult:
    """Rollback of one installation; ``ok`` when every file is back at its pre-image."""

    ok: bool
    journal: str
    detail: str
    files: tuple[FileRestore, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """A JSON-safe form."""
        return {
            "ok": self.ok,
            "journal": self.journal,
            "detail": self.detail,
            "files": [f.to_json() for f in self.files],
        }


@dataclass(frozen=True)
class RecoveryResult:
    """Recovery of one interrupted apply found in the backup store."""

    journal: str
    root: str
    inst: str
    run_id: str
    ok: bool
    detail: str
    files: tuple[FileRestore, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """A JSON-safe form."""
        return {
            "journal": self.journal,
            "root": self.root,
            **_inst_json(self.inst),
            "run_id": self.run_id,
            "ok": self.ok,
            "detail": self.detail,
            "files": [f.to_json() for f in self.files],
        }


def _inst_json(inst: str) -> dict[str, str]:
    obj = path_json(inst)
    return {"inst": obj["path"], "inst_b64": obj["path_b64"]}
