"""Whether a site got worse after a patch: the rules of the health check.

Worse means any of (each against a baseline that answered 2xx or 3xx):

- a 5xx answer, or no answer at all;
- a PHP error marker ("Fatal error", "Parse error", "Uncaught") the baseline did not hold;
- the title gone (the baseline had one), or most of the body gone (less than half of a
  2xx baseline of at least :data:`MIN_BODY` bytes).

A baseline that did not answer 2xx/3xx says nothing about the patch: no check.
"""

from __future__ import annotations

from dataclasses import dataclass

from patchd.health.page import Page

#: A 2xx baseline body shorter than this is not compared by size (too little to judge).
MIN_BODY = 256
#: "Most of the body gone": the answer after is shorter than this share of the baseline.
BODY_SHARE = 0.5


@dataclass(frozen=True, slots=True)
class Verdict:
    """The check of one URL: ``worse`` with ``why``, or not; ``checked`` False when the
    baseline was down (then there was nothing to compare)."""

    url: str
    before: Page
    after: Page | None
    worse: bool
    why: str = ""
    checked: bool = True

    def describe(self) -> str:
        """The words for ``detail``: before/after status and, when worse, why."""
        if not self.checked:
            return (
                f"health check skipped: the site gave {self.before.describe()} before the "
                f"patch, nothing to compare ({self.url})"
            )
        assert self.after is not None
        if self.worse:
            return (
                f"health check: {self.before.describe()} before, {self.after.describe()} "
                f"after: {self.why} ({self.url})"
            )
        if self.after.status == self.before.status:
            return f"health check: {self.after.describe()} before and after ({self.url})"
        return (
            f"health check: {self.before.describe()} before, {self.after.describe()} after, "
            f"no worse ({self.url})"
        )


def baseline_down(url: str, before: Page) -> Verdict:
    """The verdict of a site whose baseline was not 2xx/3xx: not checked."""
    return Verdict(url, before, None, False, checked=False)


def compare(url: str, before: Page, after: Page) -> Verdict:
    """Whether ``after`` is worse than ``before`` (see the module docstring)."""
    if not before.up:
        return baseline_down(url, before)
    why = _worse(before, after)
    return Verdict(url, before, after, why is not None, why or "")


def _worse(before: Page, after: Page) -> str | None:
    new = sorted(after.markers - before.markers)
    error = f": {after.error_line}" if after.error_line else ""
    if after.status is None:
        return "the site no longer answers"
    if after.status >= 500:
        return f"server error{error}" if new else "server error"
    if new:
        return f"new PHP error ({', '.join(new)}){error}"
    if before.title and not after.title:
        return f"the page title ({before.title[:80]!r}) is gone"
    big = before.status is not None and 200 <= before.status < 300 and before.size >= MIN_BODY
    if big and after.size < before.size * BODY_SHARE:
        return f"most of the page is gone ({after.size} of {before.size} bytes)"
    return None
