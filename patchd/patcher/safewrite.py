"""Checked opens and atomic replace, create and remove of one file below an account root.

The read side of :class:`patchd.safefs.SafeRoot` has no write operations, so the write side
lives here, built on the root's descriptor and raw ``os`` calls with ``dir_fd``. The rules
(THREATS.md "Techniques that hold up"):

* walk to the parent folder one component at a time with ``O_DIRECTORY | O_NOFOLLOW``,
  checking each folder's owner on the way;
* ``lstat`` the target, open it ``O_RDONLY | O_NOFOLLOW | O_NONBLOCK`` (a FIFO never hangs
  us), ``fstat``: regular file, ``st_nlink == 1``, expected owner, size under the limit,
  same ``(st_dev, st_ino)`` as the ``lstat``; read and hash through that descriptor;
* replace = temp file in the same folder (``O_CREAT | O_EXCL | O_NOFOLLOW``, 0600), write,
  ``fchown``/``fchmod`` to the original owner and mode, ``fsync``, re-check the original's
  hash through the held descriptor and its name's identity, ``rename`` with ``dir_fd``,
  ``fsync`` the folder. Nothing is ever chmod-ed, chown-ed or written by path.

NOTE: stdlib-only; runs inside the agent as root.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import secrets
import stat
from dataclasses import dataclass
from types import TracebackType

from patchd.errors import PatchdError, UnsafePathError
from patchd.patcher.names import show
from patchd.safefs import SafeRoot, file_kind, split_relpath

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC

#: The largest file patchd patches (CMS sources are far smaller; a bigger "file" in a
#: customer tree is refused as unsafe). One value for rollout, its agent and apply.
MAX_FILE_SIZE = 16 * 1024 * 1024

#: Mode of a file the patch creates (the folder's owner and group are used).
NEW_FILE_MODE = 0o644


class FileChangedError(PatchdError):
    """A file is not what was checked a moment ago (content, identity or existence)."""


def sha256(data: bytes) -> str:
    """Hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def _unsafe(rel: str, what: str) -> UnsafePathError:
    """An :class:`UnsafePathError` whose message reads ``<rel> <what>``."""
    return UnsafePathError(f"{show(rel)} {what}", where=rel)


@dataclass(frozen=True)
class FileFacts:
    """What was seen through the validated descriptor of a regular file."""

    mode: int  # permission bits only (S_IMODE)
    uid: int
    gid: int
    size: int
    dev: int
    ino: int
    sha256: str


def open_parent(root: SafeRoot, rel: str, *, expected_uid: int | None) -> tuple[int, str]:
    """Open the folder holding ``rel`` (walked without following links); returns its fd and
    ``rel``'s last name. The caller closes the descriptor.

    Every folder below the root must be a real folder owned by ``expected_uid`` (when given);
    otherwise :class:`UnsafePathError` names it. A missing folder raises
    ``FileNotFoundError`` with the folder's relative path as ``filename``.
    """
    parts = split_relpath(rel)
    if not parts:
        raise UnsafePathError("the root itself is no file", where=rel)
    fd = os.dup(root.fd)
    try:
        for i, name in enumerate(parts[:-1]):
            here = "/".join(parts[: i + 1])
            try:
                before = os.stat(name, dir_fd=fd, follow_symlinks=False)
            except FileNotFoundError:
                raise FileNotFoundError(errno.ENOENT, "folder missing", here) from None
            if not stat.S_ISDIR(before.st_mode):
                raise _unsafe(here, f"is a {file_kind(before.st_mode)}, not a folder")
            try:
                new = os.open(name, _DIR_FLAGS, dir_fd=fd)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR, errno.ENOENT):
                    raise _unsafe(here, "changed while being opened") from None
                raise
            os.close(fd)
            fd = new
            st = os.fstat(fd)
            if (st.st_dev, st.st_ino) != (before.st_dev, before.st_ino):
                raise _unsafe(here, "changed while being opened")
            if expected_uid is not None and st.st_uid != expected_uid:
                raise _unsafe(here, f"is owned by uid {st.st_uid}, expected {expected_uid}")
    except BaseException:
        os.close(fd)
        raise
    return fd, parts[-1]


class CheckedFile:
    """A validated regular file held open: its folder's descriptor, name, own descriptor,
    facts and content. Use as a context manager; :meth:`close` releases both descriptors.
    """

    def __init__(
        self,
        rel: str,
        dir_fd: int,
        name: str,
        fd: int,
        facts: FileFacts,
        data: bytes,
        max_size: int,
    ) -> None:
        self.rel = rel
        self.dir_fd = dir_fd
        self.name = name
        self.fd = fd
        self.facts = facts
        self.data = data
        self.max_size = max_size

    def close(self) -> None:
        """Close the file and folder descriptors (idempotent)."""
        for attr in ("fd", "dir_fd"):
            fd = getattr(self, attr)
            if fd >= 0:
                os.close(fd)
                setattr(self, attr, -1)

    def __enter__(self) -> CheckedFile:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def recheck(self, expected_sha: str) -> None:
        """Raise :class:`FileChangedError` unless the name still points at the held file, the
        file still has one link and its content (re-read through the descriptor) hashes to
        ``expected_sha``. Called immediately before the name is replaced or removed.
        """
        st = os.fstat(self.fd)
        if st.st_nlink != 1:
            raise FileChangedError(f"{show(self.rel)} gained a hard link", where=self.rel)
        try:
            now = os.stat(self.name, dir_fd=self.dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            raise FileChangedError(f"{show(self.rel)} disappeared", where=self.rel) from None
        if (now.st_dev, now.st_ino) != (self.facts.dev, self.facts.ino):
            raise FileChangedError(f"{show(self.rel)} was replaced", where=self.rel)
        if sha256(_pread_all(self.fd, self.max_size + 1, self.facts.size)) != expected_sha:
            raise FileChangedError(f"{show(self.rel)} changed (hash differs)", where=self.rel)


def open_checked(
    root: SafeRoot, rel: str, *, expected_uid: int | None, max_size: int
) -> CheckedFile | None:
    """Open and validate ``rel`` below ``root``; ``None`` if it does not exist.

    Raises :class:`UnsafePathError` (message ``"<rel> is a symlink"`` and so on) for a
    symlink, a non-regular file, a hardlinked file, a wrong owner or a file over
    ``max_size`` bytes, and for any unsafe folder on the way; ``FileNotFoundError`` when a
    folder on the way is missing.
    """
    dir_fd, name = open_parent(root, rel, expected_uid=expected_uid)
    try:
        opened = _open_regular(dir_fd, name, rel, expected_uid=expected_uid, max_size=max_size)
    except BaseException:
        os.close(dir_fd)
        raise
    if opened is None:
        os.close(dir_fd)
        return None
    fd, facts, data = opened
    return CheckedFile(rel, dir_fd, name, fd, facts, data, max_size)


def open_in_folder(dir_fd: int, name: str, rel: str, *, max_size: int) -> FileFacts | None:
    """The facts (with the content's hash) of ``name`` in the already checked folder
    ``dir_fd``, with every check of :func:`open_checked` but the owner; None if absent.
    """
    opened = _open_regular(dir_fd, name, rel, expected_uid=None, max_size=max_size)
    if opened is None:
        return None
    os.close(opened[0])
    return opened[1]


def _open_regular(
    dir_fd: int, name: str, rel: str, *, expected_uid: int | None, max_size: int
) -> tuple[int, FileFacts, bytes] | None:
    """Open, check and read ``name`` in folder ``dir_fd``; None if it does not exist."""
    try:
        before = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None
    # NOTE: lstat first, so a FIFO or device is never opened at all.
    if stat.S_ISLNK(before.st_mode):
        raise _unsafe(rel, "is a symlink")
    if not stat.S_ISREG(before.st_mode):
        raise _unsafe(rel, f"is not a regular file ({file_kind(before.st_mode)})")
    try:
        fd = os.open(name, _READ_FLAGS, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOENT, errno.ENXIO):
            raise _unsafe(rel, "changed while being opened") from None
        raise
    try:
        st = os.fstat(fd)
        same = (st.st_dev, st.st_ino) == (before.st_dev, before.st_ino)
        if not stat.S_ISREG(st.st_mode) or not same:
            raise _unsafe(rel, "changed while being opened")
        _check_facts(rel, st, expected_uid=expected_uid, max_size=max_size)
        data = _pread_all(fd, max_size + 1, st.st_size)
        if len(data) > max_size:
            raise _unsafe(rel, f"is too large (over {max_size} bytes)")
        mode = stat.S_IMODE(st.st_mode)
        facts = FileFacts(mode, st.st_uid, st.st_gid, len(data), st.st_dev, st.st_ino, sha256(data))
    except BaseException:
        os.close(fd)
        raise
    return fd, facts, data


def _check_facts(rel: str, st: os.stat_result, *, expected_uid: int | None, max_size: int) -> None:
    """The checks on an opened regular file's ``fstat``."""
    if st.st_nlink != 1:
        raise _unsafe(rel, f"has {st.st_nlink} hard links")
    if expected_uid is not None and st.st_uid != expected_uid:
        raise _unsafe(rel, f"is owned by uid {st.st_uid}, expected {expected_uid}")
    if st.st_size > max_size:
        raise _unsafe(rel, f"is too large ({st.st_size} bytes, limit {max_size})")


def _pread_all(fd: int, limit: int, size_hint: int = 0) -> bytes:
    """Up to ``limit`` bytes of ``fd`` from offset 0 (the file position is not used).

    NOTE: the first read asks for ``size_hint + 1`` bytes (the ``fstat`` size: one read
    and end of file seen), later ones 64 KiB: a bigger request than the file allocates a
    buffer of that size first, and one over glibc's mmap threshold (128 KiB) is an mmap,
    an mremap and a munmap for every file read.
    """
    chunks: list[bytes] = []
    offset = 0
    want = max(size_hint, 0) + 1
    while offset < limit:
        chunk = os.pread(fd, min(limit - offset, want), offset)
        want = 1 << 16
        if not chunk:
            break
        chunks.append(chunk)
        offset += len(chunk)
    return b"".join(chunks)


def write_all(fd: int, data: bytes) -> None:
    """Write all of ``data`` to ``fd`` (short writes are continued)."""
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def write_temp(dir_fd: int, data: bytes, *, uid: int, gid: int, mode: int) -> str:
    """Write ``data`` to a fresh temp file in folder ``dir_fd``; returns its name.

    Created 0600 with ``O_EXCL | O_NOFOLLOW``, then ``fchown`` and ``fchmod`` (in that
    order: chown clears set-id bits) and ``fsync``. Removed again on any error.
    """
    name = f".patchd-{secrets.token_hex(8)}.tmp"
    fd = os.open(name, _CREATE_FLAGS, 0o600, dir_fd=dir_fd)
    try:
        write_all(fd, data)
        if (uid, gid) != (os.geteuid(), os.getegid()):
            os.fchown(fd, uid, gid)
        os.fchmod(fd, mode)
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        _unlink_quietly(dir_fd, name)
        raise
    os.close(fd)
    return name


def _unlink_quietly(dir_fd: int, name: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(name, dir_fd=dir_fd)


def replace_checked(cf: CheckedFile, data: bytes, *, expected_sha: str) -> None:
    """Atomically replace the held file ``cf`` with ``data``, keeping owner, group and mode.

    ``expected_sha`` is what the file must still hash to (re-checked right before the
    rename); on a mismatch :class:`FileChangedError` is raised and nothing is changed.
    """
    tmp = write_temp(cf.dir_fd, data, uid=cf.facts.uid, gid=cf.facts.gid, mode=cf.facts.mode)
    try:
        cf.recheck(expected_sha)
        os.rename(tmp, cf.name, src_dir_fd=cf.dir_fd, dst_dir_fd=cf.dir_fd)
    except BaseException:
        _unlink_quietly(cf.dir_fd, tmp)
        raise
    os.fsync(cf.dir_fd)


def create_new(
    root: SafeRoot,
    rel: str,
    data: bytes,
    *,
    expected_uid: int | None,
    mode: int | None = None,
    uid: int | None = None,
    gid: int | None = None,
) -> None:
    """Create ``rel`` with ``data``; fails with :class:`FileChangedError` if the name exists.

    Owner and group default to the folder's, the mode to :data:`NEW_FILE_MODE`. The name
    appears atomically with its full content: temp file, then ``link`` (which, unlike
    ``rename``, never replaces an existing name), then the temp name is removed.
    """
    dir_fd, name = open_parent(root, rel, expected_uid=expected_uid)
    try:
        dst = os.fstat(dir_fd)
        tmp = write_temp(
            dir_fd,
            data,
            uid=dst.st_uid if uid is None else uid,
            gid=dst.st_gid if gid is None else gid,
            mode=NEW_FILE_MODE if mode is None else mode,
        )
        try:
            os.link(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd, follow_symlinks=False)
        except FileExistsError:
            raise FileChangedError(f"{show(rel)} exists already", where=rel) from None
        finally:
            _unlink_quietly(dir_fd, tmp)
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def remove_checked(cf: CheckedFile, *, expected_sha: str) -> None:
    """Remove the held file ``cf`` if it still hashes to ``expected_sha``.

    NOTE: the name is first renamed aside within its folder, the renamed entry's identity
    compared with the held descriptor, and only then unlinked; if someone swapped the name
    in between, the swapped-in entry is put back and :class:`FileChangedError` raised.
    """
    cf.recheck(expected_sha)
    aside = f".patchd-{secrets.token_hex(8)}.del"
    os.rename(cf.name, aside, src_dir_fd=cf.dir_fd, dst_dir_fd=cf.dir_fd)
    st = os.stat(aside, dir_fd=cf.dir_fd, follow_symlinks=False)
    if (st.st_dev, st.st_ino) != (cf.facts.dev, cf.facts.ino):
        try:
            os.link(
                aside, cf.name, src_dir_fd=cf.dir_fd, dst_dir_fd=cf.dir_fd, follow_symlinks=False
            )
            os.unlink(aside, dir_fd=cf.dir_fd)
        except OSError:
            pass  # NOTE: leave the swapped-in entry under its aside name rather than clobber
        raise FileChangedError(f"{show(cf.rel)} was replaced", where=cf.rel)
    os.unlink(aside, dir_fd=cf.dir_fd)
    os.fsync(cf.dir_fd)
