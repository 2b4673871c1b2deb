"""``patchd apply PATCH DIR``: apply a diff or a bundle's patch to one installation folder."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click
from rich.table import Table

from patchd.apply_folder import FolderReport, apply_to_folder
from patchd.bundle.manifest import load_bundle
from patchd.cli.exits import EXIT_OK, EXIT_TARGETS_FAILED
from patchd.cli.output import stdout_console
from patchd.engine.parse import parse_diff
from patchd.errors import UsageError

#: A diff larger than this is refused before parsing (bundles are kilobytes).
MAX_DIFF_SIZE = 64 * 1024 * 1024


def read_patch_source(path: Path, variant: str | None) -> tuple[bytes, str]:
    """The diff bytes of a ``.diff`` file or a bundle folder (``patch.diff`` or a variant).

    A bundle folder is loaded and its digest checked first, as ``rollout`` and ``show`` do:
    an edited manifest or diff is refused.
    """
    if path.is_dir():
        name = f"variants/{variant}.diff" if variant else "patch.diff"
        bundle = load_bundle(path)
        if name not in bundle.diffs:
            raise UsageError(f"bundle {path} has no {name}")
        return bundle.diffs[name], str(path / name)
    else:
        if variant:
            raise UsageError("--variant only applies to a bundle folder")
        target = path
    if not target.is_file():
        raise UsageError(f"{target}: no such file")
    if target.stat().st_size > MAX_DIFF_SIZE:
        raise UsageError(f"{target}: larger than {MAX_DIFF_SIZE} bytes; not a patch bundle")
    return target.read_bytes(), str(target)


@click.command(name="apply")
@click.argument("patch", metavar="BUNDLE_OR_DIFF", type=click.Path(exists=True, path_type=Path))
@click.argument(
    "folder", metavar="DIR", type=click.Path(exists=True, file_okay=False, path_type=Path)
)
@click.option("--dry-run", is_flag=True, help="Check every hunk; write nothing.")
@click.option("-R", "--reverse", is_flag=True, help="Apply the patch in reverse (undo it).")
@click.option(
    "-F",
    "--fuzz",
    type=click.IntRange(0, 3),
    default=0,
    show_default=True,
    help="Outer context lines a hunk may ignore (like patch -F).",
)
@click.option(
    "-p",
    "--strip",
    type=click.IntRange(0, 16),
    default=1,
    show_default=True,
    help="Leading path components to strip from the diff's file names.",
)
@click.option("--variant", default=None, help="With a bundle: use variants/NAME.diff.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_context
def apply_command(
    ctx: click.Context,
    patch: Path,
    folder: Path,
    dry_run: bool,
    reverse: bool,
    fuzz: int,
    strip: int,
    variant: str | None,
    as_json: bool,
) -> None:
    """Apply BUNDLE_OR_DIFF to the installation folder DIR, reporting per file and hunk.

    Nothing is written unless every hunk of every file applies; files are replaced
    atomically, keeping owner and mode. Symlinks, hardlinks and non-regular files are
    refused. Exit 0 when the patch applies (or is already applied), 1 when a hunk fails.
    """
    data, source = read_patch_source(patch, variant)
    patches = parse_diff(data, source=source, strip=strip)
    if not patches:
        raise UsageError(f"{source}: contains no file changes")
    # NOTE: os.path.abspath, not resolve(): the operator's path is taken as given.
    folder = Path(os.path.abspath(folder))
    report = apply_to_folder(patches, folder, dry_run=dry_run, reverse=reverse, fuzz=fuzz)
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=2, ensure_ascii=False))
    else:
        _print_report(report)
    ctx.exit(EXIT_OK if report.ok else EXIT_TARGETS_FAILED)


def _print_report(report: FolderReport) -> None:
    console = stdout_console()
    table = Table(title=f"{'dry run: ' if report.dry_run else ''}{report.folder}")
    for column in ("file", "action", "hunk", "status", "line", "offset", "detail"):
        table.add_column(column)
    for f in report.files:
        if f.problem is not None or f.outcome is None:
            table.add_row(f.path, f.action, "-", "refused", "", "", f.problem or "")
            continue
        for h in f.outcome.hunks:
            table.add_row(
                f.path, f.action, str(h.index), h.status.value, str(h.line), str(h.offset), h.reason
            )
    console.print(table)
    if report.write_error:
        console.print(f"[red]not written:[/red] {report.write_error}")
    elif report.already_applied:
        console.print("already applied: nothing to do")
    elif not report.ok:
        console.print("[red]not applied:[/red] some hunks fail; nothing was written")
    elif report.dry_run:
        console.print("dry run: the patch applies; nothing was written")
    else:
        console.print("applied")


__all__ = ["apply_command"]
