"""``patchd scan``, ``patchd scans`` (list, diff) and ``patchd releases`` (add, list)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from patchd.bundle.manifest import Bundle, load_bundle
from patchd.cli.exits import EXIT_OK, EXIT_TARGETS_FAILED
from patchd.cli.ledger_use import ledger_is_new, reading_ledger, writing_ledger
from patchd.cli.listing import all_option, cut, more_line, table_console
from patchd.cli.output import (
    accounts_option,
    format_options,
    make_progress,
    parallel_option,
    resolve_format,
)
from patchd.cli.selectors import check_known
from patchd.inventory import HeldCache, load_inventory
from patchd.ledger import current as ledger_current
from patchd.ledger import releases as ledger_releases
from patchd.ledger import scans as ledger_scans
from patchd.ledger.db import Ledger
from patchd.ledger.inventory_cache import LedgerInventoryCache
from patchd.ledger.models import Scan, ScanInstallation
from patchd.releases import register
from patchd.report.formats import json_document, render_rows
from patchd.rollout.match import match_installation, source_folder
from patchd.scanner import run_scan, scan_json

INSTALLATION_COLUMNS = (
    "account",
    "host",
    "path",
    "cms",
    "version",
    "extensions",
    "php",
    "php_source",
    "modified_files",
    "patched_files",
)


#: Columns of the ``scans diff --bundle`` table (also the keys of its JSON rows).
VULNERABLE_COLUMNS = ("bundle", "cms", "component", "affected", "fixed_a", "fixed_b", "a", "b")


def _installation_rows(data: dict) -> list[dict]:
    rows = []
    for inst in data["installations"]:
        row = dict(inst)
        row["version"] = inst["version"] or f"unknown ({inst.get('version_error') or '?'})"
        row["extensions"] = ", ".join(
            f"{e['name']} {e['version'] or '?'}" for e in inst["extensions"]
        )
        row["modified_files"] = ", ".join(inst["modified_files"])
        row["patched_files"] = ", ".join(
            f"{p['path']} ({p['bundle']})" for p in inst.get("patched_files", [])
        )
        rows.append(row)
    return rows


def _closing(data: dict) -> str:
    """The scan's closing line: its id and counts (issue 17: the id was only at the top)."""
    accounts = len({i["account"] for i in data["installations"]})
    return (
        f"scan {data['scan']}: {len(data['installations'])} installation(s) in {accounts} "
        f"account(s), {len(data['errors'])} error(s)"
    )


def _summary_rows(data: dict) -> list[dict]:
    """Installations counted per CMS and version (a long scan's terminal summary)."""
    found = Counter((i["cms"], i["version"] or "unknown") for i in data["installations"])
    return [
        {"cms": cms, "version": version, "installations": n}
        for (cms, version), n in sorted(found.items())
    ]


def _emit(data: dict, fmt: str, show_all: bool = False) -> None:
    """A scan as JSON; as CSV (installations only on stdout; the id and the errors on
    stderr as ``# `` lines); or as tables fitted to the terminal, ending with the id."""
    if fmt == "json":
        click.echo(json_document(data), nl=False)
        return
    if fmt == "csv":
        click.echo(render_rows(_installation_rows(data), INSTALLATION_COLUMNS, "csv"), nl=False)
        click.echo(f"# {_closing(data)}", err=True)
        for e in data["errors"]:
            where = "/".join(x for x in (e["host"], e["account"]) if x)
            click.echo(f"# error: {where}: {e['message']}", err=True)
        return
    console = table_console()
    rows = _installation_rows(data)
    shown, left = cut(rows, show_all)
    if left:
        out = render_rows(
            _summary_rows(data),
            ("cms", "version", "installations"),
            "table",
            title=f"scan {data['scan']}: installations per CMS and version",
            console=console,
        )
    else:
        out = render_rows(
            shown, INSTALLATION_COLUMNS, "table", title=f"scan {data['scan']}", console=console
        )
    errors, errors_left = cut(data["errors"], show_all)
    if errors:
        out += render_rows(
            errors, ("host", "account", "message"), "table", title="errors", console=console
        )
    if errors_left:
        out += more_line(errors_left, "errors") + "\n"
    out += _closing(data) + "\n"
    if left:
        out += f"every installation: patchd scans show {data['scan']} --all, or --format csv|json\n"
    click.echo(out, nl=False)


@click.command(name="scan")
@accounts_option()
@click.option(
    "--depth",
    default=4,
    show_default=True,
    type=click.IntRange(0, 32),
    help="How deep below each docroot to look for installations.",
)
@parallel_option("Hosts scanned at once.")
@click.option("--account", "only", multiple=True, help="Scan only this account (repeatable).")
@click.option(
    "--no-integrity", is_flag=True, help="Skip comparing core files with registered releases."
)
@all_option
@format_options()
@click.pass_context
def scan_command(
    ctx: click.Context,
    accounts_file: Path,
    depth: int,
    parallel: int,
    only: tuple[str, ...],
    no_integrity: bool,
    show_all: bool,
    fmt: str,
    as_json: bool,
) -> None:
    """Detect the installations in every account and store a dated scan in the ledger."""
    fmt = resolve_format(fmt, as_json)
    # NOTE (issue 17): a ledger is created only after the inventory passed its checks.
    held = HeldCache()
    inventory = load_inventory(accounts_file, cache=held) if ledger_is_new(ctx) else None
    if inventory is not None:
        check_known("--account", only, (a.id for a in inventory.accounts), str(accounts_file))
    with writing_ledger(ctx) as ledger:
        held.hand_to(LedgerInventoryCache(ledger))
        inventory = inventory or load_inventory(accounts_file, cache=LedgerInventoryCache(ledger))
        check_known("--account", only, (a.id for a in inventory.accounts), str(accounts_file))
        result = run_scan(
            inventory,
            ledger,
            inventory_path=accounts_file,
            max_depth=depth,
            parallel=parallel,
            integrity=not no_integrity,
            only_accounts=set(only) or None,
            progress=make_progress(),
        )
    _emit(result.to_json(), fmt, show_all)
    ctx.exit(EXIT_TARGETS_FAILED if result.errors else EXIT_OK)


@click.group(name="scans", invoke_without_command=True)
@format_options()
@click.pass_context
def scans_group(ctx: click.Context, fmt: str, as_json: bool) -> None:
    """List the stored scans; 'scans show ID' and 'scans diff A B' look inside."""
    if ctx.invoked_subcommand is not None:
        return
    fmt = resolve_format(fmt, as_json)
    with reading_ledger(ctx) as ledger:
        rows = [s.model_dump(mode="json") for s in ledger_scans.list_scans(ledger)]
    click.echo(
        render_rows(
            rows,
            ("id", "started_at", "finished_at", "status", "accounts", "installations", "errors"),
            fmt,
            title="scans",  # type: ignore[arg-type]
            json_key="scans",
        ),
        nl=False,
    )


@scans_group.command(name="show")
@click.argument("scan_id", type=int)
@all_option
@format_options()
@click.pass_context
def scans_show(ctx: click.Context, scan_id: int, show_all: bool, fmt: str, as_json: bool) -> None:
    """Every installation and error of one stored scan."""
    with reading_ledger(ctx) as ledger:
        ledger_scans.get_scan(ledger, scan_id)
        data = scan_json(
            scan_id,
            ledger_scans.scan_installations(ledger, scan_id),
            ledger_scans.scan_errors(ledger, scan_id),
        )
    _emit(data, resolve_format(fmt, as_json), show_all)


def _carries_fix(bundle: Bundle, inst: ScanInstallation, fixed: set[tuple[str, str]]) -> bool:
    """Whether ``inst`` carries ``bundle``'s fix: the scan found files patched by it, or
    the ledger's runs of the bundle left it ``patched``/``already-patched`` before the
    scan (a classic TYPO3 site's result is recorded under its source folder)."""
    if any(p.bundle == bundle.id for p in inst.patched_files):
        return True
    paths = {inst.path, source_folder(inst)[0]}
    return any((inst.account, p) in fixed for p in paths)


def _still_vulnerable(
    ledger: Ledger,
    bundle: Bundle,
    scans: tuple[Scan, Scan],
    installations: tuple[Sequence[ScanInstallation], Sequence[ScanInstallation]],
) -> dict[str, Any]:
    """One row: per scan, how many installations ``bundle`` matches as affected and still
    vulnerable (``a``, ``b``), and how many affected ones carry the fix (``fixed_a``,
    ``fixed_b``; issue 16: patched installations were counted as vulnerable)."""
    m = bundle.manifest
    row: dict[str, Any] = {
        "bundle": m.id,
        "cms": m.cms,
        "component": m.component,
        "affected": m.affected,
    }
    for name, scan, insts in zip(("a", "b"), scans, installations, strict=True):
        fixed = ledger_current.fixed_installations(ledger, m.id, as_of=scan.started_at)
        affected = [i for i in insts if match_installation(bundle, i).affected]
        carrying = sum(1 for i in affected if _carries_fix(bundle, i, fixed))
        row[f"fixed_{name}"] = carrying
        row[name] = len(affected) - carrying
    return row


@scans_group.command(name="diff")
@click.argument("a", type=int)
@click.argument("b", type=int)
@click.option(
    "--bundle",
    "bundle_paths",
    multiple=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Also count, per bundle, the installations still vulnerable in A and B (repeatable).",
)
@format_options()
@click.pass_context
def scans_diff(
    ctx: click.Context, a: int, b: int, bundle_paths: tuple[Path, ...], fmt: str, as_json: bool
) -> None:
    """Installations added, removed and updated (version changed) from scan A to scan B.

    With ``--bundle``, also how many installations each bundle matches as affected in
    scan A and in scan B: still vulnerable (a, b) and carrying the fix (fixed_a, fixed_b:
    patched by patchd, or already patched, before the scan).
    """
    fmt = resolve_format(fmt, as_json)
    # NOTE: load bundles before touching the ledger so a bad bundle path fails fast (exit 2).
    bundles = [load_bundle(path) for path in bundle_paths]
    with reading_ledger(ctx) as ledger:
        diff = ledger_scans.diff_scans(ledger, a, b)
        vulnerable: list[dict[str, Any]] = []
        if bundles:
            scans = (ledger_scans.get_scan(ledger, a), ledger_scans.get_scan(ledger, b))
            insts = (
                ledger_scans.scan_installations(ledger, a),
                ledger_scans.scan_installations(ledger, b),
            )
            vulnerable = [_still_vulnerable(ledger, bundle, scans, insts) for bundle in bundles]
    rows = [
        *(
            {
                "change": "added",
                "account": i.account,
                "host": i.host,
                "path": i.path,
                "cms": i.cms,
                "old_version": None,
                "new_version": i.version,
            }
            for i in diff.added
        ),
        *(
            {
                "change": "removed",
                "account": i.account,
                "host": i.host,
                "path": i.path,
                "cms": i.cms,
                "old_version": i.version,
                "new_version": None,
            }
            for i in diff.removed
        ),
        *(
            {
                "change": "updated",
                "account": u.account,
                "host": u.host,
                "path": u.path,
                "cms": u.cms,
                "old_version": u.old_version,
                "new_version": u.new_version,
            }
            for u in diff.updated
        ),
    ]
    click.echo(
        render_rows(
            rows,
            ("change", "account", "host", "path", "cms", "old_version", "new_version"),
            fmt,
            title=f"scan {a} -> scan {b}",  # type: ignore[arg-type]
            json_key="changes",
            meta={"a": a, "b": b, "unchanged": diff.unchanged_count}
            | ({"vulnerable": vulnerable} if bundles else {}),
        ),
        nl=False,
    )
    if vulnerable and fmt != "json":
        click.echo(
            render_rows(
                vulnerable,
                VULNERABLE_COLUMNS,
                fmt,  # type: ignore[arg-type]
                title=f"per bundle in scan {a} / scan {b}: carrying the fix (fixed_a, "
                "fixed_b), still vulnerable (a, b)",
            ),
            nl=False,
        )


@click.group(name="releases", invoke_without_command=True)
@format_options()
@click.pass_context
def releases_group(ctx: click.Context, fmt: str, as_json: bool) -> None:
    """Pristine releases registered for integrity checks; 'releases add TARBALL' adds one."""
    if ctx.invoked_subcommand is not None:
        return
    with reading_ledger(ctx) as ledger:
        rows = [r.model_dump(mode="json") for r in ledger_releases.list_releases(ledger)]
    click.echo(
        render_rows(
            rows,
            ("id", "cms", "version", "source", "registered_at"),
            resolve_format(fmt, as_json),
            title="releases",  # type: ignore[arg-type]
            json_key="releases",
        ),
        nl=False,
    )


@releases_group.command(name="add")
@click.argument("sources", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--cms", default=None, help="CMS name, when detection should be overridden.")
@click.option("--version", "version", default=None, help="Version, overriding detection.")
@click.pass_context
def releases_add(
    ctx: click.Context, sources: tuple[Path, ...], cms: str | None, version: str | None
) -> None:
    """Register release archives (or folders): their CMS, version and file checksums."""
    with writing_ledger(ctx) as ledger:
        for source in sources:
            rel = register(ledger, source, cms=cms, version=version)
            click.echo(f"registered {rel.cms} {rel.version}: {rel.files} files from {rel.source}")
