"""The words of DESIGN.md's Outcomes section: one outcome per installation per run.

NOTE: stdlib-only; the host-side agent reports these words, the ledger stores them, the
JSON output and the customer emails use them. They are a stable contract: never rename.
"""

from __future__ import annotations

import enum


class Outcome(enum.StrEnum):
    """What happened to one installation in one run."""

    PATCHED = "patched"
    ALREADY_PATCHED = "already-patched"
    NOT_AFFECTED = "not-affected"
    SKIPPED = "skipped"
    DRY_RUN_FAILED = "dry-run-failed"
    APPLY_FAILED = "apply-failed"
    UNREACHABLE = "unreachable"
    ERROR = "error"


class Reason(enum.StrEnum):
    """Why a dry run failed (with :attr:`Outcome.DRY_RUN_FAILED`)."""

    MODIFIED = "modified"
    MISSING_FILE = "missing-file"
    UNSAFE_PATH = "unsafe-path"
    PHP_INCOMPATIBLE = "php-incompatible"
    LINT_FAILED = "lint-failed"


#: Outcomes that count as success in reports (success rate numerator).
SUCCESS_OUTCOMES = frozenset({Outcome.PATCHED, Outcome.ALREADY_PATCHED})
#: Outcomes of installations the bundle applies to (success rate denominator).
AFFECTED_OUTCOMES = frozenset(set(Outcome) - {Outcome.NOT_AFFECTED})
