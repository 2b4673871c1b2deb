"""Confirmation for commands that write into accounts (``rollout``, ``rollback``)."""

from __future__ import annotations

import sys
from collections.abc import Callable

import click

from patchd.errors import UsageError


def interactive() -> bool:
    """Whether a person can answer (stdin is a terminal)."""
    return sys.stdin.isatty()


def confirm_writes(question: str | Callable[[], str], yes: bool, *, what: str = "") -> None:
    """Ask on a terminal; off a terminal ``--yes`` is required (exit 2 otherwise).

    ``question`` may be a function: it is called only when asking (it may read the
    ledger); ``what`` then names the action in the off-terminal error."""
    if yes:
        return
    if not interactive():
        named = what or (question if isinstance(question, str) else "this writes into accounts")
        raise UsageError(f"{named} -- not on a terminal: pass --yes to confirm")
    text = question if isinstance(question, str) else question()
    if not click.confirm(text, default=False):
        raise click.Abort()
