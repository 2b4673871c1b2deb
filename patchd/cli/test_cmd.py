"""``patchd test BUNDLE --matrix FILE``: prove a bundle on a matrix of configurations.

Prints one row per cell (ok / failed with the reason), writes ``tested.json`` into the
bundle, exits 0 when every cell passed, 1 when some cell failed, 2 on input errors.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import click

from patchd.bundle.manifest import load_bundle
from patchd.cli.exits import EXIT_OK, EXIT_TARGETS_FAILED
from patchd.cli.listing import table_console
from patchd.cli.output import format_options, make_progress, resolve_format, stdout_console
from patchd.matrix.model import load_matrix
from patchd.matrix.results import CellResult
from patchd.matrix.run import TestReport, test_bundle
from patchd.report.formats import render_rows

_COLUMNS = ("release", "ext", "php", "mod", "status", "outcome", "reason")


def _row(c: CellResult) -> tuple[str, ...]:
    php = c.php if c.php_binary else f"{c.php} (static)"
    return (c.release, c.extensions, php, c.modification, c.status, c.outcome, c.reason)


def _print(report: TestReport, fmt: str) -> None:
    cells = report.run.cells
    if fmt == "json":
        data = {
            "bundle": report.tested.bundle,
            "matrix": report.run.matrix,
            "min_php": report.min_php.php,
            "min_php_reason": report.min_php.reason,
            "warnings": list(report.warnings),
            "ok": report.run.ok,
            "cells": [c.model_dump(mode="json") for c in cells],
        }
        click.echo(json.dumps(data, indent=2))
        return
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow(_COLUMNS)
        writer.writerows(_row(c) for c in cells)
        click.echo(buf.getvalue(), nl=False)
        return
    # NOTE (issue 17): fitted to the terminal; the reason is prose here ("why"), so it
    # wraps or moves below the table instead of squeezing every column.
    shown = (*_COLUMNS[:-1], "why")
    rows = [dict(zip(shown, _row(c), strict=True)) for c in cells]
    title = f"bundle {report.tested.bundle} on {report.run.matrix}"
    click.echo(render_rows(rows, shown, "table", title=title, console=table_console()), nl=False)
    console = stdout_console()
    failed = sum(1 for c in cells if c.status != "ok")
    console.print(
        f"{len(cells)} cells, {len(cells) - failed} ok, {failed} failed; "
        f"added lines need PHP >= {report.min_php.php or '(nothing detected)'}"
    )


@click.command(name="test")
@click.argument("bundle_path", metavar="BUNDLE", type=click.Path(path_type=Path))
@click.option(
    "--matrix",
    "matrix_path",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="Matrix file (YAML): releases, extension sets, PHP versions, modifications.",
)
@click.option(
    "--workdir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Where the scratch folder is made (default: the system temp folder).",
)
@click.option("--keep", is_flag=True, help="Keep the scratch folder with every cell.")
@format_options()
def test_command(
    bundle_path: Path,
    matrix_path: Path,
    workdir: Path | None,
    keep: bool,
    fmt: str,
    as_json: bool,
) -> None:
    """Apply a bundle to a matrix of configurations and report per cell.

    Every cell (release x extension set x PHP x modification set) is built in a scratch
    folder and checked: the right variant applies, php -l passes, the added lines need no
    newer PHP than the cell's, and a smoke test with php -S shows no new error. The result
    is written into the bundle as tested.json. Exit 0: all cells ok; 1: some failed.
    """
    bundle = load_bundle(bundle_path)
    matrix = load_matrix(matrix_path)
    fmt = resolve_format(fmt, as_json)
    if workdir is not None:
        workdir.mkdir(parents=True, exist_ok=True)
    report = test_bundle(
        bundle,
        matrix,
        matrix_name=matrix_path.name,
        workdir=workdir,
        keep=keep,
        progress=make_progress(fmt == "table"),
    )
    for warning in report.warnings:
        click.echo(f"patchd: warning: {warning}", err=True)
    if report.scratch is not None:
        click.echo(f"patchd: scratch folder kept: {report.scratch}", err=True)
    _print(report, fmt)
    ctx = click.get_current_context()
    ctx.exit(EXIT_OK if report.run.ok else EXIT_TARGETS_FAILED)
