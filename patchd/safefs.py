"""Descriptor-relative, symlink-refusing read access below one trusted root folder.

:class:`SafeRoot` is the only way patchd touches an account's files. The root path comes
from the operator and is trusted; everything below it belongs to a customer and is not.
Every access walks from the root's descriptor one component at a time with ``O_NOFOLLOW``
(``O_NOFOLLOW`` on the final open alone would still follow a symlinked parent folder), and
files are checked with ``fstat`` on the opened descriptor, never by path afterwards.

Relative paths are ``str``, ``/``-separated; non-UTF-8 names use ``surrogateescape`` (what
``os.fsdecode`` produces). ``""`` and ``"."`` name the root itself.

NOTE: stdlib-only; the host-side agent imports it.
"""

from __future__ import annotations

import errno
import os
import posixpath
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Literal, NamedTuple

from patchd.errors import UnsafePathError

EntryKind = Literal["file", "dir", "symlink", "other"]

#: Most symlinks followed by :meth:`SafeRoot.resolve_symlink_inside` (Linux's own limit).
MAX_SYMLINK_HOPS = 40

#: Most folder descriptors :meth:`SafeRoot.caching_folders` keeps open.
DIR_CACHE_MAX = 64
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


class DirEntry(NamedTuple):
    """One name in a folder listing; ``kind`` is taken without following symlinks."""

    name: str
    kind: EntryKind


class FileStat(NamedTuple):
    """The ``lstat`` facts patchd checks before touching a file."""

    size: int
    mode: int
    uid: int
    gid: int
    nlink: int
    dev: int
    ino: int


def split_relpath(rel: str) -> list[str]:
    """Split ``rel`` into components, refusing absolute paths, ``..`` and NUL bytes.

    Empty and ``.`` components are dropped, so ``""`` and ``"."`` give ``[]`` (the root).
    """
    if not isinstance(rel, str):
        raise UnsafePathError(f"path must be str, not {type(rel).__name__}", where=repr(rel))
    if "\x00" in rel:
        raise UnsafePathError("NUL byte in path", where=repr(rel))
    if rel.startswith("/"):
        raise UnsafePathError("absolute path", where=repr(rel))
    parts = [p for p in rel.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UnsafePathError("'..' in path", where=repr(rel))
    return parts


def join_rel(*parts: str) -> str:
    """Join relative path pieces, ignoring empty ones (``join_rel("", "a") == "a"``)."""
    return "/".join(p.strip("/") for p in parts if p.strip("/"))


def file_kind(mode: int) -> str:
    """A short human word for a file type, used in refusal reasons."""
    for test, word in (
        (stat.S_ISREG, "file"),
        (stat.S_ISLNK, "symlink"),
        (stat.S_ISDIR, "folder"),
        (stat.S_ISFIFO, "FIFO"),
        (stat.S_ISSOCK, "socket"),
        (stat.S_ISCHR, "character device"),
        (stat.S_ISBLK, "block device"),
    ):
        if test(mode):
            return word
    return "unknown type"


class SafeRoot:
    """Read access to the tree below ``root`` that never follows a symlink.

    Use as a context manager (or call :meth:`close`): the root's descriptor stays open for
    the object's lifetime, descriptors of intermediate folders are closed at once.
    Errors about the tree's shape (symlink, wrong type, too large, bad path) are
    :class:`UnsafePathError`; plain I/O errors (missing file, permission) stay ``OSError``.
    """

    def __init__(self, root: str | os.PathLike[str], *, fd: int | None = None) -> None:
        path = os.fspath(root)
        if not os.path.isabs(path):
            raise UnsafePathError("root must be an absolute path", where=repr(path))
        # NOTE: the operator's root path is trusted, so symlinks in it may be followed.
        self.path = posixpath.normpath(path)
        self._fd: int | None = (
            os.open(self.path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            if fd is None
            else os.dup(fd)
        )
        self._prefix_cache: tuple[str, ...] | None = None
        #: Folder descriptors by path, while :meth:`caching_folders` is active.
        self._dir_cache: dict[tuple[str, ...], int] | None = None

    @property
    def _prefixes(self) -> tuple[str, ...]:
        """Absolute symlink targets are judged against both spellings of the root.

        NOTE: computed on first use (``realpath`` stats every component of the root's path;
        the patcher opens one SafeRoot per installation and never needs it).
        """
        if self._prefix_cache is None:
            self._prefix_cache = tuple(
                {self.path.rstrip("/") + "/", os.path.realpath(self.path).rstrip("/") + "/"}
            )
        return self._prefix_cache

    @classmethod
    def from_fd(cls, root: str | os.PathLike[str], fd: int) -> SafeRoot:
        """A root on a descriptor opened earlier (e.g. by root before a privilege drop,
        when the account itself cannot traverse the path to its own root); ``fd`` is
        duplicated, the caller keeps its own."""
        return cls(root, fd=fd)

    # -- lifetime ---------------------------------------------------------------------

    @property
    def fd(self) -> int:
        """The root folder's descriptor (owned by this object; do not close it)."""
        if self._fd is None:
            raise ValueError("SafeRoot is closed")
        return self._fd

    def close(self) -> None:
        """Close the root descriptor; further use raises ``ValueError``."""
        self._drop_dir_cache()
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> SafeRoot:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SafeRoot({self.path!r})"

    @contextmanager
    def caching_folders(self) -> Iterator[None]:
        """Within the block, keep the descriptors of folders opened on the way to a path
        (at most :data:`DIR_CACHE_MAX`), so that reading many files of one installation
        does not open every folder from the root again for each file.

        NOTE: each cached descriptor was opened one component at a time without
        following a symlink, exactly like an uncached walk; what is read through it is
        that folder even if a name on its path is swapped for a link later (a swap
        during an uncached walk is the same race, one file earlier). For the read-only
        scan of one account; writers do not use it.
        """
        self._drop_dir_cache()
        self._dir_cache = {}
        try:
            yield
        finally:
            self._drop_dir_cache()

    def _drop_dir_cache(self) -> None:
        cache, self._dir_cache = self._dir_cache, None
        for fd in (cache or {}).values():
            os.close(fd)

    # -- walking ----------------------------------------------------------------------

    def _open_dir_parts(self, parts: list[str], rel: str) -> int:
        """Open the folder ``parts`` below the root; returns a new descriptor."""
        if self._dir_cache is not None:
            return self._open_dir_parts_cached(parts, rel, self._dir_cache)
        fd = os.dup(self.fd)
        try:
            for i, name in enumerate(parts):
                try:
                    new = os.open(name, _DIR_FLAGS, dir_fd=fd)
                except OSError as exc:
                    if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                        self._refuse_component(fd, name, "/".join(parts[: i + 1]), rel, exc)
                    raise
                os.close(fd)
                fd = new
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _open_dir_parts_cached(
        self, parts: list[str], rel: str, cache: dict[tuple[str, ...], int]
    ) -> int:
        """:meth:`_open_dir_parts` starting from the longest cached folder on the way."""
        fd, owned = self._cached_dir(parts, rel, cache)
        return fd if owned else os.dup(fd)

    def _cached_dir(
        self, parts: list[str], rel: str, cache: dict[tuple[str, ...], int]
    ) -> tuple[int, bool]:
        """``(descriptor of folder parts, whether the caller must close it)``: borrowed
        from the cache (or the root's) when possible, else opened from the longest cached
        folder on the way, caching the folders opened while there is room."""
        key = tuple(parts)
        start = len(key)
        while start and key[:start] not in cache:
            start -= 1
        base = cache[key[:start]] if start else self.fd
        if start == len(key):
            return base, False
        fd = os.dup(base)
        try:
            for i in range(start, len(key)):
                try:
                    new = os.open(key[i], _DIR_FLAGS, dir_fd=fd)
                except OSError as exc:
                    if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                        self._refuse_component(fd, key[i], "/".join(key[: i + 1]), rel, exc)
                    raise
                os.close(fd)
                fd = new
                if len(cache) < DIR_CACHE_MAX:
                    cache[key[: i + 1]] = os.dup(fd)
        except BaseException:
            os.close(fd)
            raise
        return fd, True

    @staticmethod
    def _refuse_component(fd: int, name: str, so_far: str, rel: str, exc: OSError) -> None:
        """Turn ELOOP/ENOTDIR from a component open into a precise refusal."""
        try:
            st = os.stat(name, dir_fd=fd, follow_symlinks=False)
        except OSError:
            raise exc from None
        if stat.S_ISDIR(st.st_mode):
            raise exc  # a race: it is a folder now; report the original error
        what = file_kind(st.st_mode)
        raise UnsafePathError(f"{so_far!r} is a {what}, not a folder", where=repr(rel)) from None

    @contextmanager
    def _parent(self, rel: str) -> Iterator[tuple[int, str]]:
        """Yield ``(descriptor of rel's folder, rel's last name)``; refuses the root."""
        parts = split_relpath(rel)
        if not parts:
            raise UnsafePathError("the root itself has no parent", where=repr(rel))
        if self._dir_cache is not None:
            fd, owned = self._cached_dir(parts[:-1], rel, self._dir_cache)
        else:
            fd, owned = self._open_dir_parts(parts[:-1], rel), True
        try:
            yield fd, parts[-1]
        finally:
            if owned:
                os.close(fd)

    def open_dir(self, rel: str) -> int:
        """Open folder ``rel`` without following symlinks; the caller closes the descriptor."""
        return self._open_dir_parts(split_relpath(rel), rel)

    # -- reading ----------------------------------------------------------------------

    @contextmanager
    def _open_regular(self, rel: str) -> Iterator[tuple[int, os.stat_result]]:
        """Open ``rel`` as a regular file (never a symlink, FIFO or device) for reading."""
        with self._parent(rel) as (dfd, name):
            # NOTE: lstat first so a device or FIFO is never even opened (opening a tape
            # device can rewind it); then fstat the descriptor and compare identities so a
            # swap between the two calls is caught.
            before = os.stat(name, dir_fd=dfd, follow_symlinks=False)
            if not stat.S_ISREG(before.st_mode):
                raise UnsafePathError(self._not_regular(before.st_mode), where=repr(rel))
            try:
                fd = os.open(name, _FILE_FLAGS, dir_fd=dfd)
            except OSError as exc:
                if exc.errno == errno.ELOOP:
                    raise UnsafePathError("symlink", where=repr(rel)) from None
                raise
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise UnsafePathError(self._not_regular(st.st_mode), where=repr(rel))
            if (st.st_dev, st.st_ino) != (before.st_dev, before.st_ino):
                raise UnsafePathError("file changed while being opened", where=repr(rel))
            yield fd, st
        finally:
            os.close(fd)

    @staticmethod
    def _not_regular(mode: int) -> str:
        if stat.S_ISLNK(mode):
            return "symlink"
        return f"not a regular file ({file_kind(mode)})"

    def read_bytes(self, rel: str, *, max_size: int) -> bytes:
        """The whole content of regular file ``rel``; refuses files over ``max_size`` bytes."""
        with self._open_regular(rel) as (fd, st):
            if st.st_size > max_size:
                raise UnsafePathError(
                    f"too large ({st.st_size} bytes, limit {max_size})", where=repr(rel)
                )
            data = _read_fd(fd, max_size + 1)
        if len(data) > max_size:  # the file grew after fstat
            raise UnsafePathError(f"too large (over {max_size} bytes)", where=repr(rel))
        return data

    def read_head(self, rel: str, limit: int) -> bytes:
        """The first ``limit`` bytes of regular file ``rel`` (for header comments)."""
        with self._open_regular(rel) as (fd, _st):
            return _read_fd(fd, limit)

    def lstat(self, rel: str) -> os.stat_result:
        """``lstat`` of ``rel`` (a symlink is described, not followed)."""
        parts = split_relpath(rel)
        if not parts:
            return os.fstat(self.fd)
        with self._parent(rel) as (dfd, name):
            return os.stat(name, dir_fd=dfd, follow_symlinks=False)

    def stat_file(self, rel: str) -> FileStat:
        """``(size, mode, uid, gid, nlink, dev, ino)`` of ``rel`` without following links."""
        st = self.lstat(rel)
        return FileStat(
            st.st_size, st.st_mode, st.st_uid, st.st_gid, st.st_nlink, st.st_dev, st.st_ino
        )

    def listdir(self, rel: str) -> list[DirEntry]:
        """The entries of folder ``rel``, sorted by name; kinds are not symlink-followed."""
        fd = self.open_dir(rel)
        try:
            return listdir_fd(fd)
        finally:
            os.close(fd)

    def open_child_dir(self, dir_fd: int, name: str) -> int:
        """Open folder ``name`` directly inside the folder open as ``dir_fd`` (no links).

        For walks that already hold the parent's descriptor (one ``open`` per folder
        instead of one per path component). The caller closes the result.
        """
        if not name or name in (".", "..") or "/" in name or "\x00" in name:
            raise UnsafePathError("not a single path component", where=repr(name))
        try:
            return os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                self._refuse_component(dir_fd, name, name, name, exc)
            raise

    def readlink(self, rel: str) -> str:
        """The target of symlink ``rel`` (``OSError`` EINVAL if it is no symlink)."""
        with self._parent(rel) as (dfd, name):
            return os.readlink(name, dir_fd=dfd)

    def exists(self, rel: str) -> bool:
        """True if ``rel`` exists and is reachable without following a symlink.

        ``rel`` itself may be a symlink (it exists as a link). Malformed paths still raise.
        """
        return self._lstat_or_none(rel) is not None

    def is_dir(self, rel: str) -> bool:
        """True if ``rel`` is a real folder (not a symlink to one)."""
        st = self._lstat_or_none(rel)
        return st is not None and stat.S_ISDIR(st.st_mode)

    def is_file(self, rel: str) -> bool:
        """True if ``rel`` is a regular file (not a symlink to one)."""
        st = self._lstat_or_none(rel)
        return st is not None and stat.S_ISREG(st.st_mode)

    def is_symlink(self, rel: str) -> bool:
        """True if ``rel`` is a symlink (reached without following any other one)."""
        st = self._lstat_or_none(rel)
        return st is not None and stat.S_ISLNK(st.st_mode)

    def _lstat_or_none(self, rel: str) -> os.stat_result | None:
        """``lstat`` of ``rel``, or None if it is missing or only reachable through a link."""
        split_relpath(rel)  # NOTE: malformed paths are a caller bug or an attack: raise
        try:
            return self.lstat(rel)
        except (OSError, UnsafePathError):
            return None

    def resolve_symlink_inside(self, rel: str) -> str | None:
        """Resolve every symlink on ``rel`` lexically; the result relative to the root.

        Returns ``None`` when the chain leaves the root (an absolute target elsewhere, or
        ``..`` above the root). Raises :class:`UnsafePathError` for a chain of more than
        :data:`MAX_SYMLINK_HOPS` links. Missing components are kept as written.
        NOTE: nothing is opened through a link; only ``lstat``/``readlink`` on folders
        already resolved, so the answer can be used with the other methods safely.
        """
        pending = list(reversed(split_relpath(rel)))
        done: list[str] = []
        hops = 0
        while pending:
            name = pending.pop()
            if name in ("", "."):
                continue
            if name == "..":
                if not done:
                    return None
                done.pop()
                continue
            here = "/".join([*done, name])
            try:
                st = self.lstat(here)
            except OSError:
                done.append(name)  # missing (or unreadable): keep it lexically
                continue
            if not stat.S_ISLNK(st.st_mode):
                done.append(name)
                continue
            hops += 1
            if hops > MAX_SYMLINK_HOPS:
                raise UnsafePathError(
                    f"more than {MAX_SYMLINK_HOPS} symlinks in a chain", where=repr(rel)
                )
            target = self.readlink(here)
            if "\x00" in target:
                return None
            if target.startswith("/"):
                inside = self._strip_root(target)
                if inside is None:
                    return None
                done = []
                target = inside
            pending.extend(reversed(target.split("/")))
        return "/".join(done)

    def _strip_root(self, target: str) -> str | None:
        """``target`` relative to the root when it starts with the root path, else None."""
        norm = "/" + target.lstrip("/")
        if norm.rstrip("/") + "/" in self._prefixes:
            return ""
        for prefix in self._prefixes:
            if norm.startswith(prefix):
                return norm[len(prefix) :]
        return None


def listdir_fd(fd: int) -> list[DirEntry]:
    """The entries of the folder open as ``fd`` (left open), sorted by name."""
    # NOTE: scandir on a descriptor works on a duplicate and uses d_type, so the kinds
    # come free with the listing (one syscall batch per folder).
    with os.scandir(fd) as it:
        entries = [DirEntry(entry.name, _entry_kind(entry)) for entry in it]
    entries.sort()
    return entries


def _entry_kind(entry: os.DirEntry[str]) -> EntryKind:
    """The kind of a scandir entry without following symlinks."""
    try:
        if entry.is_symlink():
            return "symlink"
        if entry.is_dir(follow_symlinks=False):
            return "dir"
        if entry.is_file(follow_symlinks=False):
            return "file"
    except OSError:
        pass
    return "other"


def _read_fd(fd: int, limit: int) -> bytes:
    """Read up to ``limit`` bytes from ``fd``."""
    chunks: list[bytes] = []
    remaining = limit
    while remaining > 0:
        chunk = os.read(fd, min(remaining, 1 << 20))
        if not chunk:
            break
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)
