"""Row models of the ledger (pydantic v2): what goes in, what comes out.

``*Record`` models are what callers hand in; the models without that suffix are rows as
read back (with ids and timestamps). All are frozen and refuse unknown fields.

NOTE: :class:`Outcome` and :class:`Reason` live in the stdlib-only :mod:`patchd.outcomes`
(the agent reports them too); they are re-exported here for the ledger's callers.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, model_validator

from patchd.outcomes import Outcome, Reason

__all__ = [
    "EmailRecord",
    "EmailState",
    "Extension",
    "FileState",
    "InstallationKey",
    "InstallationRecord",
    "Outcome",
    "PatchedFile",
    "Reason",
    "Release",
    "Result",
    "ResultRecord",
    "Run",
    "RunStatus",
    "Scan",
    "ScanDiff",
    "ScanErrorRow",
    "ScanInstallation",
    "ScanStatus",
    "TouchedFile",
    "TouchedFileRecord",
    "VersionChange",
]


class _Row(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ScanStatus(enum.StrEnum):
    """State of a scan."""

    RUNNING = "running"
    FINISHED = "finished"
    FAILED = "failed"
    INTERRUPTED = "interrupted"


class RunStatus(enum.StrEnum):
    """State of a run (``canary-stopped``: the canary batch failed, the rest was not done;
    ``gate-stopped``: the fleet failure gate stopped applying, the rest is ``skipped``
    with reason ``gate`` until the run is continued with ``--continue-past-gate``)."""

    RUNNING = "running"
    FINISHED = "finished"
    INTERRUPTED = "interrupted"
    CANARY_STOPPED = "canary-stopped"
    GATE_STOPPED = "gate-stopped"


class FileState(enum.StrEnum):
    """Where one touched file is in the backup -> replace -> verify (-> restore) sequence."""

    PLANNED = "planned"
    BACKED_UP = "backed-up"
    REPLACED = "replaced"
    VERIFIED = "verified"
    RESTORED = "restored"
    ROLLED_BACK = "rolled-back"
    ROLLBACK_CONFLICT = "rollback-conflict"


class EmailState(enum.StrEnum):
    """State of one customer email of a run."""

    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"


# --- scans ---------------------------------------------------------------------------


class Scan(_Row):
    """One scan: when, of which inventory, and how it ended."""

    id: int
    started_at: datetime
    finished_at: datetime | None = None
    inventory_path: str
    inventory_sha256: str
    accounts: int
    status: ScanStatus
    installations: int = 0
    errors: int = 0


class Extension(_Row):
    """An extension/plugin/theme of an installation."""

    name: str
    version: str | None = None
    kind: str = "extension"


class InstallationKey(NamedTuple):
    """What identifies an installation across scans."""

    account: str
    host: str
    path: str
    cms: str


class PatchedFile(_Row):
    """A file that differs from its release because patchd patched it: it equals the
    post-image of ``bundle`` applied to this installation."""

    path: str
    bundle: str


class InstallationRecord(_Row):
    """One detected installation as a scan reports it.

    ``path`` is relative to the account root (``""`` for the root itself).
    """

    account: str
    host: str
    path: str
    cms: str
    version: str | None = None
    version_error: str | None = None
    extensions: tuple[Extension, ...] = ()
    php: str | None = None
    php_source: str | None = None
    modified_files: tuple[str, ...] = ()
    """Files that differ from the registered release and from every post-image of a bundle
    applied here: changed by the customer (or someone else), not by patchd."""
    patched_files: tuple[PatchedFile, ...] = ()
    """Files that differ from the registered release because patchd patched them."""
    facts: dict[str, Any] = Field(default_factory=dict)

    @property
    def key(self) -> InstallationKey:
        """(account, host, path, cms)."""
        return InstallationKey(self.account, self.host, self.path, self.cms)


class ScanInstallation(InstallationRecord):
    """An installation as stored for one scan."""

    scan_id: int


class ScanErrorRow(_Row):
    """A host or account a scan could not read."""

    scan_id: int
    host: str
    account: str | None = None
    message: str
    kind: Literal["host", "account", "folder"] = "account"


class VersionChange(_Row):
    """An installation present in both scans whose version changed."""

    account: str
    host: str
    path: str
    cms: str
    old_version: str | None
    new_version: str | None


class ScanDiff(_Row):
    """What changed from scan ``a`` to scan ``b``."""

    a: int
    b: int
    added: tuple[ScanInstallation, ...]
    removed: tuple[ScanInstallation, ...]
    updated: tuple[VersionChange, ...]
    unchanged_count: int


# --- releases --------------------------------------------------------------------------


class Release(_Row):
    """A registered release (its files' checksums are in ``release_files``)."""

    id: int
    cms: str
    version: str
    source: str
    registered_at: datetime


# --- runs ------------------------------------------------------------------------------


class Run(_Row):
    """One rollout (or dry run) of one bundle."""

    id: int
    bundle_id: str
    bundle_digest: str
    started_at: datetime
    finished_at: datetime | None = None
    status: RunStatus
    dry_run: bool
    scan_id: int | None = None
    options: dict[str, Any] = Field(default_factory=dict)
    options_key: str
    pid: int | None = None
    host_of_controller: str | None = None
    resumes: int = 0
    """How often the run was resumed after an interruption (or a canary stop)."""


class ResultRecord(_Row):
    """The outcome of one installation in one run.

    ``reason`` is set when ``outcome`` is ``dry-run-failed`` or ``reverted`` (DESIGN.md
    "Outcomes"), and may be set on ``skipped`` (``policy``, ``gate``) and on an ``error``
    of the health check (``health-check``: the undo failed); other explanations go into
    ``detail``.
    """

    account: str
    customer_id: str | None = None
    host: str
    path: str
    cms: str | None = None
    version: str | None = None
    outcome: Outcome
    reason: Reason | None = None
    detail: str | None = None
    variant: str | None = None
    error_traceback: str | None = None
    journal: str | None = None
    policy: str | None = None

    @model_validator(mode="after")
    def _reason_matches_outcome(self) -> ResultRecord:
        if self.outcome in _NEEDS_REASON and self.reason is None:
            raise ValueError(f"outcome {self.outcome} needs a reason")
        if self.reason is not None and not reason_fits(self.outcome, self.reason):
            allowed = "/".join(sorted(_OUTCOMES_OF.get(self.reason, _DRY_RUN_FAILED)))
            raise ValueError(f"reason {self.reason} only goes with {allowed}")
        return self


_DRY_RUN_FAILED = frozenset({Outcome.DRY_RUN_FAILED})
#: The outcomes each reason that is not a dry run's goes with.
_OUTCOMES_OF: dict[Reason, frozenset[Outcome]] = {
    Reason.POLICY: frozenset({Outcome.SKIPPED}),
    Reason.GATE: frozenset({Outcome.SKIPPED}),
    Reason.HEALTH_CHECK: frozenset({Outcome.REVERTED, Outcome.ERROR}),
}
_NEEDS_REASON = frozenset({Outcome.DRY_RUN_FAILED, Outcome.REVERTED})


def reason_fits(outcome: Outcome, reason: Reason) -> bool:
    """Whether a result may have ``outcome`` with ``reason`` (see :class:`ResultRecord`)."""
    return outcome in _OUTCOMES_OF.get(reason, _DRY_RUN_FAILED)


class Result(ResultRecord):
    """A stored result."""

    run_id: int
    updated_at: datetime
    rolled_back_at: datetime | None = None
    """When ``patchd rollback`` undid this result's change (outcome ``rolled-back``)."""


class TouchedFileRecord(_Row):
    """One file a run plans to replace, has backed up, replaced, or restored.

    ``path`` is the installation path (relative to the account root), ``file`` is relative
    to the installation; ``backup_path`` is in the root-owned backup store.
    """

    account: str
    path: str
    file: str
    pre_sha256: str | None = None
    post_sha256: str | None = None
    backup_path: str | None = None
    mode: int | None = None
    uid: int | None = None
    gid: int | None = None
    state: FileState = FileState.PLANNED


class TouchedFile(TouchedFileRecord):
    """A stored touched file."""

    run_id: int
    updated_at: datetime


# --- emails ----------------------------------------------------------------------------


class EmailRecord(_Row):
    """One email to one customer about a run's (or its bundle's) results.

    ``told`` is what it said per installation (``account:path`` -> outcome word),
    ``told_key`` identifies that content (one email per run, customer and content).
    """

    run_id: int
    customer_id: str
    bundle_id: str
    told: dict[str, str] = Field(default_factory=dict)
    told_key: str
    message_id: str
    recipient: str
    subject: str
    state: EmailState
    attempts: int
    last_error: str | None = None
    created_at: datetime
    sent_at: datetime | None = None
