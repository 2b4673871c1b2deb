"""Every subcommand is documented in docs/reference.md (a command without docs fails)."""

from __future__ import annotations

from pathlib import Path

import click

from patchd.cli.main import cli

REFERENCE = Path(__file__).resolve().parent.parent / "docs" / "reference.md"


def test_every_command_has_a_reference_section() -> None:
    text = REFERENCE.read_text(encoding="utf-8")
    ctx = click.Context(cli)
    missing = [name for name in cli.list_commands(ctx) if f"### patchd {name}\n" not in text]
    assert not missing, f"docs/reference.md lacks sections for: {missing}"


def test_every_command_has_help() -> None:
    ctx = click.Context(cli)
    for name in cli.list_commands(ctx):
        command = cli.get_command(ctx, name)
        assert isinstance(command, click.Command), name
        assert (command.help or "").strip(), f"patchd {name} has no help text"


def test_every_outcome_word_is_documented() -> None:
    from patchd.outcomes import Outcome, Reason

    text = REFERENCE.read_text(encoding="utf-8")
    for word in [*Outcome, *Reason]:
        assert f"`{word.value}`" in text, word
