"""Dry run, apply, verify, rollback and recover for ONE installation on this host.

``root_path`` is the account root (trusted, from the inventory); ``inst_path`` the
installation's folder relative to it (``""`` for the root itself); diff paths are relative
to the installation. Every file access goes through :mod:`patchd.patcher.safewrite`.

Apply is all-or-nothing: originals are backed up (from the validated descriptors) into the
backup store, a journal is written before the first replace, every replace re-checks the
pre-image, every post-image is verified by re-reading; on any failure the files already
replaced are put back. A process killed at any moment is put right by :func:`recover`.

NOTE: stdlib-only; the lead wires these plain functions into agent ops.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import posixpath
import re
import stat
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from patchd.engine.apply import FileOutcome, applies, apply_file
from patchd.engine.model import FilePatch
from patchd.errors import PatchdError, UnsafePathError
from patchd.outcomes import Outcome, Reason
from patchd.patcher import journal as jr
from patchd.patcher.faults import fault_point
from patchd.patcher.names import show
from patchd.patcher.php import lint_files, php_version_problem
from patchd.patcher.privdrop import open_root
from patchd.patcher.results import (
    ApplyResult,
    DryRunResult,
    FilePlan,
    FileRestore,
    RecoveryResult,
    RollbackResult,
)
from patchd.patcher.safewrite import (
    NEW_FILE_MODE,
    CheckedFile,
    FileChangedError,
    create_new,
    open_checked,
    open_in_folder,
    open_parent,
    remove_checked,
    replace_checked,
    sha256,
)
from patchd.safefs import SafeRoot, join_rel, split_relpath

__all__ = [
    "ApplyResult",
    "DryRunResult",
    "FilePlan",
    "FileRestore",
    "RecoveryResult",
    "RollbackResult",
    "apply",
    "dry_run",
    "holds_post_image",
    "pending_journals",
    "recover",
    "recover_entry",
    "rollback",
]


@dataclass(frozen=True)
class _Current:
    """A touched file as it is now: content (None = absent) and facts for the plan."""

    fp: FilePatch
    rel: str  # relative to the installation
    acct_rel: str  # relative to the account root
    data: bytes | None
    mode: int
    uid: int
    gid: int
    held: CheckedFile | None = None  # kept open for apply (see _read_current's ``hold``)
    sha: str | None = None  # sha256 of ``data`` (computed when it was read)


def _acct_rel(inst_path: str, rel: str) -> str:
    split_relpath(rel)  # NOTE: refuses '..', absolute names and NUL even if parse let them by
    return join_rel(inst_path, rel)


def _inst_rel(inst_path: str, acct_rel: str) -> str:
    """Show a path relative to the installation when it lies inside it."""
    prefix = join_rel(inst_path) + "/" if join_rel(inst_path) else ""
    return acct_rel[len(prefix) :] if prefix and acct_rel.startswith(prefix) else acct_rel


def _failed(reason: Reason, detail: str) -> DryRunResult:
    return DryRunResult("failed", Outcome.DRY_RUN_FAILED, reason, f"{reason}: {detail}")


def _read_current(
    root: SafeRoot,
    inst_path: str,
    files: list[FilePatch],
    *,
    expected_uid: int | None,
    max_file_size: int,
    hold: bool = False,
) -> tuple[list[_Current], DryRunResult | None]:
    """Check every touched file and folder (unsafe paths first) and read what exists.

    With ``hold`` the checked files stay open (``_Current.held``) so apply replaces exactly
    what was read; the caller closes them (also on a verdict: see :func:`_close_held`).
    """
    current: list[_Current] = []
    missing: list[str] = []
    try:
        return _read_each(
            root, inst_path, files, current, missing, expected_uid, max_file_size, hold
        )
    except BaseException:
        _close_held(current)
        raise


def _close_held(current: list[_Current]) -> None:
    for c in current:
        if c.held is not None:
            c.held.close()


def _read_each(
    root: SafeRoot,
    inst_path: str,
    files: list[FilePatch],
    current: list[_Current],
    missing: list[str],
    expected_uid: int | None,
    max_file_size: int,
    hold: bool,
) -> tuple[list[_Current], DryRunResult | None]:
    for fp in files:
        try:
            acct_rel = _acct_rel(inst_path, fp.path)
        except UnsafePathError as exc:
            _close_held(current)
            return [], _failed(Reason.UNSAFE_PATH, f"{show(fp.path)}: {exc.message}")
        try:
            cf = open_checked(root, acct_rel, expected_uid=expected_uid, max_size=max_file_size)
        except UnsafePathError as exc:
            where = exc.where if isinstance(exc.where, str) else acct_rel
            inst_where = _inst_rel(inst_path, where)
            msg = exc.message.replace(show(where), show(inst_where), 1)
            _close_held(current)
            return [], _failed(Reason.UNSAFE_PATH, msg)
        except FileNotFoundError as exc:  # a folder on the way is missing
            folder = _inst_rel(inst_path, str(exc.filename))
            missing.append(f"{show(fp.path)} (folder {show(folder)} is missing)")
            continue
        except PermissionError:
            # NOTE: working as the account (privilege drop), a file or folder the customer
            # made unreadable (mode 000) cannot be patched; that is theirs, not a bug.
            _close_held(current)
            return [], _failed(
                Reason.UNSAFE_PATH, f"{show(fp.path)} is not readable by the account owner"
            )
        if cf is None:
            parent_fd, _name = open_parent(root, acct_rel, expected_uid=expected_uid)
            try:
                pst = os.fstat(parent_fd)
            finally:
                os.close(parent_fd)
            if not fp.is_new and not fp.is_deleted:
                missing.append(show(fp.path))
            uid = pst.st_uid if expected_uid is None else expected_uid
            current.append(_Current(fp, fp.path, acct_rel, None, NEW_FILE_MODE, uid, pst.st_gid))
            continue
        current.append(
            _Current(
                fp,
                fp.path,
                acct_rel,
                cf.data,
                cf.facts.mode,
                cf.facts.uid,
                cf.facts.gid,
                cf if hold else None,
                cf.facts.sha256,
            )
        )
        if not hold:
            cf.close()
    if missing:
        _close_held(current)
        return [], _failed(Reason.MISSING_FILE, ", ".join(missing))
    return current, None


#: Files a CMS's own updater keeps in the installation folder while it runs.
UPDATER_MARKERS = (".maintenance",)
#: A marker older than this is left over from an updater that died (WordPress itself
#: ignores a ``.maintenance`` older than ten minutes), so it does not block the patch.
UPDATER_FRESH_SECONDS = 600


def _updater_running(root: SafeRoot, inst_path: str) -> str | None:
    """Why the CMS's own updater looks busy in the installation, or None.

    NOTE: the updater replaces core files itself; patching under it would race it (and the
    pre-image check would only catch the files it already wrote).
    """
    for name in UPDATER_MARKERS:
        try:
            st = root.lstat(join_rel(inst_path, name))
        except (OSError, UnsafePathError):
            continue
        age = time.time() - st.st_mtime
        if age < UPDATER_FRESH_SECONDS:
            return f"CMS updater running ({name} present, {max(0, int(age))} s old)"
    return None


_HUNK_PREFIX = re.compile(r"^hunk #\d+ (does not match: )?")


def _hunk_detail(rel: str, out: FileOutcome) -> str:
    """``wp-includes/x.php hunk 2 (context differs at line 41)`` for the first bad hunk."""
    for h in out.hunks:
        if h.status.applied:
            continue
        why = _HUNK_PREFIX.sub("", h.reason) or h.status.value
        return f"{show(rel)} hunk {h.index} ({why})"
    return f"{show(rel)} ({out.reason or 'does not apply'})"


def dry_run(
    root_path: str,
    inst_path: str,
    files: list[FilePatch],
    *,
    expected_uid: int | None,
    min_php: str | None,
    account_php: str | None,
    php_binary: str | None,
    max_file_size: int,
) -> DryRunResult:
    """Check whether ``files`` apply to the installation; nothing is written.

    Order: a CMS updater at work (fresh ``.maintenance``), unsafe paths, missing files,
    already patched (every file reverse-applies), forward apply in memory (first failing
    file and hunk), PHP version, ``php -l``.
    """
    with open_root(root_path) as root:
        busy = _updater_running(root, inst_path)
        if busy is not None:
            return _failed(Reason.UNSAFE_PATH, busy)
        current, verdict = _read_current(
            root, inst_path, files, expected_uid=expected_uid, max_file_size=max_file_size
        )
    if verdict is not None:
        return verdict
    return _plan(root_path, current, min_php, account_php, php_binary)


def _plan(
    root_path: str,
    current: list[_Current],
    min_php: str | None,
    account_php: str | None,
    php_binary: str | None,
) -> DryRunResult:
    """The in-memory part of the dry run on files already read (see :func:`dry_run`)."""
    if current and all(applies(c.fp, c.data, reverse=True) for c in current):
        return DryRunResult(
            "already-patched",
            Outcome.ALREADY_PATCHED,
            None,
            "the fix is present: every hunk reverse-applies",
        )
    plans: list[FilePlan] = []
    for c in current:
        out = apply_file(c.fp, c.data)
        if not out.ok:
            return _failed(Reason.MODIFIED, _hunk_detail(c.rel, out))
        new = None if c.fp.is_deleted else out.content
        plans.append(
            FilePlan(
                rel=c.rel,
                pre_sha256=None if c.data is None else (c.sha or sha256(c.data)),
                post_sha256=None if new is None else sha256(new),
                new_bytes=new,
                mode=c.mode,
                uid=c.uid,
                gid=c.gid,
            )
        )
    problem = php_version_problem(min_php, account_php)
    if problem is not None:
        return _failed(Reason.PHP_INCOMPATIBLE, problem)
    if php_binary:
        lint = lint_files(
            php_binary, root_path, [(p.rel, p.new_bytes) for p in plans if p.new_bytes is not None]
        )
        if lint is not None:
            return _failed(Reason.LINT_FAILED, lint)
    return DryRunResult(
        "applicable", None, None, f"{len(plans)} file(s) apply cleanly", tuple(plans)
    )


# -- apply ------------------------------------------------------------------------------


class InstallationBusyError(PatchdError):
    """Another patchd process holds the installation (e.g. an agent orphaned by a dropped
    SSH connection that is still applying)."""


@contextlib.contextmanager
def installation_lock(root: SafeRoot, inst_path: str) -> Iterator[None]:
    """Hold an exclusive ``flock`` on the installation's folder while writing into it.

    NOTE: the rollout lock lives with the controller; when an SSH connection drops, the
    host's agent may still be applying while the next rollout's ``recover`` runs. This
    lock (on a fresh open of the folder, so each process has its own lock) makes
    ``recover`` leave an installation alone while another process is applying to it.
    """
    parent = root.open_dir(inst_path)
    try:
        fd = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=parent)
    finally:
        os.close(parent)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise InstallationBusyError(
                "another patchd process is working on this installation", where=inst_path
            ) from None
        yield
    finally:
        os.close(fd)


def apply(
    root_path: str,
    inst_path: str,
    files: list[FilePatch],
    *,
    expected_uid: int | None,
    min_php: str | None,
    account_php: str | None,
    php_binary: str | None,
    max_file_size: int,
    backup_dir: str,
    run_id: str,
    store: jr.BackupStore | None = None,
) -> ApplyResult:
    """Dry-run, then apply all of ``files`` or none of them (see the module docstring).

    Returns ``patched``; the dry run's ``already-patched``/``dry-run-failed``; or
    ``apply-failed`` after putting back every file already replaced. Raises
    :class:`~patchd.patcher.journal.BackupStoreError` for an unusable backup store.
    ``store`` defaults to :class:`~patchd.patcher.journal.DirectStore` on ``backup_dir``
    (a worker that dropped root passes its proxy to the root parent instead).

    NOTE: the dry run's checked descriptors stay open and are the ones replaced, so each
    file is walked to and read once; the pre-image is still re-checked through the held
    descriptor right before its name is replaced (:func:`replace_checked`).
    """
    with open_root(root_path) as root:
        busy = _updater_running(root, inst_path)
        if busy is not None:
            dr = _failed(Reason.UNSAFE_PATH, busy)
            return ApplyResult(Outcome.DRY_RUN_FAILED, dr.reason, dr.detail)
        current, verdict = _read_current(
            root,
            inst_path,
            files,
            expected_uid=expected_uid,
            max_file_size=max_file_size,
            hold=True,
        )
        try:
            dr = verdict or _plan(root_path, current, min_php, account_php, php_binary)
            if dr.status != "applicable":
                assert dr.outcome is not None
                return ApplyResult(dr.outcome, dr.reason, dr.detail)
            return _apply_planned(
                root,
                root_path,
                inst_path,
                dr.files,
                [c.held for c in current],
                jr.DirectStore(backup_dir) if store is None else store,
                run_id,
                expected_uid,
                max_file_size,
            )
        finally:
            _close_held(current)


def _apply_planned(
    root: SafeRoot,
    root_path: str,
    inst_path: str,
    plans: tuple[FilePlan, ...],
    held: list[CheckedFile | None],
    store: jr.BackupStore,
    run_id: str,
    expected_uid: int | None,
    max_file_size: int,
) -> ApplyResult:
    """Back up, journal, replace and verify the planned files (``held``: their checked
    descriptors from the dry run, None for files the patch creates)."""
    store.check()
    entry: str | None = None
    journal: jr.Journal | None = None
    replaced: list[jr.JournalFile] = []
    with contextlib.ExitStack() as locked:
        try:
            locked.enter_context(installation_lock(root, inst_path))
        except InstallationBusyError as exc:
            return ApplyResult(Outcome.APPLY_FAILED, None, f"apply-failed: {exc}; nothing changed")
        try:
            jfiles: list[jr.JournalFile] = []
            backups: list[tuple[str, bytes]] = []
            for n, (p, cf) in enumerate(zip(plans, held, strict=True)):
                backup = None
                if cf is not None:
                    backup = f"{n:04d}.orig"
                    backups.append((backup, cf.data))
                jfiles.append(
                    jr.JournalFile(p.rel, p.pre_sha256, p.post_sha256, backup, p.mode, p.uid, p.gid)
                )
            journal = jr.Journal(
                root_path, inst_path, run_id, "applying", tuple(jfiles), expected_uid
            )
            # NOTE: the entry, the originals and then the journal, in one step of the store
            # (fault point after_backup is inside it); nothing is replaced before.
            entry = store.begin(run_id, root_path, inst_path, backups, journal)
            fault_point("after_journal")
            for p, cf, jf in zip(plans, held, jfiles, strict=True):
                _replace_one(root, inst_path, p, cf, expected_uid)
                replaced.append(jf)
                if len(replaced) == 1:
                    fault_point("after_first_replace")
            fault_point("before_verify")
            for p, cf in zip(plans, held, strict=True):
                _verify_post(root, inst_path, p, max_file_size, cf)
            store.finish(entry, journal.with_state("done"))
        except (OSError, PatchdError) as exc:
            detail = f"{_describe(exc)}"
            # NOTE: let go of the originals first: a replaced original held open keeps its
            # blocks, and on a full disk the restore needs exactly that space.
            for cf in held:
                if cf is not None:
                    cf.close()
            restores = [
                _restore_one(
                    root, inst_path, jf, store, entry or "", expected_uid, RESTORE_MAX_SIZE
                )
                for jf in reversed(replaced)
            ]
            bad = [r for r in restores if r.status in ("conflict", "failed")]
            if journal is not None and entry is not None and not bad:
                _save_quietly(store, entry, journal.with_state("restored"))
            if bad:
                detail += "; NOT restored: " + "; ".join(f"{show(r.rel)}: {r.detail}" for r in bad)
            else:
                detail += "; installation restored to its prior state"
            return ApplyResult(Outcome.APPLY_FAILED, None, f"apply-failed: {detail}", entry, plans)
    return ApplyResult(Outcome.PATCHED, None, f"patched {len(plans)} file(s)", entry, plans)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, PatchdError):
        return exc.message
    if isinstance(exc, OSError):
        name = f" ({show(str(exc.filename))})" if exc.filename is not None else ""
        return f"{exc.strerror or exc}{name}"
    return str(exc)


def _save_quietly(store: jr.BackupStore, entry: str, journal: jr.Journal) -> None:
    # NOTE: if this fails the journal stays "applying"; recover() then finds every file at
    # its pre-image and only marks the journal.
    with contextlib.suppress(OSError, jr.BackupStoreError):
        store.save_journal(entry, journal)


def _replace_one(
    root: SafeRoot, inst_path: str, p: FilePlan, cf: CheckedFile | None, expected_uid: int | None
) -> None:
    """Put the post-image of ``p`` in place (replace, create or delete)."""
    if cf is None:
        assert p.new_bytes is not None
        create_new(
            root,
            _acct_rel(inst_path, p.rel),
            p.new_bytes,
            expected_uid=expected_uid,
            mode=p.mode,
            uid=p.uid,
            gid=p.gid,
        )
    elif p.new_bytes is None:
        assert p.pre_sha256 is not None
        remove_checked(cf, expected_sha=p.pre_sha256)
    else:
        assert p.pre_sha256 is not None
        replace_checked(cf, p.new_bytes, expected_sha=p.pre_sha256)


def _hash_now(
    root: SafeRoot, acct_rel: str, max_size: int, expected_uid: int | None = None
) -> str | None:
    """The current sha256 of a file (None when absent), through a checked open."""
    cf = open_checked(root, acct_rel, expected_uid=expected_uid, max_size=max_size)
    if cf is None:
        return None
    with cf:
        return cf.facts.sha256


def _verify_post(
    root: SafeRoot, inst_path: str, p: FilePlan, max_size: int, cf: CheckedFile | None
) -> None:
    """Check that the file now holds the post-image (absent for a deletion), re-reading it.

    NOTE: a replaced file is re-opened by name in the folder descriptor held since the dry
    run (the same checks as any open: no link, regular, one hard link); only a created
    file, which had no folder held, is walked to from the root again.
    """
    limit = max(max_size, len(p.new_bytes or b""))
    if cf is not None and cf.dir_fd >= 0:
        opened = open_in_folder(cf.dir_fd, cf.name, p.rel, max_size=limit)
        now = None if opened is None else opened.sha256
    else:
        now = _hash_now(root, _acct_rel(inst_path, p.rel), limit)
    if now != p.post_sha256:
        raise FileChangedError(
            f"{show(p.rel)} does not hold the patched content after writing", where=p.rel
        )


# -- putting files back -----------------------------------------------------------------


def _restore_one(
    root: SafeRoot,
    inst_path: str,
    jf: jr.JournalFile,
    store: jr.BackupStore,
    entry: str,
    expected_uid: int | None,
    max_size: int,
) -> FileRestore:
    """Put one file back to its pre-image if it holds our post-image; verify by hash."""
    acct_rel = _acct_rel(inst_path, jf.rel)
    try:
        cf = open_checked(root, acct_rel, expected_uid=expected_uid, max_size=max_size)
        now = None if cf is None else cf.facts.sha256
        try:
            if now == jf.pre:
                return FileRestore(jf.rel, "unchanged", "already at the original content")
            if now != jf.post:
                return FileRestore(jf.rel, "conflict", "conflict: changed since patch")
            original = None
            if jf.backup is not None:
                original = store.read_backup(entry, jf.backup)
                if sha256(original) != jf.pre:
                    return FileRestore(jf.rel, "failed", "backup does not match its hash")
            if cf is None:  # the patch deleted it
                assert original is not None
                create_new(
                    root,
                    acct_rel,
                    original,
                    expected_uid=expected_uid,
                    mode=jf.mode,
                    uid=jf.uid,
                    gid=jf.gid,
                )
            elif original is None:  # the patch created it
                remove_checked(cf, expected_sha=now)
            else:
                replace_checked(cf, original, expected_sha=now)
        finally:
            if cf is not None:
                cf.close()
        if _hash_now(root, acct_rel, max(max_size, 1)) != jf.pre:
            return FileRestore(jf.rel, "failed", "restored content does not verify")
    except (OSError, PatchdError) as exc:
        return FileRestore(jf.rel, "failed", _describe(exc))
    return FileRestore(jf.rel, "restored", "restored from backup")


def _restore_all(
    journal: jr.Journal, store: jr.BackupStore, entry: str, max_size: int, *, sweep: bool = False
) -> list[FileRestore]:
    with open_root(journal.root) as root, contextlib.ExitStack() as locked:
        if sweep:  # recovery of someone else's apply: never while they still work
            locked.enter_context(installation_lock(root, journal.inst))
        restored = [
            _restore_one(root, journal.inst, jf, store, entry, journal.expected_uid, max_size)
            for jf in reversed(journal.files)
        ]
        if sweep:
            _sweep_temps(root, journal)
        return restored


#: The names of :func:`patchd.patcher.safewrite.write_temp`'s temp files.
_TEMP_NAME = re.compile(r"^\.patchd-[0-9a-f]{16}\.tmp$")


def _sweep_temps(root: SafeRoot, journal: jr.Journal) -> None:
    """Remove our temp files left in the folders of an interrupted apply.

    NOTE: a process killed between writing a temp file and renaming it leaves one behind
    (its name is random, so the journal cannot name it); only regular files with exactly
    our temp name pattern are removed, through the checked folder descriptor.
    """
    folders = {posixpath.dirname(_acct_rel(journal.inst, jf.rel)) + "/x" for jf in journal.files}
    for probe in folders:
        try:
            dir_fd, _name = open_parent(root, probe.lstrip("/"), expected_uid=journal.expected_uid)
        except (OSError, PatchdError):
            continue
        try:
            for name in os.listdir(dir_fd):
                if not _TEMP_NAME.match(name):
                    continue
                with contextlib.suppress(OSError):
                    st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
                    if stat.S_ISREG(st.st_mode):
                        os.unlink(name, dir_fd=dir_fd)
        finally:
            os.close(dir_fd)


#: Files larger than this are never restored (a backup is never larger than what we read).
RESTORE_MAX_SIZE = 1 << 30


def holds_post_image(entry: str) -> bool:
    """Whether every file of the journal in ``entry`` holds its recorded post-image now.

    NOTE: a journal alone does not prove the files are patched: a store shared by two
    ledgers (or kept across a new ledger) holds journals of another run with the same id.
    """
    journal = jr.load_journal(entry)
    try:
        with open_root(journal.root) as root:
            return all(
                _hash_now(root, _acct_rel(journal.inst, jf.rel), RESTORE_MAX_SIZE) == jf.post
                for jf in journal.files
            )
    except (OSError, PatchdError):
        return False


def rollback(
    root_path: str, inst_path: str, journal_path: str, *, store: jr.BackupStore | None = None
) -> RollbackResult:
    """Restore the originals recorded in ``journal_path`` (a journal file or its folder).

    A file is restored only if it still holds the recorded post-image; one changed since
    the patch is reported as a conflict and left alone. Restored files are verified
    against the pre-image hash. ``store`` defaults to the folder holding the journal.
    """
    store = jr.DirectStore(os.path.dirname(journal_path)) if store is None else store
    entry = store.entry_of(journal_path)
    journal = store.load_journal(entry)
    if (os.path.normpath(journal.root), join_rel(journal.inst)) != (
        os.path.normpath(root_path),
        join_rel(inst_path),
    ):
        return RollbackResult(
            False,
            entry,
            f"journal belongs to another installation ({show(journal.root)} {show(journal.inst)})",
        )
    files = _restore_all(journal, store, entry, RESTORE_MAX_SIZE)
    bad = [f for f in files if f.status in ("conflict", "failed")]
    if not bad:
        store.save_journal(entry, journal.with_state("rolled-back"))
        restored = sum(f.status == "restored" for f in files)
        return RollbackResult(True, entry, f"rolled back {restored} file(s)", tuple(files))
    detail = "; ".join(f"{show(f.rel)}: {f.detail}" for f in bad)
    return RollbackResult(False, entry, detail, tuple(files))


def pending_journals(
    backup_dir: str, runs: Iterable[str] | None = None, roots: Iterable[str] | None = None
) -> list[tuple[str, jr.Journal]]:
    """The ``(entry, journal)`` pairs :func:`recover` would act on (journal not final; only
    of the runs ``runs`` and the account roots ``roots`` when given)."""
    jr.check_store(backup_dir)
    wanted = None if roots is None else {os.path.normpath(r) for r in roots}
    found: list[tuple[str, jr.Journal]] = []
    for entry in jr.find_journals(backup_dir, runs):
        journal = jr.load_journal(entry)
        if journal.state in jr.FINAL_STATES:
            continue
        if wanted is not None and os.path.normpath(journal.root) not in wanted:
            continue
        found.append((entry, journal))
    return found


def recover(
    backup_dir: str, runs: Iterable[str] | None = None, roots: Iterable[str] | None = None
) -> list[RecoveryResult]:
    """Put back every installation whose apply was interrupted (journal not final); only
    in the runs ``runs`` and the account roots ``roots`` when given (another bundle's or
    another host's live apply is not ours to undo).

    Files holding the post-image are restored from backup, files still at the pre-image
    are left; the journal is then marked ``recovered``. Files changed by someone else since
    are reported as conflicts (and not touched); an I/O failure leaves the journal as it
    was, so a later call tries again. See :func:`recover_entry` for one installation.
    """
    store = jr.DirectStore(backup_dir)
    return [recover_entry(entry, store) for entry, _j in pending_journals(backup_dir, runs, roots)]


def recover_entry(entry: str, store: jr.BackupStore) -> RecoveryResult:
    """Recover the one interrupted apply whose journal is in ``entry`` (see :func:`recover`)."""
    journal = store.load_journal(entry)
    try:
        files = _restore_all(journal, store, entry, RESTORE_MAX_SIZE, sweep=True)
    except (OSError, PatchdError) as exc:
        return RecoveryResult(
            entry, journal.root, journal.inst, journal.run_id, False, _describe(exc)
        )
    failed = [f for f in files if f.status == "failed"]
    conflicts = [f for f in files if f.status == "conflict"]
    if not failed:
        store.save_journal(entry, journal.with_state("recovered"))
    problems = failed + conflicts
    detail = (
        "; ".join(f"{show(f.rel)}: {f.detail}" for f in problems)
        if problems
        else f"restored {sum(f.status == 'restored' for f in files)} file(s)"
    )
    return RecoveryResult(
        entry, journal.root, journal.inst, journal.run_id, not problems, detail, tuple(files)
    )
