"""Terminal-facing helpers of the CLI: consoles, progress bars, listing formats."""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console, RenderableType
from rich.progress import BarColumn, MofNCompleteColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.progress import Progress as RichProgressBar
from rich.text import Text

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


class _CountsProgress(RichProgressBar):
    """A rich progress bar with the live counts on a line of their own below it, so that
    at 80 columns neither the bar's numbers nor the counts are squeezed out (issue 17)."""

    def __init__(self, *columns: Any, counts: Callable[[], str], **kwargs: Any) -> None:
        self._counts = counts  # NOTE: before super(): it renders once while starting
        super().__init__(*columns, **kwargs)

    def get_renderables(self) -> Iterable[RenderableType]:
        yield self.make_tasks_table(self.tasks)
        text = self._counts()
        if text:
            yield Text("  " + text, overflow="fold")


class BarProgress:
    """A rich progress bar on stderr with live counts per label (below the bar)."""

    def __init__(self, console: Console | None = None) -> None:
        self.counts: Counter[str] = Counter()
        self._bar = _CountsProgress(
            TextColumn("{task.description}"),
            BarColumn(bar_width=None),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console or stderr_console(),
            transient=False,
            expand=False,
            counts=self.counts_text,
        )
        self._task: TaskID | None = None

    def counts_text(self) -> str:
        """``patched 15 · not-affected 40 · ...`` (largest first)."""
        return " · ".join(f"{k} {v}" for k, v in self.counts.most_common())

    def start(self, total: int | None, description: str) -> None:
        self._bar.start()
        self._task = self._bar.add_task(description, total=total)

    def advance(self, steps: int = 1, *, label: str | None = None) -> None:
        if label:
            self.counts[label] += steps
        if self._task is not None:
            self._bar.update(self._task, advance=steps)

    def finish(self) -> None:
        self._bar.stop()


def make_progress(enabled: bool = True) -> Progress:
    """A bar when stderr is a terminal, otherwise silent."""
    if enabled and sys.stderr.isatty():
        return BarProgress()
    return SilentProgress()
