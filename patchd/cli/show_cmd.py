"""``patchd show BUNDLE``: the manifest and every hunk kept or dropped, with its reason.

The bundle is loaded with its digest checked (a tampered bundle is refused). Hunks come
from ``build-report.json``; on a terminal each hunk is syntax-highlighted (rich
``Syntax`` with the diff lexer), in pipes it is printed as plain text.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import click
from rich.syntax import Syntax

from patchd.bundle.manifest import BUILD_REPORT, Manifest, Variant, load_bundle
from patchd.bundle.report import BuildReport, ClosureEntry, HunkEntry, load_report
from patchd.cli.output import stdout_console
from patchd.versions import Version, branch_start


@click.command(name="show")
@click.argument("bundle", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(("table", "json")),
    default="table",
    show_default=True,
    help="Output format.",
)
@click.option("--json", "as_json", is_flag=True, help="Short for --format json.")
@click.option("--kept", "only_kept", is_flag=True, help="Only the kept hunks.")
def show_command(bundle: Path, fmt: str, as_json: bool, only_kept: bool) -> None:
    """Show a bundle's manifest and every hunk kept or dropped, with the reason."""
    loaded = load_bundle(bundle)
    report = load_report(bundle / BUILD_REPORT)
    hunks = [h for h in report.hunks if h.decision == "kept" or not only_kept]
    if as_json or fmt == "json":
        full = report.to_json()
        data = {
            "manifest": loaded.manifest.model_dump(mode="json"),
            "summary": full["summary"],
            "hunks": [e for e in full["hunks"] if e["decision"] == "kept" or not only_kept],
            "variants": full["variants"],
            "validation": full["validation"],
            "uncovered": full["uncovered"],
            **({"siblings": full["siblings"]} if "siblings" in full else {}),
            "closure": full.get("closure"),
        }
        click.echo(json.dumps(data, indent=2, ensure_ascii=False))
        return
    _print_table(loaded.manifest, report, hunks)


def _print_table(manifest: Manifest, report: BuildReport, hunks: list[HunkEntry]) -> None:
    console = stdout_console()
    fancy = console.is_terminal

    def out(text: str, style: str | None = None) -> None:
        if fancy:
            console.print(text, style=style, markup=False, highlight=False)
        else:
            click.echo(text)

    out(f"bundle {manifest.id}: {manifest.title}", "bold")
    out(f"  cms: {manifest.cms} ({manifest.component})  severity: {manifest.severity}")
    out(f"  affected: {manifest.affected}  fixed in: {manifest.fixed_in or '-'}")
    out(
        f"  min php: {manifest.min_php or '-'}  advisories: {', '.join(manifest.advisories) or '-'}"
    )
    out(
        f"  built from {report.old.source} ({report.old.version}) and "
        f"{report.new.source} ({report.new.version}) at {manifest.created_at}"
    )
    if manifest.undecided is not None:
        out(
            f"  undecided hunks {manifest.undecided} by --undecided {manifest.undecided}: "
            f"{', '.join(manifest.undecided_hunks)}",
            "yellow",
        )
    if manifest.skipped_checks:
        out(f"  not checked: {', '.join(manifest.skipped_checks)} (built with --no-lint)", "yellow")
    out(f"  summary (en): {manifest.summary.en}")
    out(f"  summary (de): {manifest.summary.de}")
    for branch, variants in _by_branch(manifest.variants):
        out(f"  branch {branch}:")
        for v in variants:
            how = f", {v.method}" if v.method else ""
            out(f"    variant {v.file}: versions {v.versions}, {len(v.files)} files{how}")
    if report.uncovered:
        out(
            f"  no variant (installations: dry-run-failed, no-variant): "
            f"{', '.join(report.uncovered)}",
            "yellow",
        )
    if report.siblings is not None:
        out(f"  {report.siblings.describe()}")
    for link in report.links:
        out(f"  manual: {link.path}: {link.note}", "yellow")
    for v in report.variants:
        for path, how in sorted(v.merged.items()):
            out(f"  backport {v.version}: {path} ported by {how}")
        if v.status != "ok":
            out(f"  backport {v.version}: needs manual work", "yellow")
            for m in v.manual:
                out(f"    {m.hunk}: {m.reason}", "yellow")
                if m.ours or m.theirs:
                    out(_indent(f"release {v.version} has:", m.ours), "yellow")
                    out(_indent("the fix (patched OLD) has:", m.theirs), "yellow")
    if report.closure is not None:
        for line, style in _closure_lines(report.closure):
            out(line, style)
    s = report.summary
    failed = [c for c in report.validation if not c.ok]
    out(
        f"  hunks: {s['hunks']} in the release diff, {s['kept']} kept ({s['split']} split), "
        f"{s['dropped']} dropped ({s['undecided']} undecided); validation: "
        f"{len(report.validation) - len(failed)} of {len(report.validation)} checks passed"
    )
    for h in hunks:
        out("")
        style = "bold green" if h.decision == "kept" else "bold red"
        out(f"{h.decision.upper()} {h.id}", style)
        extra = "" if h.verdict != "undecided" else " (undecided: dropped)"
        out(f"  {h.classifier}: {h.reason}{extra}")
        if h.rule:
            out(f"  rule: {h.rule}")
        if h.commits:
            out(f"  commits: {', '.join(h.commits)}")
        if h.score is not None:
            out(f"  score: {h.score:.1f}")
        for sug in h.suggestions:
            out(f"  suggestion from {sug.classifier}: {sug.reason}")
        if h.siblings is not None and report.siblings is not None:
            n = len(report.siblings.releases)
            where = ", ".join(h.siblings) if h.siblings else "none"
            out(f"  found in siblings: {where} ({len(h.siblings)} of {n})")
        if not h.text:
            out(f"  ({h.file_kind} change without text hunks)")
        elif fancy:
            console.print(Syntax(h.text.rstrip("\n"), "diff", theme="ansi_dark", word_wrap=True))
        else:
            click.echo(h.text, nl=False)


def _by_branch(variants: Sequence[Variant]) -> list[tuple[str, list[Variant]]]:
    """Variants grouped by branch (``6.4``, ``6.3``, ...), newest branch first."""
    groups: dict[Version, list[Variant]] = {}
    for v in variants:
        groups.setdefault(branch_start(str(v.version_set.ranges[0].low)), []).append(v)
    return [
        (str(start).removesuffix(".0"), groups[start])
        for start in sorted(groups, key=lambda b: b.key, reverse=True)
    ]


def _closure_lines(c: ClosureEntry) -> list[tuple[str, str | None]]:
    """The closure check in words (issue 12, item 4)."""
    if c.status == "skipped":
        return [(f"  closure: not checked ({c.note})", "yellow")]
    lines: list[tuple[str, str | None]] = [
        (
            f"  closure: ok: no kept hunk uses a symbol that only dropped hunks define "
            f"({len(c.files)} PHP files read, {c.references} new references, "
            f"{len(c.dropped)} definitions left out with dropped hunks"
            + (f"; variants {', '.join(c.variants)} checked too" if c.variants else "")
            + ")",
            None,
        )
    ]
    for d in c.dropped[:10]:
        lines.append((f"    left out: {d.symbol} ({d.hunk})", None))
    if len(c.dropped) > 10:
        lines.append((f"    ... and {len(c.dropped) - 10} more (build-report.json)", None))
    if c.unreadable:
        lines.append((f"  closure: PHP could not read {', '.join(c.unreadable)}", "yellow"))
    return lines


def _indent(title: str, text: str) -> str:
    lines = text.splitlines() or ["(nothing)"]
    return "\n".join([f"      {title}", *(f"        | {ln}" for ln in lines)])
