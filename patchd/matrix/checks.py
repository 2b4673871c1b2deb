"""The checks of one cell: variant, apply, ``php -l``, static minimum PHP, smoke test.

Order: the variant is chosen for the release's version; the installation is materialised
and served once (smoke "before"); the bundle is applied through the engine with the same
checked writes as ``patchd apply``; every patched PHP file is linted with the cell's PHP
binary; the added lines are checked against the cell's PHP version (no binary needed);
the installation is served again and compared with "before". Every check runs even after
an earlier one failed, so one run shows every problem of a cell.
"""

from __future__ import annotations

from pathlib import Path

from patchd.apply_folder import FolderReport, apply_to_folder
from patchd.bundle.manifest import Bundle
from patchd.errors import PatchdError
from patchd.matrix import smoke
from patchd.matrix.cells import Cell, materialise
from patchd.matrix.minphp import Finding, scan_patches, too_new_for
from patchd.matrix.model import Matrix
from patchd.matrix.results import CellResult, CheckResult
from patchd.patcher.php import lint_files


def _apply_problem(report: FolderReport) -> str:
    if report.write_error:
        return report.write_error
    for f in report.files:
        if not f.ok:
            return f"{f.path}: {f.problem or (f.outcome.reason if f.outcome else 'failed')}"
    return "did not apply"


def _extension_names(cell: Cell) -> tuple[str, ...]:
    names = []
    for spec in cell.extensions:
        names.append(spec.stub.name if spec.stub else (spec.into or "").rstrip("/").split("/")[-1])
    return tuple(names)


def _base(cell: Cell) -> dict[str, object]:
    return {
        "cell": cell.id,
        "release": cell.release.label,
        "cms": cell.release.cms,
        "version": cell.release.version,
        "extensions": cell.extensions_name,
        "extension_names": _extension_names(cell),
        "php": cell.php.version,
        "php_binary": cell.php.binary,
        "modification": cell.modifications_name,
        "expect": cell.modifications.expect,
    }


def _min_php_check(findings: list[Finding], php: str) -> CheckResult:
    worst = too_new_for(findings, php)
    if worst is not None:
        return CheckResult(
            check="min-php",
            status="failed",
            detail=f"patch needs PHP >= {worst.php} ({worst.describe()}), cell has PHP {php}",
        )
    need = max((f.php for f in findings), default=None, key=lambda v: tuple(map(int, v.split("."))))
    return CheckResult(
        check="min-php", status="ok", detail=f"added lines need PHP >= {need}" if need else ""
    )


def run_cell(cell: Cell, bundle: Bundle, matrix: Matrix, dest: Path) -> CellResult:
    """Materialise ``cell`` in ``dest`` (a new folder), run every check, return the result."""
    base = _base(cell)
    checks: list[CheckResult] = []
    variant = bundle.variant_for(cell.release.version)
    if variant is None:
        if not bundle.is_affected(cell.release.version):
            detail = f"version {cell.release.version} is outside {bundle.manifest.affected}"
            checks.append(CheckResult(check="variant", status="skipped", detail=detail))
            return CellResult(
                **base, outcome="not-affected", status="ok", reason=detail, checks=tuple(checks)
            )
        detail = f"no variant of the bundle is for version {cell.release.version}"
        checks.append(CheckResult(check="variant", status="failed", detail=detail))
        return CellResult(
            **base,
            outcome="failed",
            status="failed",
            reason=f"variant: {detail}",
            checks=tuple(checks),
        )
    checks.append(CheckResult(check="variant", status="ok", detail=variant.file))
    base["variant"] = variant.file
    try:
        root = materialise(cell, dest, matrix)
    except (PatchdError, OSError) as exc:
        return CellResult(
            **base, outcome="failed", status="failed", reason=f"setup: {exc}", checks=tuple(checks)
        )
    patches = bundle.patches(variant)
    binary = cell.php.binary
    docroot = root / matrix.smoke.docroot if matrix.smoke.docroot else root
    urls = smoke.urls_for(
        cell.release.cms,
        matrix.smoke.urls,
        [fp.path for fp in patches],
        matrix.smoke.docroot,
        matrix.smoke.probe_patched_files,
    )
    smoke_on = matrix.smoke.enabled and binary is not None
    before = (
        smoke.serve_and_fetch(binary, docroot, urls, timeout=matrix.smoke.timeout)
        if (smoke_on and binary)
        else None
    )

    report = apply_to_folder(patches, root)
    refused = not report.ok
    expect_refused = cell.modifications.expect == "refused"
    if refused and expect_refused:
        checks.append(
            CheckResult(
                check="apply", status="ok", detail=f"refused as expected: {_apply_problem(report)}"
            )
        )
        return CellResult(
            **base, outcome="refused", status="ok", reason=checks[-1].detail, checks=tuple(checks)
        )
    if refused:
        checks.append(CheckResult(check="apply", status="failed", detail=_apply_problem(report)))
    elif expect_refused:
        checks.append(
            CheckResult(
                check="apply",
                status="failed",
                detail="applied, but the modification should make it refuse",
            )
        )
    else:
        detail = "already applied" if report.already_applied else f"{len(report.files)} files"
        checks.append(CheckResult(check="apply", status="ok", detail=detail))

    patched = [
        (f.path, f.outcome.content)
        for f in report.files
        if f.outcome is not None and f.outcome.content is not None
    ]
    if binary is None:
        checks.append(
            CheckResult(
                check="lint", status="skipped", detail=f"PHP {cell.php.version} not installed here"
            )
        )
    elif refused:
        checks.append(CheckResult(check="lint", status="skipped", detail="bundle did not apply"))
    else:
        problem = lint_files(binary, str(root), patched)
        checks.append(
            CheckResult(
                check="lint",
                status="failed" if problem else "ok",
                detail=problem or f"php -l with {binary}",
            )
        )

    checks.append(_min_php_check(scan_patches(patches), cell.php.version))

    if before is None:
        why = "disabled" if not matrix.smoke.enabled else f"PHP {cell.php.version} not installed"
        checks.append(CheckResult(check="smoke", status="skipped", detail=why))
    elif refused:
        checks.append(CheckResult(check="smoke", status="skipped", detail="bundle did not apply"))
    else:
        assert binary is not None
        after = smoke.serve_and_fetch(binary, docroot, urls, timeout=matrix.smoke.timeout)
        problem = before.problem or smoke.compare(before, after)
        checks.append(
            CheckResult(
                check="smoke",
                status="failed" if problem else "ok",
                detail=problem or smoke.summary(before, after),
            )
        )

    failed = [c for c in checks if c.status == "failed"]
    if failed:
        first = failed[0]
        return CellResult(
            **base,
            outcome="failed",
            status="failed",
            reason=f"{first.check}: {first.detail}",
            checks=tuple(checks),
        )
    return CellResult(**base, outcome="patched", status="ok", checks=tuple(checks))
