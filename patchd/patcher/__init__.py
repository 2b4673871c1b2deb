"""Host-side patcher: dry-run, apply, verify, rollback and crash recovery for one installation.

Everything here runs inside the agent on the customer's host, as root, against folders the
customer controls. The write primitives live in :mod:`patchd.patcher.safewrite`; the
per-installation logic (plan, journal, all-or-nothing apply) in
:mod:`patchd.patcher.installation`.

NOTE: stdlib-only; shipped to remote hosts with the agent.
"""

from __future__ import annotations

from patchd.patcher.installation import (
    ApplyResult,
    DryRunResult,
    FilePlan,
    FileRestore,
    RecoveryResult,
    RollbackResult,
    apply,
    dry_run,
    recover,
    rollback,
)

__all__ = [
    "ApplyResult",
    "DryRunResult",
    "FilePlan",
    "FileRestore",
    "RecoveryResult",
    "RollbackResult",
    "apply",
    "dry_run",
    "recover",
    "rollback",
]
