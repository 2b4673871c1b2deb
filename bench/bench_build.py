"""Benchmark: ``patchd build`` against ``tar x`` + ``diff -ruN`` of the same release pair.

Generates a WordPress-shaped release pair (default about 5,000 files / 40 MB, 150 changed
files of which 5 carry a security fix that ``--auto`` keeps), writes both as ``.tar.gz``,
then times, alternating, ``runs`` times each:

- baseline: ``tar xzf`` of both archives into fresh folders, then ``diff -ruN`` of them;
- patchd: ``patchd build OLD NEW --auto`` (safe extraction, full diff, classification,
  validation with ``php -l``, bundle written).

Prints medians and the ratio (target: patchd within 2x of the baseline) and, with
``--append docs/benchmarks.md``, appends a dated section with the machine (``uname -a``,
``nproc``).

Usage: ``python bench/bench_build.py [--files 5000] [--size-mb 40] [--changed 150]
[--runs 5] [--append docs/benchmarks.md]``
"""

from __future__ import annotations

import argparse
import io
import os
import random
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from patchd.engine.parse import parse_diff

_WORDS_TEXT = (
    "post meta term user option query cache filter action hook widget menu theme plugin "
    "request response header body value field label title content excerpt author date "
    "status count limit offset order page item list table column row render output"
)
WORDS = _WORDS_TEXT.split()
SECURITY_FILES = 5


def _function(rng: random.Random, n: int) -> str:
    name = "_".join(rng.sample(WORDS, 3))
    args = ", ".join(f"${w}" for w in rng.sample(WORDS, 2))
    body = "".join(
        f"\t${rng.choice(WORDS)}_{i} = {rng.choice(WORDS)}_{rng.choice(WORDS)}"
        f"( ${rng.choice(WORDS)}, {rng.randint(0, 999)} );\n"
        for i in range(n)
    )
    return (
        f"function bench_{name}_{rng.randint(0, 10**9)}( {args} ) {{\n{body}\treturn true;\n}}\n\n"
    )


def _file(rng: random.Random, size: int) -> list[str]:
    parts = ["<?php\n", "/**\n * Generated benchmark file.\n */\n\n"]
    total = sum(map(len, parts))
    while total < size:
        fn = _function(rng, rng.randint(4, 12))
        parts.append(fn)
        total += len(fn)
    return "".join(parts).splitlines(keepends=True)


def _security_change(lines: list[str], rng: random.Random) -> list[str]:
    """Insert a nonce check and escaping into the first function (heuristic score 3.5)."""
    at = next(i for i, ln in enumerate(lines) if ln.startswith("function ")) + 1
    fix = [
        "\tif ( ! wp_verify_nonce( $_POST['_wpnonce'], 'bench-action' ) ) {\n",
        "\t\treturn false;\n",
        "\t}\n",
        "\techo esc_html( $title );\n",
    ]
    return lines[:at] + fix + lines[at:]


def _plain_change(lines: list[str], rng: random.Random) -> list[str]:
    out = list(lines)
    for _ in range(rng.randint(1, 4)):
        i = rng.randrange(5, len(out))
        out[i] = f"\t${rng.choice(WORDS)}_changed = {rng.randint(0, 10**6)};\n"
    return out


def generate_pair(dest: Path, files: int, size_mb: float, changed: int, seed: int = 1) -> tuple:
    """Write ``old.tar.gz`` and ``new.tar.gz`` under ``dest``; returns their paths."""
    rng = random.Random(seed)
    avg = int(size_mb * 1024 * 1024 / files)
    old: dict[str, bytes] = {}
    new: dict[str, bytes] = {}
    changed_idx = set(rng.sample(range(1, files), changed))
    security_idx = set(sorted(changed_idx)[:SECURITY_FILES])
    for i in range(1, files):
        folder = ("wp-includes", "wp-admin/includes", "wp-admin")[i % 3]
        path = f"{folder}/d{i % 40:02d}/file-{i:05d}.php"
        lines = _file(rng, rng.randint(avg // 2, avg * 3 // 2))
        old[path] = "".join(lines).encode()
        if i in security_idx:
            new[path] = "".join(_security_change(lines, rng)).encode()
        elif i in changed_idx:
            new[path] = "".join(_plain_change(lines, rng)).encode()
        else:
            new[path] = old[path]
    for version, tree in (("6.4.2", old), ("6.4.3", new)):
        tree["wp-includes/version.php"] = (
            f"<?php\n$wp_version = '{version}';\n$required_php_version = '7.0.0';\n".encode()
        )
    return _archive(old, dest / "old.tar.gz"), _archive(new, dest / "new.tar.gz")


def _archive(tree: dict[str, bytes], out: Path) -> Path:
    with tarfile.open(out, "w:gz", compresslevel=6) as tf:
        for path in sorted(tree):
            info = tarfile.TarInfo(f"wordpress/{path}")
            info.size = len(tree[path])
            info.mode = 0o644
            tf.addfile(info, io.BytesIO(tree[path]))
    return out


def _time(cmd: list[str] | str, *, shell: bool = False) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, shell=shell, capture_output=True, check=False)
    elapsed = time.perf_counter() - start
    if proc.returncode not in (0, 1) or (not shell and proc.returncode):
        sys.stderr.write(proc.stderr.decode(errors="replace"))
        raise SystemExit(f"benchmark command failed: {cmd}")
    return elapsed


def run(args: argparse.Namespace) -> dict[str, float | int | str]:
    """Generate, time both sides alternately, return the numbers."""
    with tempfile.TemporaryDirectory(prefix="patchd-bench-") as tmp:
        work = Path(tmp)
        old, new = generate_pair(work, args.files, args.size_mb, args.changed)
        with tarfile.open(new) as tf:
            unpacked = sum(m.size for m in tf)
        base_times: list[float] = []
        patchd_times: list[float] = []
        for n in range(args.runs):
            a, b = work / f"a{n}", work / f"b{n}"
            a.mkdir()
            b.mkdir()
            base_times.append(
                _time(
                    f"tar xzf {old} -C {a} && tar xzf {new} -C {b} && "
                    f"diff -ruN {a} {b} > {work}/base{n}.diff; test $? -le 1",
                    shell=True,
                )
            )
            shutil.rmtree(a)
            shutil.rmtree(b)
            out = work / f"out{n}"
            patchd_times.append(
                _time(
                    [
                        "patchd",
                        "build",
                        str(old),
                        str(new),
                        "--auto",
                        "--undecided",
                        "drop",
                        "--out",
                        str(out),
                    ]
                )
            )
        bundle = next(out.iterdir())
        kept = len(parse_diff((bundle / "patch.diff").read_bytes()))
    base, ours = statistics.median(base_times), statistics.median(patchd_times)
    return {
        "files": args.files,
        "unpacked_mb": round(unpacked / 1024 / 1024, 1),
        "changed": args.changed,
        "kept_files": kept,
        "runs": args.runs,
        "baseline_s": round(base, 3),
        "patchd_s": round(ours, 3),
        "ratio": round(ours / base, 2),
    }


def _machine() -> str:
    uname = subprocess.run(["uname", "-a"], capture_output=True, text=True).stdout.strip()
    return f"{uname}; nproc {os.cpu_count()}"


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; print (and optionally append) the result."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=5000)
    parser.add_argument("--size-mb", type=float, default=40.0)
    parser.add_argument("--changed", type=int, default=150)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--append", type=Path, help="append the result to this markdown file")
    args = parser.parse_args(argv)
    r = run(args)
    text = (
        f"\n### patchd build vs tar x + diff -ruN ({datetime.now(UTC):%Y-%m-%d})\n\n"
        f"Release pair: {r['files']} files, {r['unpacked_mb']} MB unpacked, {r['changed']} "
        f"changed files ({r['kept_files']} kept by `--auto`), tar.gz. Median of "
        f"{r['runs']} runs each, run alternately (`python bench/bench_build.py`).\n\n"
        f"| step | median (s) |\n|---|---|\n"
        f"| `tar xzf` OLD + `tar xzf` NEW + `diff -ruN` | {r['baseline_s']} |\n"
        f"| `patchd build OLD NEW --auto --undecided drop` | {r['patchd_s']} |\n"
        f"| ratio patchd / baseline (target <= 2) | {r['ratio']} |\n\n"
        f"Machine: `{_machine()}`\n"
    )
    print(text)
    if args.append:
        args.append.parent.mkdir(parents=True, exist_ok=True)
        if not args.append.exists():
            args.append.write_text("# Benchmarks\n", encoding="utf-8")
        with open(args.append, "a", encoding="utf-8") as fh:
            fh.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
