"""Account trees owned by real, distinct uids (no passwd entries needed) for the tests."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from patchd.engine.model import FilePatch
from tests.patcher.trees import INST, ORIGINAL, make_diff, patched

#: The two customer uids (and their primary gids): no passwd entries exist for them.
UID_A = 23001
UID_B = 23002
MAX = 1 << 20


@dataclass(frozen=True)
class Accounts:
    """Two accounts with one installation each, a root-owned file and a backup store."""

    base: Path
    a: Path  # owned by UID_A
    b: Path  # owned by UID_B
    system: Path  # root-owned 0644, outside every account
    store: Path  # root-owned 0700

    def inst(self, which: str = "a") -> Path:
        """The installation folder of account ``which``."""
        return getattr(self, which) / INST


def chown_tree(top: Path, uid: int, gid: int | None = None) -> None:
    """Give ``top`` and everything below it to ``uid``/``gid`` (links not followed)."""
    gid = uid if gid is None else gid
    for dirpath, dirnames, filenames in os.walk(top):
        for name in [*dirnames, *filenames]:
            os.chown(os.path.join(dirpath, name), uid, gid, follow_symlinks=False)
    os.chown(top, uid, gid)


def make_accounts(base: Path) -> Accounts:
    """Build both accounts below ``base`` (which only root can search, like /tmp/pytest-*)."""
    roots = {}
    for name, uid in (("a", UID_A), ("b", UID_B)):
        acct = base / "accounts" / name
        for rel, (data, mode) in ORIGINAL.items():
            path = acct / INST / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            path.chmod(mode)
        chown_tree(acct, uid)
        acct.chmod(0o711)  # NOTE: like a home folder: searchable, not listable by others
        roots[name] = acct
    (base / "accounts").chmod(0o711)
    system = base / "etc" / "system.conf"
    system.parent.mkdir()
    system.write_bytes(b"root-owned configuration\n")
    system.chmod(0o644)
    store = base / "store"
    store.mkdir(mode=0o700)
    return Accounts(base, roots["a"], roots["b"], system, store)


@contextlib.contextmanager
def searchable_base() -> Iterator[Path]:
    """A fresh folder below /tmp that every uid may search (0711), like /home on a host;
    removed afterwards. NOTE: pytest's tmp_path lies below a root-only 0700 folder, where
    every access of a worker fails for that reason alone."""
    base = Path(tempfile.mkdtemp(prefix="patchd-privdrop-"))
    base.chmod(0o711)
    try:
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


def the_patch(base: Path) -> list[FilePatch]:
    """The two-file patch of :func:`tests.patcher.trees.patched` as FilePatches."""
    return make_diff(base, patched())


def rollout_args(
    acc: Accounts,
    files: list[FilePatch],
    installs: list[dict[str, Any]],
    *,
    dry_run: bool = False,
    run_id: str = "run-1",
) -> dict[str, Any]:
    """The args of the agent op ``rollout`` for ``installs`` (each: account, root, uid...)."""
    return {
        "run_id": run_id,
        "dry_run": dry_run,
        "backup_dir": str(acc.store),
        "min_php": None,
        "max_file_size": MAX,
        "variants": {"v": [fp.to_json() for fp in files]},
        "installations": [
            {"path": INST, "variant": "v", "php": "8.2", "apply": True, **inst} for inst in installs
        ],
    }


def run_op(func: Any, args: dict[str, Any]) -> tuple[list[dict[str, Any]], Any]:
    """Drive an agent op generator in this process: its items and its done value."""
    gen: Iterator[dict[str, Any]] = func(args)
    items = []
    while True:
        try:
            items.append(next(gen))
        except StopIteration as stop:
            return items, stop.value


def lint_spy() -> Path:
    """A fake ``php`` that records the uid it runs as, then lints with the real one.

    Lives in a fresh folder below /tmp (searchable by everyone, outside every account);
    the uids land in ``<folder>/rec/uids.<pid>``. The caller removes the folder.
    """
    folder = Path(tempfile.mkdtemp(prefix="patchd-lint-spy-"))
    folder.chmod(0o755)
    record = folder / "rec"
    record.mkdir()
    record.chmod(0o1777)
    script = folder / "php"
    script.write_text(
        "#!/bin/sh\n"
        f'id -u >> "{record}/uids.$$"\n'
        # the worker's ids: every thread of it (its root main thread, the account's thread)
        f'for t in /proc/$PPID/task/*; do grep "^Uid:" "$t/status"; done >> "{record}/worker.$$"\n'
        'exec /usr/bin/php "$@"\n'
    )
    script.chmod(0o755)
    return folder


def spied_uids(folder: Path) -> set[int]:
    """The uids the fake ``php`` of :func:`lint_spy` ran as."""
    files = (folder / "rec").glob("uids.*")
    return {int(line) for f in files for line in f.read_text().split()}


def worker_status_uids(folder: Path) -> set[tuple[str, ...]]:
    """The ``Uid:`` lines (real, effective, saved, fs) of the threads of the workers that
    ran the spy, root's (a worker's main thread) left out."""
    files = (folder / "rec").glob("worker.*")
    lines = {tuple(line.split()[1:]) for f in files for line in f.read_text().splitlines()}
    return lines - {("0",) * 4}
