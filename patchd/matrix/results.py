"""``tested.json`` in a bundle: every matrix run's per-cell results and the measured min PHP.

The file is not covered by the bundle's digest (which covers the diffs only), so writing
it leaves the published bundle loadable; it names the digest it was measured on, and
results for another digest are dropped (and ignored by :mod:`patchd.matrix.tested`).
Each ``patchd test`` adds one run; a run with the same matrix file name replaces the
earlier one.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from patchd.bundle.manifest import TESTED

SCHEMA = 1

CheckName = Literal["variant", "apply", "lint", "min-php", "smoke"]
CheckStatus = Literal["ok", "failed", "skipped"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CheckResult(_Model):
    """One check of one cell."""

    check: CheckName
    status: CheckStatus
    detail: str = ""


class CellResult(_Model):
    """One cell: its configuration, ``ok``/``failed`` with the reason, and every check."""

    cell: str
    release: str
    cms: str
    version: str
    extensions: str
    extension_names: tuple[str, ...] = ()
    php: str
    php_binary: str | None = None
    modification: str
    expect: Literal["applies", "refused"] = "applies"
    variant: str | None = None
    outcome: Literal["patched", "refused", "not-affected", "failed"]
    status: Literal["ok", "failed"]
    reason: str = ""
    checks: tuple[CheckResult, ...] = ()


class MatrixRun(_Model):
    """One ``patchd test`` run."""

    matrix: str
    started_at: str
    finished_at: str
    patchd_version: str
    cells: tuple[CellResult, ...]

    @property
    def ok(self) -> bool:
        """Every cell passed."""
        return all(c.status == "ok" for c in self.cells)


class Tested(_Model):
    """The whole ``tested.json``."""

    schema_version: int = Field(SCHEMA, alias="schema")
    bundle: str
    digest: str
    min_php: str | None = Field(None, description="measured: what the added lines need")
    min_php_reason: str | None = None
    runs: tuple[MatrixRun, ...] = ()

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def read_tested(bundle_path: Path) -> Tested | None:
    """The bundle's ``tested.json``; None when absent or unreadable (= never tested)."""
    path = Path(bundle_path) / TESTED
    if path.is_symlink() or not path.is_file():
        return None
    try:
        return Tested.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, ValidationError):
        return None


def record_run(
    bundle_path: Path,
    *,
    bundle_id: str,
    digest: str,
    min_php: str | None,
    min_php_reason: str | None,
    run: MatrixRun,
) -> Tested:
    """Add ``run`` to the bundle's ``tested.json`` (written atomically) and return it."""
    old = read_tested(bundle_path)
    runs = [] if old is None or old.digest != digest else list(old.runs)
    runs = [r for r in runs if r.matrix != run.matrix] + [run]
    tested = Tested(
        bundle=bundle_id,
        digest=digest,
        min_php=min_php,
        min_php_reason=min_php_reason,
        runs=tuple(runs),
    )
    text = json.dumps(tested.model_dump(mode="json", by_alias=True), indent=2) + "\n"
    fd, tmp = tempfile.mkstemp(prefix=".tested-", dir=bundle_path)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, Path(bundle_path) / TESTED)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return tested
