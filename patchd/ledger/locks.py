"""The rollout lock: at most one rollout of a bundle at a time, per ledger.

NOTE (why a lock file, not a ``run_locks`` table): the lock is an ``flock`` on a file in
``locks/`` beside the database (root-owned, mode 0600, outside every customer tree). The
kernel releases an ``flock`` the moment its holder dies, even by ``kill -9``, so a stale
lock is taken over without any guessing. A table row would stay behind after a crash and
need a "is that pid still alive?" check, which is wrong after pid reuse, cannot be done
for a controller on another machine, and races between check and takeover. The file
also holds a JSON note of the holder (bundle, run, pid, host, since) so that a refused
rollout can name who holds the lock. Limits: ``flock`` is not reliable across machines on
NFS, so keep the ledger on a local file system; a child forked without exec keeps the
lock until it exits too.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import socket
import stat
from pathlib import Path
from typing import Any

from patchd.errors import LedgerError
from patchd.ledger.db import Ledger, utc_now

_SAFE = re.compile(r"[^A-Za-z0-9._-]+|\.{2,}")


def lock_path(ledger: Ledger, bundle_id: str) -> Path:
    """The lock file of ``bundle_id`` (a readable slug plus a hash, never a path escape)."""
    slug = _SAFE.sub("_", bundle_id)[:60].strip(".") or "bundle"
    digest = hashlib.sha256(bundle_id.encode("utf-8", "surrogateescape")).hexdigest()[:16]
    return ledger.path.parent / "locks" / f"{slug}-{digest}.lock"


class RolloutLock:
    """A held rollout lock; release it with :meth:`release` or by leaving the ``with``."""

    def __init__(self, fd: int, path: Path, bundle_id: str, run_id: int | None) -> None:
        self._fd: int | None = fd
        self.path = path
        self.bundle_id = bundle_id
        self.run_id = run_id
        self._since = utc_now()
        self._write_note()

    @property
    def held(self) -> bool:
        """Whether this object still holds the lock."""
        return self._fd is not None

    def _write_note(self) -> None:
        assert self._fd is not None
        note = {
            "bundle_id": self.bundle_id,
            "run_id": self.run_id,
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "since": self._since,
        }
        data = json.dumps(note, sort_keys=True).encode()
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, data, 0)

    def set_run(self, run_id: int) -> None:
        """Name the run holding the lock (once it has been created or resumed)."""
        self.run_id = run_id
        self._write_note()

    def release(self) -> None:
        """Give the lock up (idempotent)."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
        os.close(fd)  # NOTE: closing the only descriptor releases the flock

    def __enter__(self) -> RolloutLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _read_note(fd: int) -> dict[str, Any]:
    try:
        note = json.loads(os.pread(fd, 4096, 0) or b"{}")
    except (OSError, ValueError):
        return {}
    return note if isinstance(note, dict) else {}


def _holder(note: dict[str, Any]) -> str:
    run = note.get("run_id")
    parts = [f"run {run}" if run is not None else "a rollout that has not created its run yet"]
    if note.get("pid") is not None:
        parts.append(f"pid {note['pid']}")
    if note.get("host"):
        parts.append(f"on {note['host']}")
    if note.get("since"):
        parts.append(f"since {note['since']}")
    return " ".join(parts) if note else "another process (no holder note)"


def acquire_rollout_lock(
    ledger: Ledger, bundle_id: str, *, run_id: int | None = None
) -> RolloutLock:
    """Take the rollout lock of ``bundle_id`` without waiting.

    Raises :class:`LedgerError` naming the holding run and pid when another rollout of
    the same bundle holds it. A lock left by a dead process is free (the kernel dropped it).
    """
    path = lock_path(ledger, bundle_id)
    where = ledger.where
    try:
        path.parent.mkdir(mode=0o700, exist_ok=True)
        flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
        fd = os.open(path, flags, 0o600)
    except OSError as exc:
        raise LedgerError(f"cannot open lock file {path}: {exc.strerror}", where=where) from exc
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise LedgerError(f"lock file {path} is not a regular file", where=where)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(_read_note(fd))
            raise LedgerError(
                f"bundle {bundle_id} is already being rolled out by {holder}; "
                "wait for it to finish or stop it first",
                where=where,
            ) from None
        return RolloutLock(fd, path, bundle_id, run_id)
    except BaseException:
        os.close(fd)
        raise
