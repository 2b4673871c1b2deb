"""``patchd demo``: the whole pipeline on the bundled fixture fleet, in a scratch folder.

Build three minimal security bundles from fixture release tarballs (WordPress-, TYPO3-
and Roundcube-shaped), generate a fleet of accounts with installations of every family,
scan it, roll every bundle out, roll one out again, and print the lists support works
from. Everything happens below one folder; nothing else on the machine is touched.

The demo's own work goes to ``<folder>/demo/`` (its ledger, bundles, fleet and backups).
With ``tour=True`` (``patchd demo --keep``) the folder also gets the inputs of README.md's
tour, untouched by the demo: the WordPress release tarballs, ``rules.yaml``,
``matrices/wordpress.yaml``, a fresh fleet (``accounts.yaml``, ``accounts/``) and an empty
ledger in ``.patchd/``, so every tour command runs verbatim there.

NOTE: the demo needs only Python (issue 17): without ``php`` on PATH the bundles are built
with ``--no-lint`` and one line says so; the fleet's accounts name no PHP binary, so the
rollouts lint nothing either.
"""

from __future__ import annotations

import shlex
import shutil
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from patchd.bundle.manifest import load_bundle
from patchd.inventory import load_inventory
from patchd.ledger.db import open_ledger
from patchd.outcomes import Outcome
from patchd.report.lists import FAILURE_OUTCOMES, report_data
from patchd.rollout.run import RolloutOptions, run_rollout
from patchd.scanner import run_scan
from patchd_fixtures.bundles import RECIPES, RULES, build_args
from patchd_fixtures.fleet import generate_fleet
from patchd_fixtures.releases import write_release_archive

MATRICES = RULES.parent / "matrices"

FAMILIES = ("wordpress", "typo3", "roundcube")
#: NOTE: the demo's security team raises the WordPress patch's minimum PHP to 7.4, so the
#: fleet's PHP 7.2 accounts show how php-incompatible looks.
DEMO_MIN_PHP = {"wordpress": "7.4"}
DEFAULT_ACCOUNTS = 60
DEFAULT_SEED = 3
#: The size of the tour's fleet (README.md's run numbers and account ids depend on it).
TOUR_ACCOUNTS = 60
#: The line printed when the demo runs without PHP.
NO_PHP_NOTE = (
    "PHP checks skipped: no 'php' on PATH, so patched files are not linted with 'php -l' "
    "and the dependency closure check does not run (bundles built with --no-lint). To "
    "enable them: apt-get install php-cli"
)


@dataclass
class DemoResult:
    """What the demo did: its runs and every outcome seen."""

    workdir: Path
    ledger: Path
    inventory: Path
    php_checked: bool = True
    tour: bool = False
    bundles: list[Path] = field(default_factory=list)
    runs: list[int] = field(default_factory=list)
    outcomes: Counter[str] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)


def _build(family: str, workdir: Path, console: Console, *, lint: bool) -> Path:
    from patchd.cli.main import cli

    args = build_args(family, workdir / "releases", workdir / "git", workdir / "patches")
    if family in DEMO_MIN_PHP:
        args[args.index("--min-php") + 1] = DEMO_MIN_PHP[family]
    if not lint:
        args.append("--no-lint")
    shown = [a.replace(str(workdir) + "/", "") for a in args]
    console.print(f"[dim]$ patchd build {shlex.join(shown)}[/dim]")
    code = cli.main(["build", *args], prog_name="patchd", standalone_mode=False)
    if code not in (None, 0):
        raise click.ClickException(f"building the {family} bundle failed (exit {code})")
    return workdir / "patches" / RECIPES[family][0]


def _summary_table(title: str, summary: dict[str, int]) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("outcome")
    table.add_column("installations", justify="right")
    for outcome in Outcome:
        if summary.get(outcome.value):
            table.add_row(outcome.value, str(summary[outcome.value]))
    return table


def run_demo(
    workdir: Path,
    *,
    accounts: int = DEFAULT_ACCOUNTS,
    seed: int = DEFAULT_SEED,
    console: Console | None = None,
    tour: bool = False,
    php: str | None = "php",
) -> DemoResult:
    """Run the pipeline below ``workdir/demo`` (created if missing) and print what happens;
    with ``tour``, also lay out README.md's tour in ``workdir``. ``php``: the binary to look
    for on PATH (None: act as if there was none)."""
    console = console or Console()
    top = workdir
    workdir = top / "demo"
    workdir.mkdir(parents=True, exist_ok=True)
    ledger_path = workdir / "ledger.db"
    lint = php is not None and shutil.which(php) is not None
    result = DemoResult(top, ledger_path, workdir / "fleet" / "accounts.yaml", php_checked=lint)
    backups = workdir / "backups"
    backups.mkdir(mode=0o700, exist_ok=True)
    backups.chmod(0o700)

    console.rule("1/5 build: minimal security bundles from two release tarballs each")
    if not lint:
        console.print(NO_PHP_NOTE, markup=False)
    bundles = [_build(family, workdir, console, lint=lint) for family in FAMILIES]
    result.bundles = bundles

    console.rule(f"2/5 fleet: {accounts} customer accounts on two hosts")
    fleet = generate_fleet(workdir / "fleet", accounts, seed=seed, hosts=["web01", "web02"])
    inventory_path = fleet / "accounts.yaml"
    inventory = load_inventory(inventory_path)
    console.print(f"inventory: {inventory_path.relative_to(workdir)}")

    with open_ledger(ledger_path) as ledger:
        console.rule("3/5 scan: every installation in every account")
        console.print("[dim]$ patchd scan --accounts fleet/accounts.yaml[/dim]")
        scan = run_scan(inventory, ledger, inventory_path=inventory_path)
        found = Counter(f"{i.cms} {i.version}" for i in scan.installations)
        table = Table(title=f"scan {scan.scan_id}", title_justify="left")
        table.add_column("installation")
        table.add_column("count", justify="right")
        for name, count in sorted(found.items()):
            table.add_row(name, str(count))
        console.print(table)

        console.rule("4/5 rollout: dry-run everywhere, apply where the dry run succeeded")
        options = RolloutOptions(backup_dir=str(backups))
        for path in [*bundles, bundles[0]]:
            bundle = load_bundle(path)
            again = len(result.runs) >= len(bundles)
            console.print(
                f"[dim]$ patchd rollout patches/{bundle.id} --accounts fleet/accounts.yaml "
                f"--scan {scan.scan_id} --yes[/dim]"
                + ("   (the same bundle again)" if again else "")
            )
            report = run_rollout(
                bundle,
                inventory,
                ledger,
                inventory_path=inventory_path,
                options=options,
                scan_id=scan.scan_id,
            )
            result.runs.append(report.run_id)
            result.outcomes.update(report.summary)
            console.print(_summary_table(f"run {report.run_id}: {bundle.id}", report.summary))

        console.rule("5/5 report: what support works from")
        for run_id in result.runs[: len(bundles)]:
            data = report_data(ledger, run_id)
            failures = [r for r in data["results"] if r["outcome"] in FAILURE_OUTCOMES]
            skipped = [r for r in data["results"] if r["outcome"] == Outcome.SKIPPED]
            for r in data["results"]:
                if r["reason"]:
                    result.reasons[r["reason"]] += 1
            rate = data["success_rate"]
            title = f"run {run_id} ({data['bundle']}): success rate " + (
                f"{rate:.0%}" if rate is not None else "n/a"
            )
            table = Table(title=title, title_justify="left")
            for column in ("account", "customer", "path", "outcome", "explanation"):
                table.add_column(column, overflow="fold")
            for r in failures + skipped:
                table.add_row(
                    r["account"],
                    r["customer"],
                    r["path"] or ".",
                    r["outcome"],
                    r.get("explanation") or r["detail"] or "",
                )
            console.print(table)
    if tour:
        prepare_tour(top)
        result.tour = True
    return result


def prepare_tour(folder: Path) -> None:
    """Lay out README.md's tour in ``folder``: release tarballs, rules, matrix, a fresh
    fleet and an empty ledger (``.patchd/``), none of them touched by the demo.

    NOTE: the tour's fleet is always the same (:data:`TOUR_ACCOUNTS`, :data:`DEFAULT_SEED`)
    whatever ``--accounts``/``--seed`` the demo ran with: README.md names its accounts."""
    accounts, seed = TOUR_ACCOUNTS, DEFAULT_SEED
    for version in ("6.4.0", "6.4.1", "6.4.2", "6.4.3"):
        write_release_archive("wordpress", version, folder)
    shutil.copyfile(RULES / f"{RECIPES['wordpress'][0]}.yaml", folder / "rules.yaml")
    (folder / "matrices").mkdir(exist_ok=True)
    shutil.copyfile(MATRICES / "wordpress.yaml", folder / "matrices" / "wordpress.yaml")
    generate_fleet(folder, accounts, seed=seed, hosts=["web01", "web02"])
    # NOTE: the tour's commands find this ledger from the folder (and its subfolders),
    # whatever ledger a parent folder holds.
    open_ledger(folder / ".patchd" / "ledger.db").close()
