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
    REVERTED = "reverted"
    ROLLED_BACK = "rolled-back"
    UNREACHABLE = "unreachable"
    ERROR = "error"


class Reason(enum.StrEnum):
    """Why a dry run failed (with :attr:`Outcome.DRY_RUN_FAILED`), why an installation was
    ``skipped`` (``policy``, ``gate``) or ``reverted`` (``health-check``)."""

    MODIFIED = "modified"
    MISSING_FILE = "missing-file"
    UNSAFE_PATH = "unsafe-path"
    PHP_INCOMPATIBLE = "php-incompatible"
    LINT_FAILED = "lint-failed"
    NO_VARIANT = "no-variant"
    VERSION_UNKNOWN = "version-unknown"
    POLICY = "policy"
    GATE = "gate"
    HEALTH_CHECK = "health-check"


#: Outcomes that count as success in reports (success rate numerator).
SUCCESS_OUTCOMES = frozenset({Outcome.PATCHED, Outcome.ALREADY_PATCHED})
#: Outcomes of installations the bundle applies to (success rate denominator).
AFFECTED_OUTCOMES = frozenset(set(Outcome) - {Outcome.NOT_AFFECTED})


#: ``detail`` of a ``skipped`` result whose account policy forbids writing; the dry-run
#: verdict follows ``dry run: `` (an outcome word, or ``would be patched``). Support and
#: the customer emails read it back with :func:`skipped_verdict`.
SKIPPED_DETAIL = "policy {policy}; dry run: {verdict}"
WOULD_PATCH = "would be patched"


#: ``detail`` prefix of a ``skipped`` result of a ``--dry-run`` on an ``auto`` account:
#: the dry run succeeded, a real run would patch it.
DRY_RUN_PREFIX = "dry run: "


def skipped_kind(detail: str | None) -> str:
    """Why a ``skipped`` result was not written: ``policy`` (the account's policy),
    ``dry-run`` (a ``--dry-run`` on an ``auto`` account) or ``other`` (gate, untested)."""
    text = detail or ""
    if text.startswith("policy ") and "; dry run: " in text:
        return "policy"
    if text.startswith(DRY_RUN_PREFIX):
        return "dry-run"
    return "other"


def skipped_detail(policy: str, outcome: str | None, detail: str = "") -> str:
    """The ``detail`` of an installation skipped by ``policy`` after a dry run."""
    verdict = WOULD_PATCH if outcome is None else outcome + (f" ({detail})" if detail else "")
    return SKIPPED_DETAIL.format(policy=policy, verdict=verdict)


def skipped_verdict(detail: str | None) -> str | None:
    """The dry-run verdict word of a policy-skipped result (``already-patched``,
    ``dry-run-failed``, ``would be patched``), or None when ``detail`` is not one."""
    if not detail or not detail.startswith("policy ") or "; dry run: " not in detail:
        return None
    verdict = detail.split("; dry run: ", 1)[1]
    if verdict.startswith(WOULD_PATCH):
        return WOULD_PATCH
    return verdict.split(" ", 1)[0]
