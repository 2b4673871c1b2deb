"""Pristine releases: detect what a release archive is and record its file checksums.

``patchd releases add TARBALL`` registers a release so that scans can tell, per
installation of that release, which core files differ from the pristine copy (what
``wp core verify-checksums`` does for WordPress, for every CMS).
"""

from __future__ import annotations

import hashlib
import os
import stat
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from patchd.cms import DETECTORS
from patchd.cms.interface import Installation
from patchd.errors import PatchdError
from patchd.ledger import releases as ledger_releases
from patchd.ledger.db import Ledger
from patchd.release.archive import open_release
from patchd.safefs import SafeRoot


class ReleaseDetectionError(PatchdError):
    """A release archive is no CMS patchd knows, or its version cannot be read."""


@dataclass(frozen=True)
class RegisteredRelease:
    """What ``releases add`` stored."""

    cms: str
    version: str
    files: int
    source: str


def detect_release(root: Path) -> Installation:
    """The CMS and version of an extracted release tree (the tree's root is the install)."""
    with SafeRoot(root) as safe:
        for detector in DETECTORS:
            found = detector.detect(safe, "")
            if found is None:
                continue
            if found.version is None:
                raise ReleaseDetectionError(
                    f"looks like {found.cms} but the version is unreadable: {found.version_error}",
                    where=str(root),
                )
            return found
    raise ReleaseDetectionError("no known CMS release (no marker file found)", where=str(root))


def iter_checksums(root: Path) -> Iterator[tuple[str, str, int]]:
    """(relative path, sha256, size) of every regular file below ``root``; links skipped."""
    for folder, dirs, files in os.walk(root, followlinks=False):
        dirs.sort()
        for name in sorted(files):
            full = os.path.join(folder, name)
            st = os.lstat(full)
            if not stat.S_ISREG(st.st_mode):
                continue
            h = hashlib.sha256()
            with open(full, "rb") as fh:
                for chunk in iter(lambda fh=fh: fh.read(1 << 20), b""):
                    h.update(chunk)
            yield os.path.relpath(full, root).replace(os.sep, "/"), h.hexdigest(), st.st_size


def register(
    ledger: Ledger, source: Path, *, cms: str | None = None, version: str | None = None
) -> RegisteredRelease:
    """Extract ``source`` safely, detect (or take) its CMS and version, store its checksums."""
    with tempfile.TemporaryDirectory(prefix="patchd-release-") as work:
        root = open_release(source, Path(work))
        if cms is None or version is None:
            found = detect_release(root)
            cms = cms or found.cms
            version = version or found.version
        assert version is not None
        files = list(iter_checksums(root))
    ledger_releases.register_release(ledger, cms, version, str(source), files)
    return RegisteredRelease(cms, version, len(files), str(source))
