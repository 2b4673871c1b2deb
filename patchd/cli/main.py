"""The ``patchd`` console script: one click group, one module per subcommand.

The CLI stays thin: it parses options, builds objects, calls the library and maps
errors to exit codes (0 success, 1 some targets failed, 2 usage or input error).
"""

from __future__ import annotations

import logging
import os
import sys
import traceback
from pathlib import Path

import click

from patchd import __version__
from patchd.cli.exits import EXIT_INPUT
from patchd.errors import PatchdError

log = logging.getLogger("patchd")


class PatchdGroup(click.Group):
    """A group that turns expected errors into one labelled line and an exit code."""

    def invoke(self, ctx: click.Context):  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except PatchdError as exc:
            click.echo(f"patchd: error: {exc}", err=True)
            ctx.exit(exc.exit_code)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except KeyboardInterrupt:
            click.echo("patchd: interrupted", err=True)
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
    envvar="PATCHD_LEDGER",
    help="Ledger database (default ./.patchd/ledger.db; env PATCHD_LEDGER).",
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
    ctx.obj["ledger_path"] = ledger_path or Path(
        os.environ.get("PATCHD_LEDGER", ".patchd/ledger.db")
    )


def _register() -> None:
    from patchd.cli import commands

    for command in commands.ALL:
        cli.add_command(command)


_register()


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="patchd")


if __name__ == "__main__":
    main()
