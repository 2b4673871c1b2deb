"""Find the PHP binary of a matrix PHP version, and ask a binary which version it is.

Only the installed PHP (8.2 here) may exist on the test machine; other versions are
binaries that may be missing. A missing binary is not an error: the static analysis
still checks that cell, and lint/smoke are reported as skipped.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from functools import lru_cache

from patchd.matrix.model import MatrixError, PhpSpec

_VERSION_CODE = "echo PHP_MAJOR_VERSION, '.', PHP_MINOR_VERSION, '.', PHP_RELEASE_VERSION;"


@dataclass(frozen=True)
class PhpRuntime:
    """A matrix PHP version and the binary found for it (None: not installed here)."""

    version: str
    binary: str | None
    reported: str | None = None  # what the binary says it is (major.minor.patch)

    @property
    def label(self) -> str:
        """``PHP 8.2`` for tables."""
        return f"PHP {self.version}"


@lru_cache(maxsize=64)
def binary_version(binary: str) -> str | None:
    """The ``major.minor.patch`` version ``binary`` reports, or None when it does not run."""
    try:
        proc = subprocess.run(
            [binary, "-n", "-r", _VERSION_CODE],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=15,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = proc.stdout.decode("ascii", "replace").strip()
    return text if proc.returncode == 0 and text.count(".") == 2 else None


def _same_minor(a: str, b: str) -> bool:
    return a.split(".")[:2] == b.split(".")[:2]


def find_runtime(spec: PhpSpec) -> PhpRuntime:
    """The binary for ``spec``: the given one, else ``php<ver>`` / ``php`` on PATH.

    A given binary that reports another version is an input error (the matrix would test
    something else than it says); a given binary that is missing is "not installed".
    """
    if spec.binary:
        found = shutil.which(spec.binary)
        if found is None:
            return PhpRuntime(spec.version, None)
        reported = binary_version(found)
        if reported is None:
            return PhpRuntime(spec.version, None)
        if not _same_minor(reported, spec.version):
            raise MatrixError(
                f"field php: binary {spec.binary} is PHP {reported}, the matrix says {spec.version}"
            )
        return PhpRuntime(spec.version, found, reported)
    minor = ".".join(spec.version.split(".")[:2])
    for name in (f"php{minor}", f"php{minor.replace('.', '')}", "php"):
        found = shutil.which(name)
        if found is None:
            continue
        reported = binary_version(found)
        if reported is not None and _same_minor(reported, spec.version):
            return PhpRuntime(spec.version, found, reported)
    return PhpRuntime(spec.version, None)
