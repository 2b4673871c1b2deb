"""Writes validated members below one fresh folder, through directory descriptors only.

Every folder is created with ``os.mkdir(name, dir_fd=parent)`` and opened with
``O_DIRECTORY | O_NOFOLLOW``; every file with ``O_CREAT | O_EXCL | O_NOFOLLOW`` relative to
its folder's descriptor. No path string is ever resolved by the kernel from the top, so a
link planted anywhere (by us: never; by a racing process: refused by ``O_NOFOLLOW``) cannot
redirect a write. The sink also remembers what it created, which refuses duplicates and
file/folder clashes before touching the disk.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import BinaryIO, Literal

from patchd.errors import ArchiveError
from patchd.release.names import Parts

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_CHUNK = 1024 * 1024
_MAX_OPEN_DIRS = 64

Kind = Literal["dir", "file", "implicit-dir", "link"]


class SkippedMember(Exception):
    """A wanted member needs the content of one that was not written (a hardlink): the
    caller extracts the archive whole instead."""


def _drain(src: BinaryIO, on_chunk: Callable[[int], None]) -> int:
    total = 0
    while True:
        chunk = src.read(_CHUNK)
        if not chunk:
            return total
        on_chunk(len(chunk))
        total += len(chunk)


class ExtractionSink:
    """Creates folders and files under ``root_fd``; call :meth:`close` when done."""

    def __init__(
        self, root: str, *, archive: str, wanted: Callable[[Parts], bool] | None = None
    ) -> None:
        self.archive = archive
        self._root_fd = os.open(root, _DIR_FLAGS)
        self._dir_fds: dict[Parts, int] = {}
        self._kinds: dict[Parts, Kind] = {}
        #: Symlink members: recorded (path -> target text), never created.
        self.links: dict[str, str] = {}
        #: Only file members ``wanted`` says yes to are written (None: all). The others are
        #: read through (every limit still counts them) and checked like written ones.
        self.wanted = wanted
        self.skipped: set[Parts] = set()

    @property
    def top_level(self) -> set[str]:
        """The first path component of every member seen (written or not)."""
        return {parts[0] for parts in self._kinds if len(parts) == 1}

    def close(self) -> None:
        """Close every descriptor held."""
        self._drop_dir_fds()
        os.close(self._root_fd)

    def _drop_dir_fds(self) -> None:
        for fd in self._dir_fds.values():
            os.close(fd)
        self._dir_fds.clear()

    def _refuse(self, parts: Parts, why: str) -> ArchiveError:
        return ArchiveError(why, archive=self.archive, member="/".join(parts))

    def _dir_fd(self, parts: Parts, member: Parts) -> int:
        """The descriptor of folder ``parts``, creating missing folders on the way."""
        if not parts:
            return self._root_fd
        fd = self._dir_fds.get(parts)
        if fd is not None:
            return fd
        parent_fd = self._dir_fd(parts[:-1], member)
        kind = self._kinds.get(parts)
        if kind == "file":
            raise self._refuse(member, f"member lies beneath file {'/'.join(parts)!r}")
        if kind == "link":
            raise self._refuse(member, f"member lies beneath symlink member {'/'.join(parts)!r}")
        if kind is None:
            os.mkdir(parts[-1], 0o755, dir_fd=parent_fd)
            self._kinds[parts] = "implicit-dir"
        fd = os.open(parts[-1], _DIR_FLAGS, dir_fd=parent_fd)
        if len(self._dir_fds) >= _MAX_OPEN_DIRS:
            # NOTE: bounded so a 200k-member archive cannot exhaust descriptors; members of
            # one folder are usually adjacent, so dropping the cache rarely costs much.
            self._drop_dir_fds()
        self._dir_fds[parts] = fd
        return fd

    def add_dir(self, parts: Parts) -> None:
        """Create folder ``parts`` (an explicit folder member)."""
        if not parts:
            return  # "./": the root itself
        kind = self._kinds.get(parts)
        if kind in ("dir", "file", "link"):
            raise self._refuse(parts, "duplicate member")
        if kind == "implicit-dir":
            self._kinds[parts] = "dir"
            return
        parent_fd = self._dir_fd(parts[:-1], parts)
        os.mkdir(parts[-1], 0o755, dir_fd=parent_fd)
        self._kinds[parts] = "dir"

    def add_file(
        self,
        parts: Parts,
        src: BinaryIO,
        *,
        executable: bool,
        on_chunk: Callable[[int], None],
    ) -> int:
        """Create file ``parts`` from ``src``; ``on_chunk(n)`` is called for every chunk.

        ``on_chunk`` raises to stop a member that grows past a limit. Returns bytes written.
        """
        if not parts:
            raise self._refuse(parts, "file member without a name")
        kind = self._kinds.get(parts)
        if kind in ("file", "link"):
            raise self._refuse(parts, "duplicate member")
        if kind is not None:
            raise self._refuse(parts, "file member clashes with a folder of the same name")
        parent_fd = self._dir_fd(parts[:-1], parts)
        self._kinds[parts] = "file"
        if self.wanted is not None and not self.wanted(parts):
            self.skipped.add(parts)
            return _drain(src, on_chunk)
        fd = os.open(parts[-1], _FILE_FLAGS, 0o600, dir_fd=parent_fd)
        written = 0
        try:
            while True:
                chunk = src.read(_CHUNK)
                if not chunk:
                    break
                on_chunk(len(chunk))
                view = memoryview(chunk)
                while view:
                    n = os.write(fd, view)
                    view = view[n:]
                written += len(chunk)
            # NOTE: modes are normalised, never copied: setuid/setgid/sticky and group/world
            # write bits from the archive are dropped; only "executable or not" survives.
            os.fchmod(fd, 0o755 if executable else 0o644)
        finally:
            os.close(fd)
        return written

    def add_link(self, parts: Parts, target: str) -> None:
        """Record symlink member ``parts`` -> ``target``; nothing is created on disk.

        NOTE: the path is reserved, so a later member at it or beneath it is refused (an
        archive cannot use a link name to place a file), and no link ever exists to write
        or read through.
        """
        if not parts:
            raise self._refuse(parts, "symlink member without a name")
        if self._kinds.get(parts) is not None:
            raise self._refuse(parts, "duplicate member")
        self._dir_fd(parts[:-1], parts)  # the parent must be a folder (not a file, not a link)
        self._kinds[parts] = "link"
        self.links["/".join(parts)] = target

    def open_extracted(self, parts: Parts, member: Parts) -> BinaryIO:
        """A regular file extracted earlier (the target of a hardlink member), for reading."""
        if self._kinds.get(parts) != "file":
            raise self._refuse(
                member, f"hardlink to {'/'.join(parts)!r}, which is no earlier file member"
            )
        if parts in self.skipped:
            raise SkippedMember(self._refuse(member, "hardlink to a member that was not written"))
        parent_fd = self._dir_fd(parts[:-1], member)
        fd = os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent_fd)
        return os.fdopen(fd, "rb")
