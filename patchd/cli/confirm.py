"""Confirmation for commands that write into accounts (``rollout``, ``rollback``)."""

from __future__ import annotations

import sys

import click

from patchd.errors import UsageError


def confirm_writes(question: str, yes: bool) -> None:
    """Ask on a terminal; off a terminal ``--yes`` is required (exit 2 otherwise)."""
    if yes:
        return
    if not sys.stdin.isatty():
        raise UsageError(f"{question} -- not on a terminal: pass --yes to confirm")
    if not click.confirm(question, default=False):
        raise click.Abort()
