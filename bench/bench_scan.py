"""Benchmark: a local scan of a generated fleet (default 10,000 accounts).

Generates the fleet on ``/dev/shm`` (tmpfs: the benchmark measures the scanner, not the
disk), runs ``run_scan`` three times with every host ``local`` (the agent is a child
process), and prints the median wall time and the peak memory of the controller
(``RUSAGE_SELF``) and of the agent (``RUSAGE_CHILDREN``) separately. A plain
``find ACCOUNTS -name version.php`` over the same tree is timed as a baseline, as many
times as the scan, and the ratio of the medians is reported.

Targets: under 15 s, controller peak under 300 MB (issue 4); scan at most 1.5x ``find``
(issue 19: with the completeness guard and link resolution). ``--layouts`` plants the
nested and mixed layouts of issue 19 in the fleet (``generate_fleet(layouts=True)``).

Usage: ``python bench/bench_scan.py [--accounts N] [--runs 3] [--base /dev/shm] [--keep]
[--layouts] [--profile FILE]``.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from patchd.inventory import load_inventory
from patchd.ledger.db import open_ledger
from patchd.scanner import run_scan

TARGET_SECONDS = 15.0
TARGET_MB = 300.0
TARGET_RATIO = 1.5  # scan / find, medians


def _peak_mb(who: int) -> float:
    """Peak resident set size (ru_maxrss is in KiB on Linux) in MB."""
    return resource.getrusage(who).ru_maxrss / 1024


def _find_baseline(accounts: Path) -> tuple[float, int]:
    start = time.perf_counter()
    done = subprocess.run(
        ["find", str(accounts), "-name", "version.php"],
        capture_output=True,
        check=True,
    )
    return time.perf_counter() - start, len(done.stdout.splitlines())


def _one_scan(fleet: Path, run: int, profile: Path | None) -> tuple[float, int, int]:
    inventory_path = fleet / "accounts.yaml"
    start = time.perf_counter()
    inventory = load_inventory(inventory_path)
    with open_ledger(fleet / f"ledger-{run}.db") as ledger:
        profiler = cProfile.Profile() if profile else None
        if profiler:
            profiler.enable()
        result = run_scan(inventory, ledger, inventory_path=inventory_path)
        if profiler:
            profiler.disable()
            profiler.dump_stats(str(profile))
    return time.perf_counter() - start, len(result.installations), len(result.errors)


def _measure(fleet: Path, runs: int, profile: Path | None, first: int = 0) -> dict[str, object]:
    """The scans, run in a fresh process so its rusage holds nothing but the scans."""
    times: list[float] = []
    found = errors = 0
    for run in range(first, first + runs):
        last = run == first + runs - 1
        seconds, found, errors = _one_scan(fleet, run, profile if last else None)
        times.append(seconds)
        print(f"run {run + 1}: {seconds:.2f} s", file=sys.stderr)
    return {
        "times": times,
        "found": found,
        "errors": errors,
        "self_mb": _peak_mb(resource.RUSAGE_SELF),
        "child_mb": _peak_mb(resource.RUSAGE_CHILDREN),
    }


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print a Markdown-ready report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--base", type=Path, default=Path("/dev/shm"))
    parser.add_argument("--keep", action="store_true", help="keep the generated fleet")
    parser.add_argument("--layouts", action="store_true", help="plant issue 19's layouts")
    parser.add_argument("--profile", type=Path, default=None, help="cProfile the last run")
    parser.add_argument("--measure", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--first", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.measure is not None:
        print(json.dumps(_measure(args.measure, args.runs, args.profile, args.first)))
        return 0

    base = args.base if args.base.is_dir() else Path(tempfile.gettempdir())
    work = Path(tempfile.mkdtemp(prefix="patchd-bench-scan-", dir=base))
    try:
        start = time.perf_counter()
        fleet = work / "fleet"
        generator = [sys.executable, "-m", "patchd_fixtures.fleet", "--out", str(fleet)]
        subprocess.run(
            [*generator, "--accounts", str(args.accounts), "--hosts", "web01,web02"]
            + (["--layouts"] if args.layouts else []),
            check=True,
            stdout=subprocess.DEVNULL,
        )
        generated = time.perf_counter() - start
        strays = sum(
            len(a.get("unrecognised", []))
            for a in json.loads((fleet / "expected.json").read_text())["accounts"].values()
        )
        # NOTE: find and the scan take turns (find, scan, find, scan, ...) so that the
        # load of a shared machine falls on both alike. A child process per scan:
        # RUSAGE_SELF of this process would also count the fleet generator; the child's
        # RUSAGE_CHILDREN is then only the agent.
        finds: list[tuple[float, int]] = []
        scans: list[dict] = []
        for run in range(args.runs):
            finds.append(_find_baseline(fleet / "accounts"))
            child = [sys.executable, __file__, "--measure", str(fleet), "--runs", "1"]
            child += ["--first", str(run)]
            if args.profile and run == args.runs - 1:
                child += ["--profile", str(args.profile)]
            out = subprocess.run(child, check=True, stdout=subprocess.PIPE, text=True).stdout
            scans.append(json.loads(out))
        baseline, version_files = statistics.median(f[0] for f in finds), finds[0][1]
        times = [t for m in scans for t in m["times"]]
        m = {
            "found": scans[-1]["found"],
            "errors": scans[-1]["errors"],
            "self_mb": max(x["self_mb"] for x in scans),
            "child_mb": max(x["child_mb"] for x in scans),
        }
        median = statistics.median(times)
        ratio = median / baseline
        ok = median < TARGET_SECONDS and m["self_mb"] < TARGET_MB and ratio <= TARGET_RATIO
        print(f"date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}")
        print(f"machine: {' '.join(platform.uname())}")
        print(f"nproc: {os.cpu_count()}  python: {platform.python_version()}  fs: {base}")
        layouts = " with issue 19's layouts" if args.layouts else ""
        print(f"accounts: {args.accounts}{layouts} (fleet generated in {generated:.1f} s)")
        print(
            f"installations found: {m['found']}, scan errors: {m['errors']} "
            f"(planted stray markers: {strays})"
        )
        print(f"scan wall time: median {median:.2f} s of {[round(t, 2) for t in times]}")
        print(f"peak RSS controller (RUSAGE_SELF): {m['self_mb']:.0f} MB")
        print(f"peak RSS agent (RUSAGE_CHILDREN): {m['child_mb']:.0f} MB")
        print(
            f"baseline find -name version.php: median {baseline:.2f} s of "
            f"{[round(f[0], 2) for f in finds]} ({version_files} files)"
        )
        pairs = [round(t / f[0], 2) for t, f in zip(times, finds, strict=True)]
        print(f"ratio scan / find (medians): {ratio:.2f}x (per turn: {pairs})")
        print(
            f"targets (<{TARGET_SECONDS:.0f} s, <{TARGET_MB:.0f} MB, "
            f"<= {TARGET_RATIO}x find): {'met' if ok else 'MISSED'}"
        )
        return 0 if ok else 1
    finally:
        if args.keep:
            print(f"kept: {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
