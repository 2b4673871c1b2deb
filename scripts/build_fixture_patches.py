"""Build the repository's ``patches/`` bundles from the fixture releases with ``patchd build``.

One bundle per fixture family (``wp-2026-001``, ``typo3-2026-001``, ``rc-2026-001``):
OLD is the last vulnerable version, NEW the security release, every older version a
backport. TYPO3 and Roundcube are attributed with their git history; WordPress (history
without security markers) with the reviewed rules file in ``scripts/fixture-rules/``.
``--created-at`` is fixed, so a rebuild gives byte-identical bundles.

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

from patchd_fixtures.families import FAMILIES
from patchd_fixtures.history import write_history_repo
from patchd_fixtures.releases import write_release_archive

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "scripts" / "fixture-rules"
CREATED_AT = "2026-01-15T09:00:00+00:00"

#: family -> (bundle id, attribution, severity, summary en, summary de, title)
RECIPES: dict[str, tuple[str, str, str, str, str, str]] = {
    "wordpress": (
        "wp-2026-001",
        "rules",
        "medium",
        "Fixes a stored cross-site scripting flaw in the comment list and comment output.",
        "Behebt eine gespeicherte Cross-Site-Scripting-Lücke in der Kommentarliste und -ausgabe.",
        "WordPress 6.4.3: stored XSS in comment output",
    ),
    "typo3": (
        "typo3-2026-001",
        "git",
        "high",
        "Fixes a path traversal in the file abstraction layer.",
        "Behebt eine Path-Traversal-Lücke in der File Abstraction Layer.",
        "TYPO3 12.4.11: path traversal in the file abstraction layer",
    ),
    "roundcube": (
        "rc-2026-001",
        "git",
        "high",
        "Fixes cross-site scripting in message headers and folder names.",
        "Behebt Cross-Site-Scripting in Nachrichtenkopfzeilen und Ordnernamen.",
        "Roundcube 1.6.6: XSS in message headers and folder names",
    ),
}


def build_args(family: str, releases: Path, repos: Path, out: Path) -> list[str]:
    """The ``patchd build`` arguments for ``family`` (writes its archives and repository)."""
    fam = FAMILIES[family]
    bundle_id, how, severity, en, de, title = RECIPES[family]
    archives = {v: write_release_archive(family, v, releases / family) for v in fam.versions}
    old = fam.vulnerable_versions[-1]
    args = [str(archives[old]), str(archives[fam.security_release])]
    if how == "git":
        repo = write_history_repo(family, repos / family)
        args += ["--git", str(repo), "--range", f"{fam.tag(old)}..{fam.tag(fam.security_release)}"]
        if fam.git_prefix:
            args += ["--git-prefix", fam.git_prefix]
    else:
        args += ["--rules", str(RULES / f"{bundle_id}.yaml")]
    for version in fam.vulnerable_versions[:-1]:
        args += ["--backport", str(archives[version])]
    for advisory in fam.advisories:
        args += ["--advisory", advisory]
    args += [
        "--id", bundle_id,
        "--title", title,
        "--severity", severity,
        "--min-php", fam.min_php,
        "--summary-en", en,
        "--summary-de", de,
        "--created-at", CREATED_AT,
        "--out", str(out),
    ]  # fmt: skip
    return args


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
