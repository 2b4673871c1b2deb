"""``patchd demo``: the whole pipeline on the bundled fixture fleet."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import click

from patchd.cli.output import stdout_console
from patchd.demo import DEFAULT_ACCOUNTS, DEFAULT_SEED, NO_PHP_NOTE, run_demo


@click.command(name="demo")
@click.option(
    "--accounts",
    default=DEFAULT_ACCOUNTS,
    show_default=True,
    type=click.IntRange(10, 100000),
    help="Accounts in the generated fleet.",
)
@click.option(
    "--seed", default=DEFAULT_SEED, show_default=True, type=int, help="Seed of the generated fleet."
)
@click.option(
    "--workdir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Work here instead of a new temporary folder (kept afterwards).",
)
@click.option(
    "--keep",
    is_flag=True,
    help="Keep the temporary folder, with the inputs of README.md's tour, and print it.",
)
def demo_command(accounts: int, seed: int, workdir: Path | None, keep: bool) -> None:
    """Build, scan, roll out and report on a generated fleet, in a temporary folder.

    Three security bundles are built from fixture release tarballs, a fleet of customer
    accounts is generated, scanned and patched, and the success and failure lists are
    printed. Nothing outside the work folder is touched.
    """
    console = stdout_console()
    temporary = workdir is None
    folder = workdir or Path(tempfile.mkdtemp(prefix="patchd-demo-"))
    kept = not temporary or keep
    console.print(f"patchd demo in {folder}")
    try:
        result = run_demo(folder, accounts=accounts, seed=seed, console=console, tour=kept)
    finally:
        if not kept:
            shutil.rmtree(folder, ignore_errors=True)
    seen = ", ".join(f"{k}={v}" for k, v in sorted(result.outcomes.items()))
    console.print(f"\noutcomes over all runs: {seen}")
    if not result.php_checked:
        console.print(NO_PHP_NOTE, markup=False)
    if not kept:
        console.print("(the demo folder was removed; run with --keep to look around)")
        return
    run = result.runs[0]
    demo = folder / "demo"
    console.print(
        f"\nThe demo's own ledger, bundles and fleet are in {demo}:\n"
        f"  patchd --ledger {result.ledger} report {run}\n"
        "\nFor the tour in README.md, go to the folder and run its commands there:\n"
        f"  cd {folder}",
        markup=False,
        soft_wrap=True,
    )
