"""``patchd build OLD NEW``: diff two releases, keep the security hunks, write a bundle."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import click

from patchd.bundle.builder import SEVERITIES, BuildOptions, build_bundle
from patchd.bundle.classifiers import DEFAULT_THRESHOLD
from patchd.bundle.review import make_conflict_resolver, make_reviewer
from patchd.cli.output import make_progress
from patchd.errors import UsageError

_PATH = click.Path(exists=False, path_type=Path)


@click.command(name="build")
@click.argument("old", type=_PATH)
@click.argument("new", type=_PATH)
@click.option("--git", "git_repo", type=_PATH, help="Git repository of the CMS (attribution).")
@click.option("--range", "git_range", help="Revision range of the release, OLDREF..NEWREF.")
@click.option("--git-prefix", default="", help="Release folder the repository holds at its root.")
@click.option("--security-pattern", help="Regex for security commit messages (default built in).")
@click.option("--rules", type=_PATH, help="Rules file (YAML): include/exclude with comments.")
@click.option("--auto", is_flag=True, help="Keep hunks whose heuristic score reaches --threshold.")
@click.option("--threshold", type=float, default=DEFAULT_THRESHOLD, show_default=True)
@click.option(
    "--review",
    is_flag=True,
    help="Decide undecided hunks and resolve backport conflicts interactively (needs --rules).",
)
@click.option(
    "--backport", "backports", multiple=True, type=_PATH, help="Older release to port to."
)
@click.option("--fuzz", type=int, default=0, show_default=True, help="Fuzz for backports only.")
@click.option(
    "--sibling",
    "siblings",
    nargs=2,
    multiple=True,
    type=_PATH,
    metavar="OLD2 NEW2",
    help="Another branch's release pair of the same security day (repeatable): a change "
    "they share is security.",
)
@click.option(
    "--min-siblings",
    type=int,
    help="How many sibling pairs must share a change (default: a majority of them).",
)
@click.option(
    "--undecided",
    type=click.Choice(["keep", "drop"]),
    help="Decide every hunk no classifier decided (recorded in the manifest). Without it, "
    "undecided hunks stop the build (exit 1) and are listed.",
)
@click.option("--id", "bundle_id", help="Bundle id (default: <cms>-<fixed version>).")
@click.option("--title", help="Bundle title.")
@click.option("--cms", help="Expected CMS (checked against the detected one).")
@click.option("--component", default="core", show_default=True)
@click.option(
    "--affected",
    help="Affected versions, e.g. 12.4.0-12.4.10 (default: OLD's branch up to OLD).",
)
@click.option("--fixed-in", help="Version with the fix (default: NEW's version).")
@click.option("--advisory", "advisories", multiple=True, help="Advisory or CVE id (repeatable).")
@click.option("--severity", type=click.Choice(SEVERITIES), default="high", show_default=True)
@click.option("--min-php", help="Minimum PHP version (default: the release's required PHP).")
@click.option("--summary-de", help="Customer-facing summary, German.")
@click.option("--summary-en", help="Customer-facing summary, English.")
@click.option("--created-at", help="Manifest time, ISO 8601 (default: SOURCE_DATE_EPOCH or now).")
@click.option("--php", help="PHP binary for 'php -l' (default: php on PATH).")
@click.option(
    "--no-lint",
    is_flag=True,
    help="Do not lint patched PHP files (no PHP needed); the manifest records the skip.",
)
@click.option("--workdir", type=_PATH, help="Where archives are extracted (default: temporary).")
@click.option(
    "--out", type=_PATH, default=Path("patches"), show_default=True, help="Bundle parent folder."
)
def build_command(
    old: Path,
    new: Path,
    git_repo: Path | None,
    git_range: str | None,
    git_prefix: str,
    security_pattern: str | None,
    rules: Path | None,
    auto: bool,
    threshold: float,
    review: bool,
    backports: tuple[Path, ...],
    fuzz: int,
    siblings: tuple[tuple[Path, Path], ...],
    min_siblings: int | None,
    undecided: str | None,
    bundle_id: str | None,
    title: str | None,
    cms: str | None,
    component: str,
    affected: str | None,
    fixed_in: str | None,
    advisories: tuple[str, ...],
    severity: str,
    min_php: str | None,
    summary_de: str | None,
    summary_en: str | None,
    created_at: str | None,
    php: str | None,
    no_lint: bool,
    workdir: Path | None,
    out: Path,
) -> None:
    """Diff two releases, keep the security hunks, write a bundle under --out."""
    if no_lint and php is not None:
        raise UsageError("--no-lint and --php contradict each other: give one")
    if review and rules is None:
        raise UsageError("--review records decisions as rules: give --rules FILE")
    if rules is not None and not review and not rules.is_file():
        raise UsageError(f"--rules: no such file: {rules}")
    pattern = None
    if security_pattern is not None:
        try:
            pattern = re.compile(security_pattern, re.IGNORECASE)
        except re.error as exc:
            raise UsageError(f"--security-pattern: invalid regular expression: {exc}") from None
    opts = BuildOptions(
        old=old,
        new=new,
        out=out,
        git_repo=git_repo,
        git_range=git_range,
        git_prefix=git_prefix,
        rules=rules,
        auto=auto,
        threshold=threshold,
        backports=backports,
        fuzz=fuzz,
        id=bundle_id,
        title=title,
        cms=cms,
        component=component,
        affected=affected,
        fixed_in=fixed_in,
        advisories=advisories,
        severity=severity,
        min_php=min_php,
        summary_de=summary_de,
        summary_en=summary_en,
        created_at=created_at,
        php=php,
        lint=not no_lint,
        workdir=workdir,
        undecided=undecided or "refuse",  # type: ignore[arg-type]
        siblings=tuple(siblings),
        min_siblings=min_siblings,
        **({"security_pattern": pattern} if pattern is not None else {}),
    )
    reviewer = resolver = None
    if review:
        assert rules is not None
        if not rules.exists():
            rules.write_text("", encoding="utf-8")
        # NOTE: sys.stdin, read when the review starts: CliRunner swaps it in tests
        # (Click 8.5 warns that click.get_text_stream is deprecated).
        stdin = sys.stdin

        def read_line() -> str | None:
            line = stdin.readline()
            return line if line else None

        reviewer = make_reviewer(rules, read_line, lambda text: click.echo(text, nl=False))
        resolver = make_conflict_resolver(read_line, lambda text: click.echo(text, nl=False))
    result = build_bundle(
        opts, review=reviewer, resolve=resolver, progress=make_progress(not review)
    )
    summary = result.report.summary
    manual = [v for v in result.report.variants if v.status != "ok"]
    click.echo(
        f"bundle {result.manifest.id} written to {result.path}: "
        f"{summary['kept']} of {summary['hunks']} hunks kept "
        f"({summary['split']} split, {summary['undecided']} undecided dropped); "
        f"variants: {', '.join(v.versions for v in result.manifest.variants)}"
    )
    click.echo(
        f"affected versions: {result.manifest.affected}"
        + ("" if affected else " (OLD's branch up to OLD; give --affected to change it)")
    )
    if result.report.uncovered:
        click.echo(
            f"warning: affected {result.manifest.affected}, but no variant covers "
            f"{', '.join(result.report.uncovered)}: their installations get dry-run-failed "
            "(no-variant: update needed); add --backport RELEASE for each to patch them",
            err=True,
        )
    if result.report.siblings is not None:
        click.echo(result.report.siblings.describe())
    for link in result.report.links:
        click.echo(f"manual: {link.path}: {link.note}", err=True)
    m = result.manifest
    if m.undecided is not None:
        click.echo(
            f"{len(m.undecided_hunks)} undecided hunk(s) "
            f"{ {'keep': 'kept', 'drop': 'dropped'}[m.undecided] } by --undecided {m.undecided} "
            f"(recorded in the manifest): {', '.join(m.undecided_hunks)}",
            err=True,
        )
    if no_lint:
        click.echo("php -l skipped (--no-lint): patched PHP files were not linted", err=True)
    closure = result.report.closure
    if closure is not None and closure.status == "skipped":
        click.echo(
            f"closure check skipped ({closure.note}): kept hunks may use symbols only dropped "
            "hunks define; build on a machine with PHP before publishing",
            err=True,
        )
    for v in manual:
        click.echo(
            f"backport {v.version}: needs manual work for "
            + "; ".join(f"{m.hunk} ({m.reason})" for m in v.manual),
            err=True,
        )
