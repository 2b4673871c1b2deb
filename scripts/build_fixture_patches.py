"""Build the repository's ``patches/`` bundles from the fixture releases with ``patchd build``.

The recipes (one bundle per fixture family, attribution, backports, fixed ``created_at``
so a rebuild is byte-identical) live in :mod:`patchd_fixtures.bundles`, shared with
``patchd demo``.

Usage: ``python scripts/build_fixture_patches.py [--out patches] [--family NAME]``
(an existing bundle folder is replaced: bundles are immutable once *published*, and these
are regenerated examples).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from patchd_fixtures.bundles import RECIPES, build_args

ROOT = Path(__file__).resolve().parent.parent


def main(argv: Sequence[str] | None = None) -> int:
    """Build the bundles (default: all families into ``patches/``)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=ROOT / "patches")
    parser.add_argument("--family", action="append", choices=sorted(RECIPES))
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="patchd-fixture-patches-") as tmp:
        work = Path(tmp)
        for family in args.family or sorted(RECIPES):
            target = args.out / RECIPES[family][0]
            if target.exists():
                shutil.rmtree(target)
            cmd = ["patchd", "build", *build_args(family, work / "rel", work / "git", args.out)]
            print("+", " ".join(cmd), flush=True)
            proc = subprocess.run(cmd, check=False)
            if proc.returncode:
                return proc.returncode
    return 0


if __name__ == "__main__":
    sys.exit(main())
