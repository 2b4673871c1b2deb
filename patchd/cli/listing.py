"""Long listings on a terminal (issue 17): a table that fits, then a closing summary;
the full list behind ``--all`` or ``--format csv|json``. Off a terminal nothing is cut."""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

import click
from rich.console import Console

from patchd.cli.output import stdout_console

F = TypeVar("F", bound=Callable[..., Any])

#: The most rows a terminal listing shows without ``--all``.
TERMINAL_ROWS = 40


def on_terminal() -> bool:
    """Whether results go to a person (stdout is a terminal)."""
    return sys.stdout.isatty()


def table_console() -> Console | None:
    """The console tables fit to: the terminal's, or None (a pipe: nothing is cut)."""
    return stdout_console() if on_terminal() else None


def all_option(fn: F) -> F:
    """``--all``: on a terminal, list every row."""
    return click.option(
        "--all",
        "show_all",
        is_flag=True,
        help=f"On a terminal, list every row (else at most {TERMINAL_ROWS}, then a summary).",
    )(fn)


def cut(rows: Sequence[Mapping[str, Any]], show_all: bool) -> tuple[list[Any], int]:
    """(rows to show, rows left out): everything off a terminal or with ``--all``."""
    if show_all or not on_terminal() or len(rows) <= TERMINAL_ROWS:
        return list(rows), 0
    return list(rows[:TERMINAL_ROWS]), len(rows) - TERMINAL_ROWS


def counts_text(counts: Mapping[str, int] | Iterable[tuple[str, int]]) -> str:
    """``a 3, b 1`` (largest first)."""
    items = counts.items() if isinstance(counts, Mapping) else counts
    return ", ".join(f"{k} {v}" for k, v in Counter(dict(items)).most_common())


def more_line(left: int, what: str = "rows") -> str:
    """The line saying how many rows a terminal listing left out, and where they are."""
    return f"... {left} more {what} not shown: --all lists them, --format csv|json has all"
