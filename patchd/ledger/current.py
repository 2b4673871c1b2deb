"""The current state of each installation over all runs of one bundle.

A bundle is often rolled out in several runs (a canary, then the rest; a resume; a run
after a rollback). Support wants one answer per installation: what is true *now*. The
rule, applied in the order things happened (each result's ``updated_at``; a rollback
updates its result):

- dry runs never count (they changed nothing);
- ``unreachable``, ``error`` and ``skipped`` by the fleet gate say nothing new about an
  installation and never replace an earlier result;
- ``already-patched`` never replaces ``patched``: the fix found present is the one an
  earlier run installed (the canary's ``patched`` beats the rest's ``already-patched``);
- otherwise the later result wins (``rolled-back`` after ``patched``, ``patched`` after
  ``rolled-back`` in a later run, a customer's later modification, ...).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from patchd.ledger import runs as ledger_runs
from patchd.ledger.db import Ledger
from patchd.ledger.models import Result, Run
from patchd.outcomes import SUCCESS_OUTCOMES, Outcome, Reason

#: Outcomes that never replace an earlier result of the same installation.
UNINFORMATIVE = frozenset({Outcome.UNREACHABLE, Outcome.ERROR})


def _informative(new: Result, current: Result) -> bool:
    if new.outcome in UNINFORMATIVE:
        return False
    if new.outcome is Outcome.SKIPPED and new.reason is not None and new.reason == Reason.GATE:
        return False
    return not (new.outcome is Outcome.ALREADY_PATCHED and current.outcome is Outcome.PATCHED)


def merge_results(results: Iterable[Result]) -> list[Result]:
    """One current result per (account, path) of ``results`` (see the module's rule),
    ordered by host, account, path."""
    ordered = sorted(results, key=lambda r: (r.updated_at, r.run_id))
    current: dict[tuple[str, str], Result] = {}
    for r in ordered:
        key = (r.account, r.path)
        have = current.get(key)
        if have is None or _informative(r, have):
            current[key] = r
    return sorted(current.values(), key=lambda r: (r.host, r.account, r.path))


def real_runs(ledger: Ledger, bundle_id: str) -> list[Run]:
    """The runs of ``bundle_id`` that wrote (not dry runs), oldest first."""
    return [r for r in ledger_runs.list_runs(ledger, bundle_id=bundle_id) if not r.dry_run]


def bundle_results(ledger: Ledger, bundle_id: str) -> list[Result]:
    """The current result of every installation any real run of ``bundle_id`` examined."""
    rows: list[Result] = []
    for run in real_runs(ledger, bundle_id):
        rows.extend(ledger_runs.results(ledger, run.id))
    return merge_results(rows)


def fixed_installations(
    ledger: Ledger, bundle_id: str, *, as_of: datetime | None = None
) -> set[tuple[str, str]]:
    """(account, path) of every installation whose current state for ``bundle_id`` (as
    of ``as_of``: results recorded later are left out) is ``patched`` or
    ``already-patched``: it carries the fix."""
    return set(fix_states(ledger, bundle_id, as_of=as_of))


def fix_states(
    ledger: Ledger, bundle_id: str, *, as_of: datetime | None = None
) -> dict[tuple[str, str], Outcome]:
    """(account, path) -> ``patched`` or ``already-patched``: the installations that carry
    ``bundle_id``'s fix as of ``as_of``, and how it got there."""
    rows: list[Result] = []
    for run in real_runs(ledger, bundle_id):
        rows.extend(
            r for r in ledger_runs.results(ledger, run.id) if as_of is None or r.updated_at <= as_of
        )
    return {
        (r.account, r.path): r.outcome for r in merge_results(rows) if r.outcome in SUCCESS_OUTCOMES
    }
