"""The full release diff: every changed file of two release trees, with stable hunk ids.

``diff_trees(old_root, new_root)`` walks both trees without following symlinks, skips
files whose bytes are equal, and diffs the rest line by line
(:mod:`patchd.release.linediff`). Each hunk gets an id that stays the same across rebuilds:
``"<path>@<old_start>-<first 10 hex of Hunk.digest>"``.

Decisions:

- A file is text when it has no NUL byte in its first 8 KiB and decodes as UTF-8 or,
  failing that, as cp1252 (old CMS releases ship Latin-1 files; random binary data almost
  never decodes as cp1252 because five byte values are undefined there). Anything else is
  ``binary``: reported with both hashes and no hunks.
- A change that involves a binary file or a symlink on either side is ``binary``, also
  when the file is only added or removed (``old_sha256``/``new_sha256`` is then None).
- Symlinks are never followed; their "content" is the link target, hashed as
  ``sha256(b"symlink\\0" + target)`` so a link never equals a file.
- FIFOs, sockets and devices inside a release folder raise
  :class:`~patchd.errors.UnsafePathError` (nothing is skipped silently).
- Folders present in only one tree are listed in ``dirs_added``/``dirs_removed`` (a
  unified diff cannot express an empty folder).
- Paths are ``str`` with ``surrogateescape`` for non-UTF-8 bytes, ``/``-separated,
  relative to the root, as in :mod:`patchd.engine.model`.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from patchd.engine.model import FilePatch, Hunk
from patchd.errors import UnsafePathError
from patchd.release.linediff import diff_lines, split_lines

ChangeKind = Literal["added", "removed", "modified", "binary"]
_SNIFF = 8192
_CHUNK = 1024 * 1024
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
# NOTE: files up to this size are read whole once: compared, and if changed, diffed from
# the same bytes. Larger files are compared in chunks first (then read again if changed).
_WHOLE_READ_MAX = 16 * 1024 * 1024


@dataclass(frozen=True)
class ReleaseHunk:
    """One hunk of the full release diff with its stable ``id``."""

    id: str
    path: str
    hunk: Hunk


@dataclass(frozen=True)
class FileChange:
    """One file that differs between the releases."""

    path: str
    kind: ChangeKind
    old_sha256: str | None
    new_sha256: str | None
    hunks: tuple[ReleaseHunk, ...]
    #: For a change that involves a symlink: each side's link target (None: not a link).
    old_link: str | None = None
    new_link: str | None = None

    @property
    def is_link(self) -> bool:
        """Whether a symlink is on either side (a patch cannot carry it)."""
        return self.old_link is not None or self.new_link is not None

    def to_file_patch(self, hunks: Iterable[ReleaseHunk] | None = None) -> FilePatch:
        """A :class:`FilePatch` with all hunks, or only ``hunks`` (a subset, e.g. the kept).

        The new-side start lines are recomputed for the subset, so the patch is exact
        without the dropped hunks. Raises ValueError for binary changes or foreign hunks.
        """
        if self.kind == "binary":
            raise ValueError(f"{self.path}: binary change has no text patch")
        if hunks is None:
            chosen = list(self.hunks)
        else:
            wanted = {h.id for h in hunks}
            unknown = wanted - {h.id for h in self.hunks}
            if unknown:
                raise ValueError(f"{self.path}: hunks not of this file: {sorted(unknown)}")
            chosen = [h for h in self.hunks if h.id in wanted]
        out: list[Hunk] = []
        delta = 0
        for rh in chosen:
            h = rh.hunk
            old_first = h.old_start - 1 if h.old_len else h.old_start
            new_first = old_first + delta
            new_start = new_first + 1 if h.new_len else new_first
            out.append(
                Hunk(h.old_start, h.old_len, new_start, h.new_len, h.lines, section=h.section)
            )
            delta += h.new_len - h.old_len
        return FilePatch(
            old_path=None if self.kind == "added" else self.path,
            new_path=None if self.kind == "removed" else self.path,
            hunks=tuple(out),
        )


@dataclass(frozen=True)
class ReleaseDiff:
    """Every changed file, sorted by path, plus folders found in only one tree."""

    files: list[FileChange]
    dirs_added: tuple[str, ...] = ()
    dirs_removed: tuple[str, ...] = ()
    _by_id: dict[str, ReleaseHunk] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        for fc in self.files:
            for rh in fc.hunks:
                self._by_id[rh.id] = rh

    @property
    def hunks(self) -> list[ReleaseHunk]:
        """All hunks in file order, then position order."""
        return [rh for fc in self.files for rh in fc.hunks]

    def hunk(self, hunk_id: str) -> ReleaseHunk:
        """The hunk with this id (KeyError when unknown)."""
        return self._by_id[hunk_id]


@dataclass(frozen=True)
class _Entry:
    kind: Literal["file", "link"]
    size: int


def _walk(root: Path, links: Mapping[str, str] | None = None) -> tuple[dict[str, _Entry], set[str]]:
    """Files/links and folders below ``root`` by relative path; never follows links.

    ``links`` are symlinks recorded, not created, by archive extraction (path -> target).
    """
    files: dict[str, _Entry] = {path: _Entry("link", 0) for path in links or {}}
    dirs: set[str] = set()
    stack = [""]
    while stack:
        rel = stack.pop()
        with os.scandir(os.path.join(root, rel) if rel else root) as it:
            for entry in it:
                path = f"{rel}/{entry.name}" if rel else entry.name
                st = entry.stat(follow_symlinks=False)
                if stat.S_ISDIR(st.st_mode):
                    dirs.add(path)
                    stack.append(path)
                elif stat.S_ISREG(st.st_mode):
                    files[path] = _Entry("file", st.st_size)
                elif stat.S_ISLNK(st.st_mode):
                    files[path] = _Entry("link", 0)
                else:
                    raise UnsafePathError(
                        "not a regular file, folder or symlink", where=str(root / path)
                    )
    return files, dirs


def _read(root: Path, rel: str) -> bytes:
    fd = os.open(os.path.join(root, rel), _READ_FLAGS)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise UnsafePathError("changed into a non-regular file", where=str(root / rel))
        chunks = []
        while True:
            chunk = os.read(fd, _CHUNK)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)
    finally:
        os.close(fd)


def _same_large(a: Path, b: Path) -> bool:
    with (
        open(os.open(a, _READ_FLAGS), "rb") as fa,
        open(os.open(b, _READ_FLAGS), "rb") as fb,
    ):
        while True:
            ca, cb = fa.read(_CHUNK), fb.read(_CHUNK)
            if ca != cb:
                return False
            if not ca:
                return True


def _content(root: Path, rel: str, entry: _Entry, links: Mapping[str, str] | None = None) -> bytes:
    if entry.kind == "link":
        if links and rel in links:
            return os.fsencode(links[rel])
        return os.fsencode(os.readlink(os.path.join(root, rel)))
    return _read(root, rel)


def _sha(data: bytes, entry: _Entry) -> str:
    prefix = b"symlink\x00" if entry.kind == "link" else b""
    return hashlib.sha256(prefix + data).hexdigest()


def is_text(data: bytes) -> bool:
    """No NUL in the first 8 KiB, and decodable as UTF-8 or cp1252."""
    if b"\x00" in data[:_SNIFF]:
        return False
    for encoding in ("utf-8", "cp1252"):
        try:
            data.decode(encoding)
        except UnicodeDecodeError:
            continue
        return True
    return False


def _hunk_id(path: str, hunk: Hunk) -> str:
    return f"{path}@{hunk.old_start}-{hunk.digest[:10]}"


def _change(
    path: str,
    old: tuple[_Entry, bytes] | None,
    new: tuple[_Entry, bytes] | None,
    context: int,
) -> FileChange:
    old_sha = _sha(old[1], old[0]) if old else None
    new_sha = _sha(new[1], new[0]) if new else None
    old_link = os.fsdecode(old[1]) if old and old[0].kind == "link" else None
    new_link = os.fsdecode(new[1]) if new and new[0].kind == "link" else None
    binary = any(side and (side[0].kind == "link" or not is_text(side[1])) for side in (old, new))
    if binary:
        return FileChange(path, "binary", old_sha, new_sha, (), old_link, new_link)
    kind: ChangeKind = "modified" if old and new else ("added" if new else "removed")
    hunks = diff_lines(
        split_lines(old[1]) if old else [], split_lines(new[1]) if new else [], context=context
    )
    rhs = tuple(ReleaseHunk(_hunk_id(path, h), path, h) for h in hunks)
    return FileChange(path, kind, old_sha, new_sha, rhs)


def diff_trees(
    old_root: Path,
    new_root: Path,
    *,
    context: int = 3,
    old_links: Mapping[str, str] | None = None,
    new_links: Mapping[str, str] | None = None,
) -> ReleaseDiff:
    """Diff two release roots; unchanged files (same size and bytes) cost one read each.

    ``old_links``/``new_links``: an archive's symlink members (never created on disk),
    compared like links found on disk: by target text.
    """
    old_root, new_root = Path(old_root), Path(new_root)
    old_files, old_dirs = _walk(old_root, old_links)
    new_files, new_dirs = _walk(new_root, new_links)
    changes: list[FileChange] = []
    for path in sorted(old_files.keys() | new_files.keys()):
        o, n = old_files.get(path), new_files.get(path)
        old_data = new_data = None
        if o and n and o.kind == n.kind and (o.kind == "link" or o.size == n.size):
            # NOTE: only same-kind, same-size entries can be equal; each is read once here
            # and the bytes are reused for the diff when they differ.
            if o.size > _WHOLE_READ_MAX and _same_large(old_root / path, new_root / path):
                continue
            old_data = _content(old_root, path, o, old_links)
            new_data = _content(new_root, path, n, new_links)
            if old_data == new_data:
                continue
        if o and old_data is None:
            old_data = _content(old_root, path, o, old_links)
        if n and new_data is None:
            new_data = _content(new_root, path, n, new_links)
        old = (o, old_data) if o and old_data is not None else None
        new = (n, new_data) if n and new_data is not None else None
        changes.append(_change(path, old, new, context))
    return ReleaseDiff(
        files=changes,
        dirs_added=tuple(sorted(new_dirs - old_dirs)),
        dirs_removed=tuple(sorted(old_dirs - new_dirs)),
    )
