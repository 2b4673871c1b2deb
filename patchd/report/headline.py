"""The one-line headline of a run's summary: a success rate, or for a dry run what would
happen (issue 17: a dry run read "success rate 0.0%")."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from patchd.outcomes import Outcome, skipped_kind

#: Outcomes a dry run reports as "would fail".
WOULD_FAIL = frozenset(
    {Outcome.DRY_RUN_FAILED, Outcome.APPLY_FAILED, Outcome.UNREACHABLE, Outcome.ERROR}
)


def dry_run_counts(results: Iterable[tuple[str, str | None]]) -> dict[str, int]:
    """From (outcome, detail) pairs of a dry run: ``would_patch`` (an ``auto`` account whose
    dry run succeeded), ``would_fail`` and ``policy`` (not written whatever the dry run
    said, by the account's policy)."""
    counts: Counter[str] = Counter()
    for outcome, detail in results:
        if outcome == Outcome.SKIPPED.value:
            kind = skipped_kind(detail)
            if kind == "dry-run":
                counts["would_patch"] += 1
            elif kind == "policy":
                counts["policy"] += 1
        elif outcome in WOULD_FAIL:
            counts["would_fail"] += 1
    return {k: counts[k] for k in ("would_patch", "would_fail", "policy")}


def dry_run_headline(counts: dict[str, int]) -> str:
    """``dry run, nothing written: N would be patched, M would fail`` (+ policy skips)."""
    text = (
        f"dry run, nothing written: {counts['would_patch']} would be patched, "
        f"{counts['would_fail']} would fail"
    )
    if counts.get("policy"):
        text += f", {counts['policy']} not written by account policy"
    return text


def headline(data: dict[str, Any]) -> str:
    """The summary's headline of a run's data (``run_json``/``report_data``)."""
    if data.get("dry_run"):
        counts = data.get("dry_run_counts") or dry_run_counts(
            (r["outcome"], r.get("detail")) for r in data["results"]
        )
        return dry_run_headline(counts)
    rate = data.get("success_rate")
    return f"success rate {rate:.1%}" if rate is not None else "nothing affected"
