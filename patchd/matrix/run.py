"""Test a bundle on a matrix: plan the cells, run each in a scratch folder, record results.

:func:`test_bundle` is what ``patchd test`` calls. The scratch folder holds the unpacked
releases and one installation per cell; it is removed afterwards unless ``keep``.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from patchd import __version__
from patchd.bundle.manifest import Bundle
from patchd.matrix.cells import plan_cells
from patchd.matrix.checks import run_cell
from patchd.matrix.minphp import newest, scan_patches
from patchd.matrix.model import Matrix
from patchd.matrix.results import MatrixRun, Tested, record_run
from patchd.progress import Progress, SilentProgress
from patchd.versions import Version


@dataclass(frozen=True)
class BundleMinPhp:
    """The minimum PHP the bundle's added lines need (over every variant), and why."""

    php: str | None
    reason: str | None


@dataclass(frozen=True)
class TestReport:
    """The outcome of one ``patchd test``: the run, the updated ``tested.json``, warnings."""

    run: MatrixRun
    tested: Tested
    min_php: BundleMinPhp
    warnings: tuple[str, ...]
    scratch: Path | None  # kept scratch folder, if asked to keep it


def measure_min_php(bundle: Bundle) -> BundleMinPhp:
    """Static minimum PHP of every variant of ``bundle`` (the highest wins)."""
    findings = [f for v in bundle.manifest.variants for f in scan_patches(bundle.patches(v))]
    worst = newest(findings)
    return BundleMinPhp(worst.php, worst.describe()) if worst else BundleMinPhp(None, None)


def manifest_warnings(bundle: Bundle, measured: BundleMinPhp) -> list[str]:
    """A warning when the manifest's ``min_php`` is lower than what the added lines need."""
    declared = bundle.manifest.min_php
    if measured.php is None:
        return []
    if declared is None:
        return [f"manifest has no min_php; the added lines need PHP >= {measured.php}"]
    if Version.parse(declared) < Version.parse(measured.php):
        return [
            f"manifest min_php {declared} is lower than the added lines need "
            f"(PHP >= {measured.php}: {measured.reason}); tested.json records {measured.php}"
        ]
    return []


def test_bundle(
    bundle: Bundle,
    matrix: Matrix,
    *,
    matrix_name: str,
    workdir: Path | None = None,
    keep: bool = False,
    progress: Progress | None = None,
) -> TestReport:
    """Run every cell of ``matrix`` against ``bundle``; write ``tested.json`` into it."""
    progress = progress or SilentProgress()
    started = datetime.now(UTC).isoformat()
    scratch = Path(tempfile.mkdtemp(prefix="patchd-test-", dir=workdir))
    try:
        cells = plan_cells(matrix, scratch)
        progress.start(len(cells), "testing cells")
        results = []
        try:
            for n, cell in enumerate(cells):
                result = run_cell(cell, bundle, matrix, scratch / "cells" / f"{n:04d}")
                results.append(result)
                progress.advance(label=result.status)
        finally:
            progress.finish()
    finally:
        if not keep:
            shutil.rmtree(scratch, ignore_errors=True)
    run = MatrixRun(
        matrix=matrix_name,
        started_at=started,
        finished_at=datetime.now(UTC).isoformat(),
        patchd_version=__version__,
        cells=tuple(results),
    )
    measured = measure_min_php(bundle)
    tested = record_run(
        bundle.path,
        bundle_id=bundle.id,
        digest=bundle.manifest.digest,
        min_php=measured.php,
        min_php_reason=measured.reason,
        run=run,
    )
    return TestReport(
        run=run,
        tested=tested,
        min_php=measured,
        warnings=tuple(manifest_warnings(bundle, measured)),
        scratch=scratch if keep else None,
    )
