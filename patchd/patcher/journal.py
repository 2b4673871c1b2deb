"""The backup store and the per-installation journal that makes apply crash-safe.

Layout below the store (a root-owned folder outside every customer tree)::

    <backup_dir>/<run_id>/<key>/journal.json    state, installation, files, hashes
    <backup_dir>/<run_id>/<key>/0000.orig       original bytes of the first file, 0600

``key`` is derived from the account root and installation path (with a ``.N`` suffix when
the same installation is applied twice in one run). The journal is written atomically
(temp file, fsync, rename, fsync folder) before the first customer file is replaced, so a
process killed at any moment leaves either no journal (nothing replaced yet) or one that
:func:`patchd.patcher.installation.recover` can act on.

NOTE: stdlib-only.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import os
import re
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol

from patchd.errors import PatchdError
from patchd.patcher.faults import fault_point
from patchd.patcher.safewrite import write_all

JOURNAL_NAME = "journal.json"
JOURNAL_VERSION = 1

JournalState = Literal["applying", "done", "restored", "recovered", "rolled-back"]
#: States after which the installation needs nothing more from :func:`recover`.
FINAL_STATES = frozenset({"done", "restored", "recovered", "rolled-back"})

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class BackupStoreError(PatchdError):
    """The backup store is unusable (missing, a symlink, not root-owned, group-writable)."""


@dataclass(frozen=True)
class JournalFile:
    """One touched file: its path (relative to the installation), hashes, backup, facts.

    ``pre`` is None for a file the patch creates, ``post`` None for one it deletes.
    """

    rel: str
    pre: str | None
    post: str | None
    backup: str | None  # file name inside the journal's folder
    mode: int
    uid: int
    gid: int

    def to_json(self) -> dict[str, Any]:
        """A JSON-safe form."""
        return {
            "rel": self.rel,
            "pre": self.pre,
            "post": self.post,
            "backup": self.backup,
            "mode": self.mode,
            "uid": self.uid,
            "gid": self.gid,
        }

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> JournalFile:
        """The inverse of :meth:`to_json`."""
        return cls(
            obj["rel"],
            obj["pre"],
            obj["post"],
            obj["backup"],
            int(obj["mode"]),
            int(obj["uid"]),
            int(obj["gid"]),
        )


@dataclass(frozen=True)
class Journal:
    """What one apply of one installation is doing; see the module docstring."""

    root: str
    inst: str
    run_id: str
    state: JournalState
    files: tuple[JournalFile, ...] = field(default=())
    expected_uid: int | None = None  # the account's owner check, reused when restoring

    def to_json(self) -> dict[str, Any]:
        """A JSON-safe form."""
        return {
            "version": JOURNAL_VERSION,
            "root": self.root,
            "inst": self.inst,
            "run_id": self.run_id,
            "state": self.state,
            "expected_uid": self.expected_uid,
            "files": [f.to_json() for f in self.files],
        }

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Journal:
        """The inverse of :meth:`to_json`."""
        if obj.get("version") != JOURNAL_VERSION:
            raise BackupStoreError(f"unknown journal version {obj.get('version')!r}")
        return cls(
            obj["root"],
            obj["inst"],
            obj["run_id"],
            obj["state"],
            tuple(JournalFile.from_json(f) for f in obj["files"]),
            obj.get("expected_uid"),
        )

    def with_state(self, state: JournalState) -> Journal:
        """A copy in ``state``."""
        return replace(self, state=state)


def check_store(backup_dir: str) -> None:
    """Refuse a store that is not a real folder owned by us and writable only by us."""
    try:
        st = os.lstat(backup_dir)
    except FileNotFoundError:
        raise BackupStoreError("backup folder does not exist", where=backup_dir) from None
    if not stat.S_ISDIR(st.st_mode):
        raise BackupStoreError("backup folder is not a real folder", where=backup_dir)
    if st.st_uid != os.geteuid():
        raise BackupStoreError(f"backup folder is owned by uid {st.st_uid}", where=backup_dir)
    if st.st_mode & 0o022:
        raise BackupStoreError("backup folder is group- or world-writable", where=backup_dir)


def _safe_component(text: str) -> str:
    """``text`` made into one harmless file name component."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]", "_", text)[:80].lstrip(".")
    return cleaned or "_"


def make_entry_dir(backup_dir: str, run_id: str, root: str, inst: str) -> str:
    """Create (0700) and return a fresh folder for one installation's backups and journal."""
    check_store(backup_dir)
    run_dir = os.path.join(backup_dir, _safe_component(run_id))
    if run_dir not in _RUN_DIRS:
        with contextlib.suppress(FileExistsError):
            os.mkdir(run_dir, 0o700)
        if not stat.S_ISDIR(os.lstat(run_dir).st_mode):
            raise BackupStoreError("run folder is not a real folder", where=run_dir)
        _fsync_dir(backup_dir)
        _RUN_DIRS.add(run_dir)
    key = _entry_key(root, inst)
    for n in range(1000):
        path = os.path.join(run_dir, key if n == 0 else f"{key}.{n}")
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            continue
        except FileNotFoundError:
            if run_dir not in _RUN_DIRS:
                raise
            _RUN_DIRS.discard(run_dir)  # NOTE: removed behind our back: make it again
            return make_entry_dir(backup_dir, run_id, root, inst)
        _fsync_dir(run_dir)  # NOTE: the entry must survive a crash along with its journal
        return path
    raise BackupStoreError("too many applies of one installation in one run", where=run_dir)


#: Run folders this process made or checked (the store is root's and 0700: they stay).
_RUN_DIRS: set[str] = set()


def _fsync_dir(path: str) -> None:
    fd = os.open(path, _DIR_FLAGS)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _entry_key(root: str, inst: str) -> str:
    return hashlib.sha256(f"{root}\0{inst}".encode("utf-8", "surrogateescape")).hexdigest()[:16]


def entries_for(backup_dir: str, run_id: str, root: str, inst: str) -> list[str]:
    """The journal folders of one installation in one run, oldest first (resume looks here)."""
    run_dir = os.path.join(backup_dir, _safe_component(run_id))
    key = _entry_key(root, inst)
    found: list[str] = []
    for n in range(1000):
        entry = os.path.join(run_dir, key if n == 0 else f"{key}.{n}")
        if not os.path.isfile(os.path.join(entry, JOURNAL_NAME)):
            if n > 0 or not os.path.isdir(entry):
                break
            continue
        found.append(entry)
    return found


_TEMP_COUNTER = itertools.count()


def write_private(
    folder: str, name: str, data: bytes, *, exclusive: bool = True, sync_folder: bool = True
) -> None:
    """Write ``folder/name`` (0600) durably; ``exclusive`` refuses an existing name.

    Non-exclusive writes go through a temp name and ``rename`` so readers never see half.
    ``sync_folder=False`` leaves the folder's fsync (the name's durability) to a later
    write into the same folder.
    """
    dfd = os.open(folder, _DIR_FLAGS)
    try:
        # NOTE: a temp name of its own (no unlink of a leftover first); one left by a
        # crash is never read (readers open ``name`` only).
        target = name if exclusive else f".{name}.{os.getpid()}.{next(_TEMP_COUNTER)}.tmp"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(target, flags, 0o600, dir_fd=dfd)
        try:
            write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        if not exclusive:
            os.rename(target, name, src_dir_fd=dfd, dst_dir_fd=dfd)
        if sync_folder or not exclusive:
            os.fsync(dfd)
    finally:
        os.close(dfd)


def read_private(folder: str, name: str) -> bytes:
    """Read ``folder/name`` without following a symlink."""
    dfd = os.open(folder, _DIR_FLAGS)
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dfd)
    finally:
        os.close(dfd)
    with os.fdopen(fd, "rb") as fh:
        return fh.read()


def save_journal(folder: str, journal: Journal) -> None:
    """Write ``journal`` atomically into ``folder``."""
    # NOTE: ensure_ascii keeps surrogate-escaped (non-UTF-8) names as \udcXX escapes.
    # NOTE: compact: ``indent`` makes json use its pure-Python encoder (2 journals per apply).
    data = json.dumps(journal.to_json(), ensure_ascii=True, separators=(",", ":")).encode("ascii")
    write_private(folder, JOURNAL_NAME, data, exclusive=False)


def load_journal(path: str) -> Journal:
    """Read the journal at ``path`` (a journal file or its folder)."""
    return Journal.from_json(json.loads(read_private(entry_of(path), JOURNAL_NAME)))


def find_journals(backup_dir: str, runs: Iterable[str] | None = None) -> list[str]:
    """Every journal folder in the store (``<run>/<key>/journal.json``), sorted; only those
    of the run ids ``runs`` when given."""
    found: list[str] = []
    names = sorted(os.listdir(backup_dir))
    if runs is not None:
        wanted = {_safe_component(r) for r in runs}
        names = [n for n in names if n in wanted]
    for run in names:
        run_dir = os.path.join(backup_dir, run)
        if not os.path.isdir(run_dir) or os.path.islink(run_dir):
            continue
        for key in sorted(os.listdir(run_dir)):
            entry = os.path.join(run_dir, key)
            if os.path.isfile(os.path.join(entry, JOURNAL_NAME)):
                found.append(entry)
    return found


# -- the store as an interface ----------------------------------------------------------


class BackupStore(Protocol):
    """What :mod:`patchd.patcher.installation` needs from the backup store.

    NOTE: an interface so the account's file work can run in a worker that dropped root
    (:mod:`patchd.patcher.privdrop`): the worker gets a proxy that forwards each call to the
    root parent, which alone can write the root-owned store. Every method is one durable
    step, so crash-safety is the same whichever side performs it.
    """

    def check(self) -> None:
        """Raise :class:`BackupStoreError` unless the store is usable."""

    def make_entry(self, run_id: str, root: str, inst: str) -> str:
        """Create and return a fresh entry folder for one apply of one installation."""

    def write_backup(self, entry: str, name: str, data: bytes) -> None:
        """Write an original's bytes (0600, exclusive, fsynced) into ``entry``; the name
        is durable once :meth:`save_journal` (which apply calls next) synced the entry."""

    def begin(
        self,
        run_id: str,
        root: str,
        inst: str,
        backups: Sequence[tuple[str, bytes]],
        journal: Journal,
    ) -> str:
        """:meth:`make_entry`, then :meth:`write_backup` of each ``(name, data)`` into it,
        then :meth:`save_journal` of ``journal`` (state ``applying``), in that order; the
        entry. NOTE: one step where the store is another process's (one message instead
        of one per file and one for the journal); a failure part way leaves an entry
        without a journal, which recovery ignores."""

    def finish(self, entry: str, journal: Journal) -> None:
        """Save the final journal (state ``done``) of an apply that succeeded, like
        :meth:`save_journal`. NOTE: a store in another process may send it along with the
        job's result instead of on its own (one round trip less per apply); the result
        is then only reported once the journal is saved, and a journal that could not be
        saved turns the result into an error whose apply is put back (it stays
        ``applying``). Either way nothing of the installation changes after it."""

    def read_backup(self, entry: str, name: str) -> bytes:
        """Read back a backup written by :meth:`write_backup`."""

    def save_journal(self, entry: str, journal: Journal) -> None:
        """Write ``journal`` into ``entry`` atomically and durably."""

    def load_journal(self, entry: str) -> Journal:
        """Read the journal of ``entry``."""

    def entry_of(self, path: str) -> str:
        """The entry folder of ``path`` (a journal file or its folder)."""


#: Names :meth:`BackupStore.write_backup` accepts (what apply writes: ``0000.orig`` ...).
BACKUP_NAME = re.compile(r"^[0-9]{4}\.orig$")


@dataclass(frozen=True)
class DirectStore:
    """The store at ``backup_dir`` used from this process (which must own it)."""

    backup_dir: str

    def check(self) -> None:
        """See :meth:`BackupStore.check`."""
        check_store(self.backup_dir)

    def make_entry(self, run_id: str, root: str, inst: str) -> str:
        """See :meth:`BackupStore.make_entry`."""
        return make_entry_dir(self.backup_dir, run_id, root, inst)

    def write_backup(self, entry: str, name: str, data: bytes) -> None:
        """See :meth:`BackupStore.write_backup`."""
        # NOTE: the journal saved next into the same entry fsyncs the folder; apply never
        # replaces a file before that, so the backup's name is durable when it matters.
        write_private(entry, name, data, sync_folder=False)

    def begin(
        self,
        run_id: str,
        root: str,
        inst: str,
        backups: Sequence[tuple[str, bytes]],
        journal: Journal,
    ) -> str:
        """See :meth:`BackupStore.begin`."""
        entry = self.make_entry(run_id, root, inst)
        for name, data in backups:
            self.write_backup(entry, name, data)
        fault_point("after_backup")
        self.save_journal(entry, journal)
        return entry

    def finish(self, entry: str, journal: Journal) -> None:
        """See :meth:`BackupStore.finish` (saved at once)."""
        self.save_journal(entry, journal)

    def read_backup(self, entry: str, name: str) -> bytes:
        """See :meth:`BackupStore.read_backup`."""
        return read_private(entry, name)

    def save_journal(self, entry: str, journal: Journal) -> None:
        """See :meth:`BackupStore.save_journal`."""
        save_journal(entry, journal)

    def load_journal(self, entry: str) -> Journal:
        """See :meth:`BackupStore.load_journal`."""
        return load_journal(entry)

    def entry_of(self, path: str) -> str:
        """See :meth:`BackupStore.entry_of`."""
        return entry_of(path)


def entry_of(path: str) -> str:
    """The entry folder of ``path``: ``path`` itself when it is a folder, else its parent."""
    return path if os.path.isdir(path) else os.path.dirname(path)
