"""Benchmark: ``patchd build`` against ``tar x`` + ``diff -ruN`` of the same release pair.

Generates a WordPress-shaped release pair (default about 5,000 files / 40 MB, 150 changed
files of which 5 carry a security fix that ``--auto`` keeps), writes both as ``.tar.gz``,
then times, alternating, ``runs`` times each:

- baseline: ``tar xzf`` of both archives into fresh folders, then ``diff -ruN`` of them;
- patchd: ``patchd build OLD NEW --git REPO --range 6.4.2..6.4.3`` (safe extraction, full
  diff, git attribution by replay of the range's commits on OLD's files with its
  cross-check, classification, validation with ``php -l``, bundle written). The
  repository holds OLD, then one commit per changed file (``[SECURITY]`` for the security
  fixes, ``[TASK]`` for the others), then the version bump. ``--no-git`` times
  ``--auto`` instead (heuristics, no history).

Prints medians and the ratio (target: patchd within 2x of the baseline) and, with
``--append docs/benchmarks.md``, appends a dated section with the machine (``uname -a``,
``nproc``).

Usage: ``python bench/bench_build.py [--files 5000] [--size-mb 40] [--changed 150]
[--runs 5] [--no-git] [--backports 10] [--append docs/benchmarks.md]``

With ``--backports N`` (default 10, 0 to skip) it also times the same build with N older
releases (``6.3.0`` ...) given as ``--backport``: each differs from OLD in 20 other files,
every other one also in a line inside each security hunk's context (ported by 3-way
merge), and reports the ratio to the build without backports (target: at most 3x).
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
            _SECURITY_PATHS.add(path)
        elif i in changed_idx:
            new[path] = "".join(_plain_change(lines, rng)).encode()
        else:
            new[path] = old[path]
    for version, tree in (("6.4.2", old), ("6.4.3", new)):
        tree["wp-includes/version.php"] = (
            f"<?php\n$wp_version = '{version}';\n$required_php_version = '7.0.0';\n".encode()
        )
    _history(dest / "repo", old, new, security_idx)
    _TREES["old"] = old
    return _archive(old, dest / "old.tar.gz"), _archive(new, dest / "new.tar.gz")


#: the last generated OLD tree (for the backport releases)
_TREES: dict[str, dict[str, bytes]] = {}


def generate_backports(dest: Path, count: int, seed: int = 2) -> list[Path]:
    """``count`` older releases (6.3.0, 6.3.1, ...) of OLD's branch history: each differs
    from OLD in some other files, and every other one also in a line right next to each
    security fix (inside the patch's context: the 3-way merge ports it)."""
    rng = random.Random(seed)
    old = _TREES["old"]
    out: list[Path] = []
    for k in range(count):
        tree = dict(old)
        for path in rng.sample(sorted(p for p in old if p.endswith(".php")), 20):
            lines = tree[path].decode().splitlines(keepends=True)
            tree[path] = "".join(_plain_change(lines, rng)).encode()
        if k % 2:
            for path in sorted(_SECURITY_PATHS):
                lines = old[path].decode().splitlines(keepends=True)
                at = next(i for i, ln in enumerate(lines) if ln.startswith("function ")) + 1
                lines[at] = lines[at].rstrip("\n") + " // drifted\n"
                tree[path] = "".join(lines).encode()
        version = f"6.3.{k}"
        tree["wp-includes/version.php"] = (
            f"<?php\n$wp_version = '{version}';\n$required_php_version = '7.0.0';\n".encode()
        )
        out.append(_archive(tree, dest / f"wordpress-{version}.tar.gz"))
    return out


_SECURITY_PATHS: set[str] = set()


def _history(repo: Path, old: dict[str, bytes], new: dict[str, bytes], security: set[int]) -> None:
    """A git repository: OLD tagged 6.4.2, one commit per changed file, NEW tagged 6.4.3."""
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "bench",
        "GIT_AUTHOR_EMAIL": "bench@example.org",
        "GIT_COMMITTER_NAME": "bench",
        "GIT_COMMITTER_EMAIL": "bench@example.org",
        "GIT_CONFIG_NOSYSTEM": "1",
        "HOME": "/nonexistent",
    }

    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True)

    repo.mkdir(parents=True)
    for path, data in old.items():
        (repo / path).parent.mkdir(parents=True, exist_ok=True)
        (repo / path).write_bytes(data)
    git("init", "-q", "-b", "trunk")
    git("add", "-A")
    git("commit", "-q", "-m", "Tag 6.4.2")
    git("tag", "6.4.2")
    for path in sorted(p for p in new if new[p] != old.get(p)):
        (repo / path).write_bytes(new[path])
        git("add", path)
        number = int(path.rsplit("-", 1)[-1].split(".")[0]) if "file-" in path else -1
        kind = "[SECURITY] Verify the nonce" if number in security else "[TASK] Tidy up"
        git("commit", "-q", "-m", f"{kind} in {path}")
    git("tag", "6.4.3")


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
        backport_times: list[float] = []
        backports = generate_backports(work, args.backports) if args.backports else []
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
            how = (
                ["--auto", "--undecided", "drop"]
                if args.no_git
                else ["--git", str(work / "repo"), "--range", "6.4.2..6.4.3"]
            )
            patchd_times.append(
                _time(["patchd", "build", str(old), str(new), *how, "--out", str(out)])
            )
            if backports:
                ported = [a for b in backports for a in ("--backport", str(b))]
                target = ["--out", str(work / f"bp{n}")]
                backport_times.append(
                    _time(["patchd", "build", str(old), str(new), *how, *ported, *target])
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
        "how": "--auto --undecided drop" if args.no_git else "--git REPO --range 6.4.2..6.4.3",
        "backports": args.backports,
        "backports_s": round(statistics.median(backport_times), 3) if backport_times else 0.0,
        "backports_ratio": (
            round(statistics.median(backport_times) / ours, 2) if backport_times else 0.0
        ),
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
    parser.add_argument("--no-git", action="store_true", help="time --auto instead of --git")
    parser.add_argument(
        "--backports", type=int, default=10, help="also time a build with N --backport releases"
    )
    parser.add_argument("--append", type=Path, help="append the result to this markdown file")
    args = parser.parse_args(argv)
    r = run(args)
    text = (
        f"\n### patchd build vs tar x + diff -ruN ({datetime.now(UTC):%Y-%m-%d})\n\n"
        f"Release pair: {r['files']} files, {r['unpacked_mb']} MB unpacked, {r['changed']} "
        f"changed files ({r['kept_files']} kept), tar.gz. Median of "
        f"{r['runs']} runs each, run alternately (`python bench/bench_build.py`).\n\n"
        f"| step | median (s) |\n|---|---|\n"
        f"| `tar xzf` OLD + `tar xzf` NEW + `diff -ruN` | {r['baseline_s']} |\n"
        f"| `patchd build OLD NEW {r['how']}` | {r['patchd_s']} |\n"
        f"| ratio patchd / baseline (target <= 1.5) | {r['ratio']} |\n"
        + (
            f"| the same with {r['backports']} `--backport` releases (half of them merged) | "
            f"{r['backports_s']} |\n"
            f"| ratio with / without backports (target <= 3) | {r['backports_ratio']} |\n"
            if r["backports"]
            else ""
        )
        + "\n"
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
