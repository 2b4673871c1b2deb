"""What an import read: the advisories of one source, and the source's revision/date."""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from patchd.advisories.model import Advisory


@dataclass
class SourceRead:
    """One source's advisories plus what could not be read (file: reason)."""

    kind: str  # friendsofphp | osv
    location: str
    revision: str
    date: str | None
    advisories: list[Advisory] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def git_revision(folder: Path) -> tuple[str, str] | None:
    """(commit, commit date) of the last commit touching ``folder`` when it is in a git
    work tree, else None."""
    try:
        out = subprocess.run(
            ["git", "-C", str(folder), "log", "-1", "--format=%H %cI", "--", "."],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    parts = out.stdout.split()
    if out.returncode != 0 or len(parts) != 2:
        return None
    return parts[0], parts[1]


def content_revision(files: Iterable[Path]) -> tuple[str, str | None]:
    """("sha256:" + digest of the files' names and bytes, newest mtime) for sources
    that are not git checkouts: a changed source gets another revision."""
    digest = hashlib.sha256()
    newest = 0.0
    for path in sorted(files):
        digest.update(str(path).encode("utf-8", "surrogateescape") + b"\0")
        digest.update(path.read_bytes())
        newest = max(newest, path.stat().st_mtime)
    date = datetime.fromtimestamp(newest, UTC).isoformat(timespec="seconds") if newest else None
    return "sha256:" + digest.hexdigest()[:16], date


def revision_of(root: Path, files: list[Path]) -> tuple[str, str | None]:
    """The git commit and date of ``root``, else a digest of ``files``."""
    folder = root if root.is_dir() else root.parent
    git = git_revision(folder)
    if git is not None:
        return git
    return content_revision(files)
