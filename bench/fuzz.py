"""Longer fuzzing of the diff parser, the archive reader and the inventory loader.

    python bench/fuzz.py --minutes 10            # all three targets, round robin
    python bench/fuzz.py --minutes 2 --target parse --seed 1234

Runs the properties of ``tests/fuzz/props.py`` (the ones CI runs briefly, derandomized)
with fresh random seeds in rounds of ``--examples`` until the time is up. Every failure is
printed with its seed and the minimal input hypothesis shrank it to, and written to
``--out`` (default ``bench/fuzz-crashes/``) so it can become a regression test. Exit 1
when anything was found.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hypothesis import HealthCheck, given, seed, settings  # noqa: E402

from tests.fuzz import props  # noqa: E402

#: target name -> (strategy factory, check taking the drawn value)
TARGETS: dict[str, tuple[Callable[[], Any], Callable[[Any], None]]] = {
    "parse": (props.diff_inputs, props.check_parse),
    "archive": (props.archive_inputs, lambda case: props.check_archive(*case)),
    "inventory": (props.inventory_inputs, props.check_inventory),
}


def run_round(target: str, round_seed: int, examples: int) -> str | None:
    """One hypothesis run of ``examples`` inputs; the failure report, or None."""
    strategy, check = TARGETS[target]
    failing: list[Any] = []

    @seed(round_seed)
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        print_blob=True,
    )
    @given(strategy())
    def prop(value: Any) -> None:
        try:
            check(value)
        except BaseException:
            failing[:] = [value]
            raise

    try:
        prop()
    except Exception:
        return f"{traceback.format_exc()}\nminimal input: {failing[0]!r}"
    return None


def main(argv: list[str] | None = None) -> int:
    """Fuzz until the time is up; print a summary; exit 1 if a crash was found."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--target", choices=[*TARGETS, "all"], default="all")
    parser.add_argument("--examples", type=int, default=500, help="inputs per round")
    parser.add_argument("--seed", type=int, default=None, help="first round's seed")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "fuzz-crashes")
    args = parser.parse_args(argv)
    targets = list(TARGETS) if args.target == "all" else [args.target]
    rng = random.Random(args.seed)
    deadline = time.monotonic() + args.minutes * 60
    rounds = {t: 0 for t in targets}
    crashes: list[tuple[str, int, str]] = []
    n = 0
    while time.monotonic() < deadline:
        target = targets[n % len(targets)]
        n += 1
        round_seed = args.seed if args.seed is not None and n == 1 else rng.getrandbits(64)
        report = run_round(target, round_seed, args.examples)
        rounds[target] += 1
        if report is not None:
            crashes.append((target, round_seed, report))
            print(f"CRASH in {target} (seed {round_seed}):\n{report}", flush=True)
    for target in targets:
        print(f"{target}: {rounds[target]} round(s) of {args.examples} inputs")
    if crashes:
        args.out.mkdir(parents=True, exist_ok=True)
        for target, round_seed, report in crashes:
            (args.out / f"{target}-{round_seed}.txt").write_text(report)
        print(f"{len(crashes)} crash(es); reports in {args.out}")
        return 1
    print("no crashes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
