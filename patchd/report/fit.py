"""Fitting a listing's table to a terminal's width (issue 17: at 80 columns outcomes were
cut to ``dry-r…`` and explanations wrapped one word per line).

The rules, per column name:

- **whole** columns (:data:`WHOLE`: ids, outcome and reason words, versions, counts) are
  never wrapped nor cut;
- **text** columns (:data:`TEXT`: paths, explanations, details, lists) wrap, at words
  where they can, but never narrower than :data:`MIN_TEXT` characters;
- when the table is still too wide, columns leave it in :data:`LEAVE_ORDER` (the least
  needed first). A text column that left is shown in a **detail view** below the table
  (one block per row, at full width); another column that left is named in a note (every
  column is in ``--format csv`` and ``json``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from rich.cells import cell_len

#: Columns whose values are never wrapped or cut.
WHOLE = frozenset(
    {
        "account", "customer", "host", "cms", "version", "outcome", "reason", "status",
        "run", "bundle", "id", "count", "change", "kind", "language", "policy", "php",
        "php_source", "installations", "total", "success", "failed", "success_rate", "a", "b",
        "fixed_a", "fixed_b", "old_version", "new_version", "scan", "accounts", "errors",
        "component", "affected", "cell", "result", "file", "hunk", "verdict",
    }
)  # fmt: skip
#: Columns that wrap.
TEXT = frozenset(
    {
        "path", "explanation", "detail", "extensions", "modified_files", "patched_files",
        "message", "conflicts", "counts", "backups", "email", "ledger", "started",
        "finished", "source", "title", "note", "why",
    }
)  # fmt: skip
#: The narrowest a text column is made (prose needs more room than a path or a list).
MIN_TEXT = 16
MIN_PROSE = 30
PROSE = frozenset({"explanation", "detail", "message", "note", "why", "title"})


def min_width(column: str, natural: int) -> int:
    """The narrowest ``column`` (needing ``natural`` on one line) is made."""
    if column not in TEXT:
        return natural
    return min(natural, MIN_PROSE if column in PROSE else MIN_TEXT)


#: Which columns leave a narrow table first (columns not named here leave last, from the
#: right; ``account``, ``outcome`` and ``reason`` never leave).
LEAVE_ORDER = (
    "detail", "why", "php_source", "patched_files", "policy", "customer", "cms", "host",
    "ledger", "backups", "started", "email", "language", "extensions", "modified_files",
    "mod", "ext", "old_version", "version", "php", "run", "explanation", "counts",
    "conflicts", "path",
)  # fmt: skip
#: Columns that stay whatever the width.
STAY = frozenset({"account", "outcome", "reason", "status", "change", "id", "scan"})
#: Width of a column's padding and separator in the tables of :mod:`patchd.report.formats`.
PAD = 3


@dataclass
class Fit:
    """How a table fits: the columns shown, those moved to the detail view (text) and
    those left out (named in a note)."""

    shown: list[str]
    detail: list[str] = field(default_factory=list)
    left_out: list[str] = field(default_factory=list)
    natural: dict[str, int] = field(default_factory=dict)

    @property
    def fits(self) -> bool:
        return not self.detail and not self.left_out


def natural_widths(rows: Sequence[Mapping[str, str]], columns: Sequence[str]) -> dict[str, int]:
    """The width each column needs to show every value on one line."""
    widths = {c: cell_len(c) for c in columns}
    for row in rows:
        for c in columns:
            for line in row.get(c, "").split("\n"):
                widths[c] = max(widths[c], cell_len(line))
    return widths


def _need(columns: Sequence[str], natural: Mapping[str, int]) -> int:
    """The narrowest the table of ``columns`` can be under these rules."""
    return sum(min_width(c, natural[c]) + PAD for c in columns) + 1


def fit_columns(rows: Sequence[Mapping[str, str]], columns: Sequence[str], width: int) -> Fit:
    """Which of ``columns`` a table of ``rows`` (cell texts) shows at ``width``."""
    natural = natural_widths(rows, columns)
    shown = list(columns)
    fit = Fit(shown, natural=natural)
    order = [c for c in LEAVE_ORDER if c in shown]
    order += [c for c in reversed(shown) if c not in order and c not in STAY]
    for column in order:
        if _need(shown, natural) <= width:
            break
        shown.remove(column)
        (fit.detail if column in TEXT else fit.left_out).append(column)
    # NOTE: in the table's order, not in the order they left
    fit.detail.sort(key=list(columns).index)
    fit.left_out.sort(key=list(columns).index)
    return fit


__all__ = ["LEAVE_ORDER", "MIN_TEXT", "STAY", "TEXT", "WHOLE", "Fit", "fit_columns", "min_width"]
