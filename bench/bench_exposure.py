"""Benchmark: exposure of 50,000 installations against 20,000 generated advisories.

Generates (seeded) a ledger with one scan of ``--installations`` synthetic installations
(WordPress, TYPO3, Drupal, Joomla, Roundcube in realistic versions, with plugins,
extensions and modules), and ``--advisories`` advisories half as a FriendsOfPHP checkout
(YAML), half as OSV JSON: 1 % for the cores, 94 % spread over 11,000 plugins, extensions
and modules (installations use the 2,800 most popular of them), 5 % for packages patchd
does not map; in every style (composer constraints
in every style: ranges, ``||``, ``^``, ``~``, wildcards; OSV introduced/fixed and
last_affected events). It imports them (timed, reported), then times, each as a fresh
process ``--runs`` times, with wall time and peak RSS:

- the exposure itself: ``patchd exposure --scan ID --recompute --by customer`` (match,
  mitigation, store the scan's exposure, per-customer summary): the target;
- the full listing of the stored exposure: ``patchd exposure --scan ID --format json``.

Targets (issue 15): under 10 s, under 300 MB.

Usage: ``python bench/bench_exposure.py [--installations N] [--advisories N] [--runs 3]
[--base /dev/shm] [--keep] [--profile FILE]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import yaml

from patchd.ledger import scans as ledger_scans
from patchd.ledger.db import open_ledger
from patchd.ledger.models import Extension, InstallationRecord, ScanStatus

TARGET_SECONDS = 10.0
TARGET_MB = 300.0

#: cms -> (composer package, branches (major.minor), patch levels, extension kind, vendor)
CORES = {
    "wordpress": ("johnpbloch/wordpress-core", [f"{m}.{n}" for m in (4, 5, 6) for n in range(10)]),
    "typo3": ("typo3/cms-core", ["9.5", "10.4", "11.5", "12.4", "13.4"]),
    "drupal": ("drupal/core", ["9.4", "9.5", "10.0", "10.1", "10.2", "10.3", "11.0"]),
    "joomla": ("joomla/joomla-cms", ["3.9", "3.10", "4.0", "4.1", "4.2", "4.3", "4.4", "5.0"]),
    "roundcube": ("roundcube/roundcubemail", ["1.4", "1.5", "1.6"]),
}
SHARE = {"wordpress": 0.45, "typo3": 0.2, "drupal": 0.15, "joomla": 0.12, "roundcube": 0.08}
#: cms -> (package prefix, extension kind, packages with advisories, packages installed):
#: advisories spread over many packages, installations use the popular part of them.
EXTENSIONS = {
    "wordpress": ("wpackagist-plugin/", "plugin", 8000, 2000),
    "typo3": ("typo3-ter/", "extension", 1500, 400),
    "drupal": ("drupal/", "module", 1500, 400),
}


def _version(rnd: random.Random, branch: str) -> str:
    return f"{branch}.{rnd.randint(0, 40)}"


def _installations(rnd: random.Random, n: int) -> list[InstallationRecord]:
    cms_names = list(SHARE)
    weights = [SHARE[c] for c in cms_names]
    out = []
    for i in range(n):
        cms = rnd.choices(cms_names, weights)[0]
        _, branches = CORES[cms]
        version = None if rnd.random() < 0.01 else _version(rnd, rnd.choice(branches))
        extensions: list[Extension] = []
        if cms in EXTENSIONS:
            _, kind, _, popular = EXTENSIONS[cms]
            for slug in rnd.sample(range(popular), rnd.randint(0, 8)):
                ext_version = f"{rnd.randint(1, 5)}.{rnd.randint(0, 9)}.{rnd.randint(0, 20)}"
                extensions.append(Extension(name=f"ext-{slug}", version=ext_version, kind=kind))
        out.append(
            InstallationRecord(
                account=f"p{i // 2:06d}",
                host=f"web{i % 8:02d}",
                path="html" if i % 2 == 0 else "html/blog",
                cms=cms,
                version=version,
                version_error=None if version else "unreadable",
                extensions=tuple(extensions),
            )
        )
    return out


def _constraint(rnd: random.Random, branches: list[str]) -> tuple[str, dict[str, list[str]]]:
    """A composer constraint for one advisory and its FriendsOfPHP branches."""
    chosen = rnd.sample(branches, min(len(branches), rnd.randint(1, 3)))
    out: dict[str, list[str]] = {}
    for b in chosen:
        fixed = rnd.randint(1, 40)
        style = rnd.random()
        if style < 0.6:
            out[f"{b}.x"] = [f">={b}.0", f"<{b}.{fixed}"]
        elif style < 0.75:
            out[f"{b}.x"] = [f"~{b}.0,<{b}.{fixed}"]
        elif style < 0.9:
            out[f"{b}.x"] = [f"{b}.* <{b}.{fixed}"]
        else:
            out[f"{b}.x"] = [f"<{b}.{fixed} || >={b}.{fixed + 3},<{b}.{fixed + 5}"]
    return ",".join(out), out


def _ext_branches() -> list[str]:
    return [f"{a}.{b}" for a in range(1, 6) for b in range(10)]


def _targets(rnd: random.Random, n: int) -> list[tuple[str, list[str]]]:
    """(package, branches) per advisory: 1 % cores, 94 % extensions, 5 % unmapped."""
    out = []
    for _ in range(n):
        r = rnd.random()
        if r < 0.01:
            cms = rnd.choice(list(CORES))
            out.append((CORES[cms][0], CORES[cms][1]))
        elif r < 0.95:
            cms = rnd.choice(list(EXTENSIONS))
            prefix, _, pool, _ = EXTENSIONS[cms]
            out.append((f"{prefix}ext-{rnd.randrange(pool)}", _ext_branches()))
        else:
            out.append((f"vendor{rnd.randrange(100)}/lib{rnd.randrange(50)}", ["1.0", "2.0"]))
    return out


def _write_advisories(rnd: random.Random, n: int, fop: Path, osv: Path) -> None:
    osv.mkdir(parents=True)
    for i, (package, branches) in enumerate(_targets(rnd, n)):
        if i % 2 == 0:
            _, per_branch = _constraint(rnd, branches)
            path = fop / package / f"BENCH-{i:06d}.yaml"
            path.parent.mkdir(parents=True, exist_ok=True)
            data = {
                "title": f"Generated advisory {i}",
                "link": f"https://advisories.example/{i}",
                "cve": f"CVE-2098-{i:05d}",
                "branches": {
                    name: {"time": "2098-01-01 00:00:00", "versions": versions}
                    for name, versions in per_branch.items()
                },
                "reference": f"composer://{package}",
            }
            path.write_text(yaml.safe_dump(data, sort_keys=False))
            continue
        events: list[dict[str, str]] = []
        for b in rnd.sample(branches, min(len(branches), rnd.randint(1, 2))):
            events.append({"introduced": f"{b}.0"})
            key = "fixed" if rnd.random() < 0.8 else "last_affected"
            events.append({key: f"{b}.{rnd.randint(1, 40)}"})
        record = {
            "id": f"GHSA-bench-{i:06d}",
            "modified": "2098-01-01T00:00:00Z",
            "aliases": [f"CVE-2098-{i:05d}"],
            "summary": f"Generated advisory {i}",
            "affected": [
                {
                    "package": {"ecosystem": "Packagist", "name": package},
                    "ranges": [{"type": "ECOSYSTEM", "events": events}],
                }
            ],
            "database_specific": {"severity": rnd.choice(["LOW", "MODERATE", "HIGH", "CRITICAL"])},
        }
        (osv / f"GHSA-bench-{i:06d}.json").write_text(json.dumps(record))


def _patchd(ledger: Path, *args: str) -> float:
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "patchd.cli.main", "--ledger", str(ledger), *args],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - start


def _measure(ledger: Path, scan: int, out: Path, mode: str, profile: Path | None) -> None:
    """One exposure command in this (fresh) process; prints seconds and peak RSS.

    ``compute``: ``exposure --scan ID --recompute --by customer -o OUT`` (match every
    installation and extension, decide mitigation, store the scan's exposure, summarise
    per customer); ``listing``: ``exposure --scan ID --format json -o OUT`` (the stored
    exposure read back and written as the full JSON listing).
    """
    from click.testing import CliRunner

    from patchd.cli.main import cli

    argv = ["--ledger", str(ledger), "exposure", "--scan", str(scan), "-o", str(out)]
    argv += ["--bundles", str(out.parent)]
    if mode == "compute":
        argv += ["--recompute", "--by", "customer", "--format", "csv"]
    else:
        argv += ["--format", "json"]
    before = resource.getrusage(resource.RUSAGE_SELF)
    cpu_before = before.ru_utime + before.ru_stime
    start = time.perf_counter()
    if profile is not None:
        import cProfile

        cProfile.runctx("CliRunner().invoke(cli, argv)", globals(), locals(), str(profile))
    else:
        res = CliRunner().invoke(cli, argv)
        assert res.exit_code == 0, res.output
    seconds = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = usage.ru_utime + usage.ru_stime - cpu_before
    print(json.dumps({"seconds": seconds, "cpu": cpu, "peak_mb": usage.ru_maxrss / 1024}))


def _runs(ledger: Path, scan: int, out: Path, mode: str, n: int, profile: Path | None):
    runs = []
    for run in range(n):
        child = [sys.executable, __file__, "--measure", str(ledger), str(scan), str(out), mode]
        if profile and run == n - 1:
            child += ["--profile", str(profile)]
        m = json.loads(subprocess.run(child, check=True, capture_output=True, text=True).stdout)
        runs.append(m)
        print(
            f"{mode} run {run + 1}: {m['seconds']:.2f} s wall, {m['cpu']:.2f} s CPU, "
            f"{m['peak_mb']:.0f} MB",
            file=sys.stderr,
        )
    return statistics.median(r["seconds"] for r in runs), max(r["peak_mb"] for r in runs), runs


def _load() -> str:
    """The load average while measuring (a shared machine slows wall times)."""
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--installations", type=int, default=50_000)
    parser.add_argument("--advisories", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--base", type=Path, default=Path("/dev/shm"))
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--profile", type=Path, default=None, help="cProfile the last run")
    parser.add_argument("--measure", nargs=4, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.measure is not None:
        ledger, scan, out, mode = args.measure
        _measure(Path(ledger), int(scan), Path(out), mode, args.profile)
        return 0
    base = args.base if args.base.is_dir() else Path(tempfile.gettempdir())
    work = Path(tempfile.mkdtemp(prefix="patchd-bench-exposure-", dir=base))
    try:
        rnd = random.Random(args.seed)
        start = time.perf_counter()
        ledger_path = work / "ledger.db"
        with open_ledger(ledger_path) as ledger:
            scan = ledger_scans.start_scan(
                ledger, inventory_path=str(work / "none.yaml"), inventory_sha256="0" * 64,
                accounts=args.installations // 2,
            )  # fmt: skip
            records = _installations(rnd, args.installations)
            for i in range(0, len(records), 5000):
                with ledger.transaction():
                    ledger_scans.add_installations(ledger, scan, records[i : i + 5000])
            ledger_scans.finish_scan(ledger, scan, ScanStatus.FINISHED)
        extensions = sum(len(r.extensions) for r in records)
        del records
        _write_advisories(rnd, args.advisories, work / "friendsofphp", work / "osv")
        generated = time.perf_counter() - start
        imported = _patchd(
            ledger_path, "advisories", "import", str(work / "friendsofphp"), str(work / "osv")
        )
        (work / "bundles").mkdir()
        summary = work / "bundles" / "customers.csv"
        listing = work / "bundles" / "exposure.json"
        median, peak, runs = _runs(ledger_path, scan, summary, "compute", args.runs, args.profile)
        l_median, l_peak, l_runs = _runs(ledger_path, scan, listing, "listing", args.runs, None)
        rows = len(json.loads(listing.read_text())["exposure"])
        ok = median < TARGET_SECONDS and peak < TARGET_MB
        print(f"date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}")
        print(f"machine: {' '.join(platform.uname())}")
        print(f"nproc: {os.cpu_count()}  python: {platform.python_version()}  fs: {base}")
        print(f"installations: {args.installations} with {extensions} extensions")
        print(f"advisories: {args.advisories} (generated with the scan in {generated:.1f} s)")
        print(f"import (FriendsOfPHP + OSV, one process): {imported:.1f} s")
        print(f"exposure rows: {rows}")
        for name, (med, pk, rs) in (
            ("compute + store + by customer", (median, peak, runs)),
            ("stored exposure as JSON listing", (l_median, l_peak, l_runs)),
        ):
            wall = [round(r["seconds"], 2) for r in rs]
            cpu = [round(r["cpu"], 2) for r in rs]
            print(f"{name}: median {med:.2f} s wall of {wall}, CPU {cpu} s, peak {pk:.0f} MB")
        print(f"load average (1, 5, 15 min) at the end: {_load()}")
        print(
            f"targets (<{TARGET_SECONDS:.0f} s, <{TARGET_MB:.0f} MB): {'met' if ok else 'MISSED'}"
        )
        return 0 if ok else 1
    finally:
        if args.keep:
            print(f"kept: {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
