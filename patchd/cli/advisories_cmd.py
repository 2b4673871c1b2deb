"""``patchd advisories``: import advisory databases, list what was imported."""

from __future__ import annotations

from pathlib import Path

import click

from patchd.advisories.importer import import_source
from patchd.advisories.mapping import PackageMap, load_mapping
from patchd.cli.exits import EXIT_OK, EXIT_TARGETS_FAILED
from patchd.cli.ledger_use import reading_ledger, writing_ledger
from patchd.cli.output import format_options, resolve_format
from patchd.ledger.advisories import list_sources
from patchd.report.formats import render_rows


@click.group(name="advisories", invoke_without_command=True)
@format_options()
@click.pass_context
def advisories_group(ctx: click.Context, fmt: str, as_json: bool) -> None:
    """Advisories from public databases; 'advisories import SOURCE' reads one in.

    Without a subcommand: the imported sources with their revision and date.
    """
    if ctx.invoked_subcommand is not None:
        return
    with reading_ledger(ctx) as ledger:
        rows = [vars(s) for s in list_sources(ledger)]
    click.echo(
        render_rows(
            rows,
            ("id", "kind", "location", "revision", "revision_date", "imported_at", "advisories"),
            resolve_format(fmt, as_json),  # type: ignore[arg-type]
            title="advisory sources",
            json_key="sources",
        ),
        nl=False,
    )


@advisories_group.command(name="import")
@click.argument("sources", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--source-format",
    "source_format",
    type=click.Choice(["auto", "friendsofphp", "osv"]),
    default="auto",
    show_default=True,
    help="auto: a folder of vendor/package/*.yaml is FriendsOfPHP, anything else OSV JSON.",
)
@click.option(
    "--mapping",
    "mapping_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="YAML rows {package, cms, component, kind} added to the package table.",
)
@click.pass_context
def import_command(
    ctx: click.Context, sources: tuple[Path, ...], source_format: str, mapping_file: Path | None
) -> None:
    """Read advisories (FriendsOfPHP checkout, OSV JSON files or folders) into the ledger.

    Importing the same source again updates its advisories in place and removes the ones
    it no longer has. Exit code 1 when some files could not be read (they are named).
    """
    mapping = load_mapping(mapping_file) if mapping_file else PackageMap()
    problems = 0
    with writing_ledger(ctx) as ledger:
        for source in sources:
            read, counts = import_source(ledger, source, mapping, source_format)  # type: ignore[arg-type]
            click.echo(
                f"{read.kind} {source} (revision {read.revision}, {read.date or 'no date'}): "
                f"{counts.added} added, {counts.updated} updated, {counts.unchanged} "
                f"unchanged, {counts.removed} removed; {counts.unmapped} for packages "
                "patchd does not map to a CMS"
            )
            for problem in read.problems:
                click.echo(f"  not imported: {problem}", err=True)
            problems += len(read.problems)
    ctx.exit(EXIT_TARGETS_FAILED if problems else EXIT_OK)
