"""Apply a patch to one installation folder (``patchd apply``), checking before writing.

Every file is read through :class:`patchd.safefs.SafeRoot` and the patcher's checked
opens (no symlinks, hardlinks or non-regular files), every hunk is applied in memory, and
only when all hunks of all files apply is anything written: atomically per file, keeping
owner and mode. If a later file cannot be written, the files already written are put back
(all or nothing). Rollouts across accounts use :mod:`patchd.patcher.installation`, which
adds backups, a journal and verification; this is the single-folder tool.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from patchd.engine.apply import FileOutcome, HunkStatus, apply_file
from patchd.engine.model import FilePatch
from patchd.errors import PatchdError, UnsafePathError
from patchd.patcher.safewrite import (
    MAX_FILE_SIZE,
    CheckedFile,
    create_new,
    open_checked,
    remove_checked,
    replace_checked,
    sha256,
)
from patchd.safefs import SafeRoot


@dataclass(frozen=True)
class FileReport:
    """One file of the patch: what the engine said, or why it could not be tried."""

    path: str
    action: str  # "modify" | "create" | "delete"
    outcome: FileOutcome | None = None
    problem: str | None = None  # unsafe path or I/O problem; no outcome then

    @property
    def ok(self) -> bool:
        return self.problem is None and self.outcome is not None and self.outcome.ok

    @property
    def already_applied(self) -> bool:
        return self.problem is None and self.outcome is not None and self.outcome.already_applied


@dataclass(frozen=True)
class FolderReport:
    """The whole patch against one folder."""

    folder: str
    files: tuple[FileReport, ...]
    dry_run: bool
    reverse: bool
    written: bool = False
    write_error: str | None = None
    reverse_applies: bool = False  # the whole patch reverse-applies: it is present already

    @property
    def ok(self) -> bool:
        """Every hunk of every file applies (or is present already)."""
        if self.write_error is not None:
            return False
        return self.already_applied or all(f.ok for f in self.files)

    @property
    def already_applied(self) -> bool:
        """Nothing to do: the patch is present already (every file reverse-applies)."""
        return bool(self.files) and (
            self.reverse_applies or all(f.already_applied for f in self.files)
        )

    def to_json(self) -> dict[str, object]:
        """The ``--json`` form of ``patchd apply`` (stable keys)."""
        return {
            "folder": self.folder,
            "dry_run": self.dry_run,
            "reverse": self.reverse,
            "ok": self.ok,
            "already_applied": self.already_applied,
            "written": self.written,
            "write_error": self.write_error,
            "files": [
                {
                    "path": f.path,
                    "action": f.action,
                    "ok": f.ok,
                    "problem": f.problem,
                    "hunks": [
                        {
                            "hunk": h.index,
                            "status": h.status.value,
                            "line": h.line,
                            "offset": h.offset,
                            "fuzz": h.fuzz,
                            "reason": h.reason,
                        }
                        for h in (f.outcome.hunks if f.outcome else ())
                    ],
                }
                for f in self.files
            ],
        }


def _action(fp: FilePatch, reverse: bool) -> str:
    if fp.is_new:
        return "delete" if reverse else "create"
    if fp.is_deleted:
        return "create" if reverse else "delete"
    return "modify"


def apply_to_folder(
    patches: Sequence[FilePatch],
    folder: Path,
    *,
    dry_run: bool = False,
    reverse: bool = False,
    fuzz: int = 0,
    max_file_size: int = MAX_FILE_SIZE,
) -> FolderReport:
    """Check ``patches`` against ``folder`` and, unless ``dry_run``, write them."""
    reports: list[FileReport] = []
    held: list[tuple[FilePatch, CheckedFile | None, FileOutcome]] = []
    with SafeRoot(folder) as root:
        try:
            for fp in patches:
                action = _action(fp, reverse)
                try:
                    cf = open_checked(root, fp.path, expected_uid=None, max_size=max_file_size)
                except (UnsafePathError, FileNotFoundError, NotADirectoryError) as exc:
                    problem = (
                        str(exc)
                        if isinstance(exc, UnsafePathError)
                        else (f"{fp.path}: a folder on the way is missing")
                    )
                    reports.append(FileReport(fp.path, action, problem=problem))
                    continue
                outcome = apply_file(fp, cf.data if cf else None, fuzz=fuzz, reverse=reverse)
                reports.append(FileReport(fp.path, action, outcome=outcome))
                held.append((fp, cf, outcome))
            report = FolderReport(str(folder), tuple(reports), dry_run, reverse)
            if not all(f.ok for f in report.files) and _reverse_applies(held, fuzz, reverse):
                # NOTE: like rollout's already-patched: the fix is present when the whole
                # patch reverse-applies (covers created files that already exist).
                report = replace(report, reverse_applies=len(held) == len(reports))
            if dry_run or not report.ok or report.already_applied:
                return report
            return _write_all(root, report, held)
        finally:
            for _fp, cf, _o in held:
                if cf is not None:
                    cf.close()


def _reverse_applies(
    held: list[tuple[FilePatch, CheckedFile | None, FileOutcome]], fuzz: int, reverse: bool
) -> bool:
    return bool(held) and all(
        apply_file(fp, cf.data if cf else None, fuzz=fuzz, reverse=not reverse).ok
        for fp, cf, _o in held
    )


def _write_all(
    root: SafeRoot,
    report: FolderReport,
    held: list[tuple[FilePatch, CheckedFile | None, FileOutcome]],
) -> FolderReport:
    """Write every file; on the first failure put back what was written."""
    done: list[tuple[FilePatch, CheckedFile | None, FileOutcome]] = []
    try:
        for fp, cf, outcome in held:
            if all(h.status is HunkStatus.ALREADY_APPLIED for h in outcome.hunks):
                continue
            _write_one(root, fp, cf, outcome.content)
            done.append((fp, cf, outcome))
    except (PatchdError, OSError) as exc:
        undo_errors = _undo(root, done)
        message = f"{exc}; restored {len(done) - len(undo_errors)} written file(s)"
        if undo_errors:
            message += "; could NOT restore: " + "; ".join(undo_errors)
        return replace(report, written=False, write_error=message)
    return replace(report, written=True)


def _write_one(root: SafeRoot, fp: FilePatch, cf: CheckedFile | None, new: bytes | None) -> None:
    if cf is None:
        assert new is not None
        create_new(root, fp.path, new, expected_uid=None)
    elif new is None:
        remove_checked(cf, expected_sha=cf.facts.sha256)
    else:
        replace_checked(cf, new, expected_sha=cf.facts.sha256)


def _undo(
    root: SafeRoot, done: list[tuple[FilePatch, CheckedFile | None, FileOutcome]]
) -> list[str]:
    """Put written files back to their original bytes; returns what could not be undone."""
    errors: list[str] = []
    for fp, cf, outcome in reversed(done):
        try:
            now = open_checked(root, fp.path, expected_uid=None, max_size=MAX_FILE_SIZE)
            if cf is None:  # we created it: remove it again
                if now is not None:
                    with now:
                        remove_checked(now, expected_sha=sha256(outcome.content or b""))
            elif now is None:  # we deleted it: create it again
                create_new(
                    root,
                    fp.path,
                    cf.data,
                    expected_uid=None,
                    mode=cf.facts.mode,
                    uid=cf.facts.uid,
                    gid=cf.facts.gid,
                )
            else:
                with now:
                    replace_checked(now, cf.data, expected_sha=now.facts.sha256)
        except (PatchdError, OSError) as exc:
            errors.append(f"{fp.path}: {exc}")
    return errors
