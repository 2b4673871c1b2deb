"""Terminal-facing helpers of the CLI: consoles, progress bars, listing formats."""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
from rich.progress import Progress as RichProgressBar

from patchd.progress import Progress, SilentProgress
from patchd.report.formats import FORMATS

F = TypeVar("F", bound=Callable[..., Any])


def stdout_console() -> Console:
    """A console for results: colours only on a terminal."""
    return Console(highlight=False, soft_wrap=True)


def stderr_console() -> Console:
    """A console for messages and progress."""
    return Console(stderr=True, highlight=False)


def format_options(extra: tuple[str, ...] = ()):
    """``--format table|csv|json`` (plus ``extra``) and ``--json`` as its short form."""
    choices = FORMATS + extra

    def decorate(fn):
        fn = click.option("--json", "as_json", is_flag=True, help="Short for --format json.")(fn)
        fn = click.option(
            "--format",
            "fmt",
            type=click.Choice(choices),
            default="table",
            show_default=True,
            help="Output format.",
        )(fn)
        return fn

    return decorate


def accounts_option(help: str = "The inventory (accounts.yaml).") -> Callable[[F], F]:
    """``--accounts FILE`` (required): the inventory, as ``accounts_file``."""
    return click.option(
        "--accounts",
        "accounts_file",
        required=True,
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        help=help,
    )


def parallel_option(help: str) -> Callable[[F], F]:
    """``--parallel N``: hosts worked on at once (default 8)."""
    return click.option(
        "--parallel", default=8, show_default=True, type=click.IntRange(1, 256), help=help
    )


def resolve_format(fmt: str, as_json: bool) -> str:
    return "json" if as_json else fmt


class BarProgress:
    """A rich progress bar on stderr with live counts per label."""

    def __init__(self) -> None:
        self._bar = RichProgressBar(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[counts]}"),
            TimeElapsedColumn(),
            console=stderr_console(),
            transient=False,
        )
        self._task = None
        self.counts: Counter[str] = Counter()

    def start(self, total: int | None, description: str) -> None:
        self._bar.start()
        self._task = self._bar.add_task(description, total=total, counts="")

    def advance(self, steps: int = 1, *, label: str | None = None) -> None:
        if label:
            self.counts[label] += steps
        counts = " ".join(f"{k}={v}" for k, v in sorted(self.counts.items()))
        if self._task is not None:
            self._bar.update(self._task, advance=steps, counts=counts)

    def finish(self) -> None:
        self._bar.stop()


def make_progress(enabled: bool = True) -> Progress:
    """A bar when stderr is a terminal, otherwise silent."""
    if enabled and sys.stderr.isatty():
        return BarProgress()
    return SilentProgress()
