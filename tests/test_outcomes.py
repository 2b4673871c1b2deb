"""The dry-run verdict of a policy-skipped installation round-trips through its detail."""

from __future__ import annotations

import pytest

from patchd.outcomes import WOULD_PATCH, skipped_detail, skipped_verdict


@pytest.mark.parametrize(
    ("outcome", "detail", "verdict"),
    [
        (None, "", WOULD_PATCH),
        ("already-patched", "the fix is present: every hunk reverse-applies", "already-patched"),
        ("dry-run-failed", "modified: wp-includes/x.php hunk 2", "dry-run-failed"),
    ],
)
def test_round_trip(outcome: str | None, detail: str, verdict: str) -> None:
    text = skipped_detail("notify-only", outcome, detail)
    assert text.startswith("policy notify-only; dry run: ")
    assert skipped_verdict(text) == verdict


@pytest.mark.parametrize("detail", [None, "", "dry run: 2 file(s) apply cleanly", "patched"])
def test_other_details_have_no_verdict(detail: str | None) -> None:
    assert skipped_verdict(detail) is None
