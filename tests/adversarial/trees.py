"""Helpers of the adversarial suite: hostile account trees, their state, and rollouts.

:func:`tree_state` records every entry below a folder without ever opening anything but
regular files (a FIFO must not hang the test either) and through directory descriptors
(a tree deeper than ``PATH_MAX`` is walked too); names are bytes. :class:`Site` is one
test world: accounts under ``srv/``, files "outside every account" under ``system/``,
an inventory for the local or an SSH transport, a bundle, a ledger and a backup store.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.e2e import kit

COMMENT_TEMPLATE = "wp-includes/comment-template.php"
LIST_TABLE = "wp-admin/includes/class-wp-comments-list-table.php"
#: Owner of the test accounts' files (each account gets its own uid from here on).
FIRST_UID = 42000
#: Timeout of one rollout subprocess: a hang fails the test instead of the CI job.
ROLLOUT_TIMEOUT = 120.0

#: One entry of a tree: kind and facts (content hash, mode, owner, link target, rdev).
Entry = str


def _entry(st: os.stat_result, read: Callable[[], bytes] | None, link: bytes | None) -> Entry:
    mode = st.st_mode
    meta = f"{stat.S_IMODE(mode):o} {st.st_uid}:{st.st_gid} n{st.st_nlink}"
    if stat.S_ISLNK(mode):
        return f"link {link!r} {meta}"
    if stat.S_ISDIR(mode):
        return f"dir {meta}"
    if stat.S_ISREG(mode):
        assert read is not None
        return f"file {hashlib.sha256(read()).hexdigest()} {st.st_size} {meta}"
    return f"special {stat.S_IFMT(mode):o} rdev={st.st_rdev} {meta}"


def tree_state(top: Path | bytes) -> dict[bytes, Entry]:
    """relative name (bytes) -> :data:`Entry` for ``top`` and everything below it."""
    out: dict[bytes, Entry] = {}
    top_b = os.fsencode(top)
    out[b"."] = _entry(os.lstat(top_b), None, None) if os.path.isdir(top_b) else "missing"
    if not os.path.isdir(top_b):
        return out
    for dirpath, dirnames, filenames, dir_fd in os.fwalk(top_b, follow_symlinks=False):
        rel_dir = os.path.relpath(dirpath, top_b)
        for name in dirnames + filenames:
            st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
            link = os.readlink(name, dir_fd=dir_fd) if stat.S_ISLNK(st.st_mode) else None

            def read(name: bytes = name, fd: int = dir_fd) -> bytes:
                f = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=fd)
                with os.fdopen(f, "rb") as fh:
                    return fh.read()

            key = name if rel_dir == b"." else os.path.join(rel_dir, name)
            out[key] = _entry(st, read if stat.S_ISREG(st.st_mode) else None, link)
    return out


def changed(before: dict[bytes, Entry], after: dict[bytes, Entry]) -> set[bytes]:
    """Names whose entry differs (appeared, vanished or changed)."""
    return {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}


def chown_tree(top: Path, uid: int, gid: int) -> None:
    """``chown -hR uid:gid top`` through descriptors (works below ``PATH_MAX`` too)."""
    os.chown(top, uid, gid, follow_symlinks=False)
    for _dirpath, dirnames, filenames, dir_fd in os.fwalk(os.fsencode(top)):
        for name in dirnames + filenames:
            os.chown(name, uid, gid, dir_fd=dir_fd, follow_symlinks=False)


def make_deep(top: Path, depth: int, name: str = "d" * 15) -> int:
    """A chain of ``depth`` nested folders below ``top`` with a file at the bottom;
    returns the length of the deepest path (more than ``PATH_MAX`` for a deep chain)."""
    top.mkdir(parents=True, exist_ok=True)
    fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(depth):
            os.mkdir(name, dir_fd=fd)
            nfd = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = nfd
        f = os.open("bottom.php", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
        os.write(f, b"<?php // at the bottom\n")
        os.close(f)
    finally:
        os.close(fd)
    return len(str(top)) + depth * (len(name) + 1) + len("/bottom.php")


@dataclass
class Site:
    """One world of accounts for a rollout over ``transport`` (``local`` or an SSH host)."""

    base: Path
    transport: str
    ssh_host: Any = None
    accounts: list[dict[str, Any]] = field(default_factory=list)
    uids: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # NOTE: accounts live outside pytest's 0700 temp folder: when the agent drops to an
        # account's uid (privilege drop), that uid must be able to reach its root, as on
        # a real host (/srv/accounts is 0755).
        self.world = Path(tempfile.mkdtemp(prefix="patchd-adv-"))
        self.world.chmod(0o755)
        (self.world / "srv").mkdir()
        (self.world / "system").mkdir()
        self.base.mkdir(parents=True, exist_ok=True)
        self.backups = self.base / "backups"
        self.backups.mkdir(mode=0o700, exist_ok=True)
        self.ledger = self.base / "ledger.db"
        self.inventory = self.base / "accounts.yaml"
        self.bundle = self.base / "bundle"
        if not self.bundle.exists():
            kit.build_bundle(self.bundle)

    @property
    def srv(self) -> Path:
        return self.world / "srv"

    @property
    def system(self) -> Path:
        """Files outside every account (stand-ins for ``/etc`` and other customers)."""
        return self.world / "system"

    def remove(self) -> None:
        """Delete the accounts and outside files (call at teardown)."""
        shutil.rmtree(self.world, ignore_errors=True)

    def root(self, acct: str) -> Path:
        return self.srv / acct

    def inst(self, acct: str) -> Path:
        return self.root(acct) / "html"

    def add(
        self,
        acct: str,
        version: str = "6.4.2",
        *,
        docroots: list[str] | None = None,
        inst: str = "html",
        **extra: Any,
    ) -> Path:
        """An account with WordPress ``version`` in ``inst``; returns the installation."""
        path = kit.install_wordpress(self.root(acct), version, inst)
        self.uids[acct] = FIRST_UID + len(self.uids)
        entry = kit.account(acct, "h1", self.root(acct), uid=self.uids[acct], **extra)
        if docroots is not None:
            entry["docroots"] = docroots
        self.accounts.append(entry)
        return path

    def finish(self) -> None:
        """Give every account tree to its uid and write the inventory."""
        for acct, uid in self.uids.items():
            chown_tree(self.root(acct), uid, uid)
        host: dict[str, Any] = {"transport": "local"}
        if self.transport == "ssh":
            host = kit.ssh_host_entry(self.ssh_host)
        kit.write_inventory(self.inventory, {"h1": host}, self.accounts)

    def state(self) -> dict[bytes, Entry]:
        """The whole world's accounts and outside files (not the backups or ledger)."""
        out = {b"srv/" + k: v for k, v in tree_state(self.srv).items()}
        out.update({b"system/" + k: v for k, v in tree_state(self.system).items()})
        return out

    def rollout_args(self, *extra: str) -> list[str]:
        return [
            "rollout", str(self.bundle), "--accounts", str(self.inventory),
            "--backup-dir", str(self.backups), "--yes", "--json", *extra,
        ]  # fmt: skip

    def rollout(self, *extra: str, timeout: float = ROLLOUT_TIMEOUT) -> kit.CliResult:
        """``patchd rollout`` as a subprocess (a hang becomes a failed test)."""
        return kit.patchd_process(self.ledger, *self.rollout_args(*extra), timeout=timeout)


def security_keys(acct: str, inst: str = "html") -> set[bytes]:
    """The state keys of an installation's two security files."""
    return {os.fsencode(f"srv/{acct}/{inst}/{rel}") for rel in kit.WP_FILES}


def by_account(results: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """A run's JSON results keyed by account (one installation per account here)."""
    out: dict[str, dict[str, Any]] = {}
    for r in results:
        assert r["account"] not in out, f"two results for {r['account']}"
        out[r["account"]] = r
    return out
