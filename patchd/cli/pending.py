"""Subcommands whose implementation has not landed yet.

They exist so ``patchd --help`` shows the whole contract of DESIGN.md, and they say
plainly that they are not available (exit 2) instead of pretending to work.
"""

from __future__ import annotations

import click

from patchd.errors import NotYetAvailableError


def pending(name: str, summary: str, issue: str) -> click.Command:
    """A command ``name`` that refuses to run until ``issue`` lands."""

    @click.command(
        name=name,
        help=f"{summary}\n\nNot yet available ({issue}).",
        context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
    )
    def command() -> None:
        raise NotYetAvailableError(f"'patchd {name}' is not yet available ({issue})")

    return command
