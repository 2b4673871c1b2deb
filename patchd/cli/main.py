"""The ``patchd`` console script: one click group, one module per subcommand.

The CLI stays thin: it parses options, builds objects, calls the library and maps
errors to exit codes (0 success, 1 some targets failed, 2 usage or input error).
"""

from __future__ import annotations

import importlib
import logging
import os
import shlex
import sys
import traceback
from pathlib import Path

import click

from patchd import __version__
from patchd.cli.commands import COMMANDS
from patchd.cli.exits import EXIT_INPUT
from patchd.errors import PatchdError
from patchd.ledger.locate import locate_ledger

log = logging.getLogger("patchd")


class PatchdGroup(click.Group):
    """A group that loads its subcommands lazily and turns expected errors into one
    labelled line and an exit code."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [*COMMANDS, *(n for n in super().list_commands(ctx) if n not in COMMANDS)]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return super().get_command(ctx, cmd_name)
        module, _, attr = target.partition(":")
        command = getattr(importlib.import_module(module), attr)
        assert isinstance(command, click.Command)
        return command

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ctx.meta["patchd.argv"] = list(args)  # for the resume hint after Ctrl-C
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context):  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            # NOTE: `patchd show X | head` closes the pipe early; that is not an error.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            ctx.exit(0)
        except PatchdError as exc:
            click.echo(f"patchd: error: {exc}", err=True)
            ctx.exit(exc.exit_code)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except KeyboardInterrupt:
            click.echo("patchd: interrupted", err=True)
            if ctx.invoked_subcommand == "rollout":
                # NOTE (issue 17): a rollout is resumable; say how, with the exact command.
                args = " ".join(shlex.quote(a) for a in ctx.meta.get("patchd.argv", []))
                click.echo(
                    "the run is kept in the ledger and resumes where it stopped: run the "
                    f"same command again: patchd {args}",
                    err=True,
                )
            ctx.exit(130)
        except Exception:
            # NOTE: an unexpected exception is a bug; show where, keep the exit code of
            # the contract (2) so scripts do not mistake it for "some targets failed".
            click.echo("patchd: internal error (this is a bug); traceback follows", err=True)
            traceback.print_exc()
            ctx.exit(EXIT_INPUT)


@click.group(cls=PatchdGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="patchd")
@click.option(
    "--ledger",
    "ledger_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Ledger database (env PATCHD_LEDGER; default: the nearest .patchd/ledger.db "
    "in this folder or a parent, else ./.patchd/ledger.db for commands that write).",
)
@click.option("-v", "--verbose", count=True, help="More log output on stderr.")
@click.pass_context
def cli(ctx: click.Context, ledger_path: Path | None, verbose: int) -> None:
    """patchd: minimal security patches for CMS installations across a hosting fleet."""
    logging.basicConfig(
        level=logging.WARNING - 10 * min(verbose, 2),
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    ctx.ensure_object(dict)
    location = locate_ledger(ledger_path)
    ctx.obj["ledger"] = location
    ctx.obj["ledger_path"] = location.path


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="patchd")


if __name__ == "__main__":
    main()
