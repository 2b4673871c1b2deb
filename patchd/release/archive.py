"""Open a release: a folder as it is, or an untrusted archive extracted safely.

``open_release`` accepts ``.tar``, ``.tar.gz``/``.tgz``, ``.tar.bz2``, ``.tar.xz`` and
``.zip`` (recognised by their magic bytes, not their suffix) or a folder. An archive is
extracted into a fresh folder under ``workdir``; a single common top-level folder is
stripped (for a folder input too). On any refusal the partial extraction is removed and
:class:`~patchd.errors.ArchiveError` names the archive and the member.

Decisions (see THREATS.md):

- Symlink members are recorded as link entries (path and target text) and never created
  or followed: vendors ship relative links (``public_html/plugins -> ../plugins``), and
  the release diff compares them as links (:func:`open_release_links` returns them,
  :func:`patchd.release.tree.diff_trees` takes them). Nothing is created on disk, so no
  later member can be written through one; a member at or beneath a link's path is
  refused. A link whose target leaves the tree (absolute, or too many ``..``) is refused.
- A hardlink member reads as its target's content: the target must be a regular file
  member extracted earlier; the member becomes a copy (never a link on disk).
- Devices, FIFOs, sparse files and unknown member types are refused.
- Modes are normalised, never copied: setuid/setgid/sticky bits are stripped, files are
  0644 or 0755 (any execute bit), folders 0755. Owners and times are not restored.
- Duplicate members (after normalising ``./a//b`` to ``a/b``) are refused, as is a member
  beneath a file or a file where a folder is.
- Sizes are checked as declared and again while streaming, counting the bytes actually
  unpacked: per member, in total, and as unpacked/compressed ratio.
- Extraction never uses ``tarfile.extract*`` or ``zipfile.extract*`` (and so does not
  depend on their filters): members are iterated here and written by
  :class:`~patchd.release.sink.ExtractionSink`.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import os
import shutil
import stat
import tarfile
import tempfile
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO, Literal

from patchd.errors import ArchiveError
from patchd.release.limits import DEFAULT_LIMITS, RATIO_GRACE_BYTES, ArchiveLimits
from patchd.release.names import link_leaves_tree, split_member_name
from patchd.release.sink import ExtractionSink, Parts, SkippedMember

__all__ = [
    "DEFAULT_LIMITS",
    "ArchiveLimits",
    "detect_format",
    "open_release",
    "open_release_links",
    "strip_single_folder",
]

Format = Literal["tar", "gz", "bz2", "xz", "zip"]
_MAGIC: tuple[tuple[bytes, Format], ...] = (
    (b"\x1f\x8b", "gz"),
    (b"BZh", "bz2"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"PK\x03\x04", "zip"),
    (b"PK\x05\x06", "zip"),  # an empty zip
)
_TAR_SUFFIXES = (".tar",)


class _Refused(Exception):
    """Raised deep inside a reader; turned into ArchiveError naming the current member."""


def detect_format(path: Path) -> Format:
    """The archive format of ``path`` from its first bytes (``.tar`` also by suffix)."""
    with open(path, "rb") as fh:
        head = fh.read(512)
    for magic, fmt in _MAGIC:
        if head.startswith(magic):
            return fmt
    if len(head) == 512 and head[257:262] == b"ustar":
        return "tar"
    if path.name.lower().endswith(_TAR_SUFFIXES) and len(head) >= 512:
        return "tar"  # old v7 tar: no magic; tarfile checks the header checksums
    raise ArchiveError(
        "not a supported archive (tar, tar.gz, tar.bz2, tar.xz, zip) or folder",
        archive=str(path),
    )


def strip_single_folder(root: Path) -> Path:
    """``root/X`` when ``root`` holds exactly one entry and it is a real folder; else ``root``.

    NOTE: ``lstat``: a lone symlink to a folder is not stripped (it would be followed).
    """
    entries = os.listdir(root)
    if len(entries) == 1:
        only = root / entries[0]
        if stat.S_ISDIR(os.lstat(only).st_mode):
            return only
    return root


def open_release(source: Path, workdir: Path, *, limits: ArchiveLimits = DEFAULT_LIMITS) -> Path:
    """Return the root folder of the release at ``source`` (an archive or a folder).

    Archives are extracted into a fresh folder under ``workdir`` (created if missing); a
    folder is used in place. One common top-level folder is stripped in both cases. An
    archive's symlink members are not on disk (see :func:`open_release_links`).
    """
    return open_release_links(source, workdir, limits=limits)[0]


def open_release_links(
    source: Path,
    workdir: Path,
    *,
    limits: ArchiveLimits = DEFAULT_LIMITS,
    wanted: Callable[[str], bool] | None = None,
) -> tuple[Path, dict[str, str]]:
    """Like :func:`open_release`, plus an archive's symlink members (path below the
    returned root -> target text); empty for a folder, whose links are on disk.

    ``wanted`` (release-relative path -> bool): write only those files of an archive
    (a backport needs the few files the patch touches and the version files); every
    member is still read and checked against every limit and rule. A wanted hardlink to
    a member that was not written makes it extract the whole archive after all.
    """
    source = Path(source)
    if source.is_dir():
        return strip_single_folder(source), {}
    if not source.is_file():
        raise ArchiveError("no such archive or folder", archive=str(source))
    fmt = detect_format(source)
    Path(workdir).mkdir(parents=True, exist_ok=True)
    target = Path(tempfile.mkdtemp(prefix="release-", dir=workdir))
    tops: set[str] = set()
    try:
        try:
            links, tops = _Extraction(source, target, fmt, limits, _member_filter(wanted)).run()
        except SkippedMember:
            shutil.rmtree(target)
            target.mkdir()
            links, tops = _Extraction(source, target, fmt, limits).run()
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)
        raise
    # NOTE: members that were not written are not on disk: only strip a lone top folder
    # when the archive had nothing else at its top.
    root = strip_single_folder(target) if len(tops) <= 1 else target
    if root == target:
        return root, links
    prefix = root.name + "/"
    if any(not path.startswith(prefix) for path in links):
        return target, links  # a link beside the lone folder: nothing is stripped
    return root, {path[len(prefix) :]: t for path, t in links.items()}


#: Zip compression methods zipfile can read (stored, deflate, bzip2, lzma).
_ZIP_METHODS = frozenset(
    {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA}
)


class _CountingReader:
    """A read-only file object that counts bytes and calls ``check`` after every read."""

    def __init__(self, inner: BinaryIO, check: Callable[[], None] | None = None) -> None:
        self._inner = inner
        self._check = check
        self.count = 0

    def read(self, size: int = -1) -> bytes:
        data = self._inner.read(size)
        self.count += len(data)
        if self._check is not None:
            self._check()
        return data

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        """Closing is left to the owner of the inner file."""


def _member_filter(wanted: Callable[[str], bool] | None) -> Callable[[Parts], bool] | None:
    """``wanted`` on a member's path, with and without its first component (the one top
    folder a release archive usually has)."""
    if wanted is None:
        return None

    def want(parts: Parts) -> bool:
        return wanted("/".join(parts)) or (len(parts) > 1 and wanted("/".join(parts[1:])))

    return want


class _Extraction:
    """One archive's extraction: budgets, the current member, and the format readers."""

    def __init__(
        self,
        source: Path,
        target: Path,
        fmt: Format,
        limits: ArchiveLimits,
        wanted: Callable[[Parts], bool] | None = None,
    ) -> None:
        self.wanted = wanted
        self.source = source
        self.target = target
        self.fmt = fmt
        self.limits = limits
        self.archive = str(source)
        self.member: str | None = None
        self.members = 0
        self.declared_total = 0
        self.unpacked_total = 0  # bytes of file data written
        self.archive_size = os.stat(source).st_size

    # -- budgets -------------------------------------------------------------------------

    def _error(self, why: str) -> ArchiveError:
        return ArchiveError(why, archive=self.archive, member=self.member)

    def _start_member(self, name: str, declared_size: int) -> None:
        self.member = name
        self.members += 1
        if self.members > self.limits.max_members:
            raise self._error(f"more than {self.limits.max_members} members")
        if declared_size > self.limits.max_member_size:
            raise self._error(
                f"declared size {declared_size} above the member limit "
                f"{self.limits.max_member_size}"
            )
        self.declared_total += declared_size
        if self.declared_total > self.limits.max_total_size:
            raise self._error(f"declared sizes add up to more than {self.limits.max_total_size}")

    def _chunk_counter(self, compressed_size: int | None) -> Callable[[int], None]:
        """A callback counting one member's unpacked bytes against every limit."""
        done = 0

        def on_chunk(n: int) -> None:
            nonlocal done
            done += n
            self.unpacked_total += n
            if done > self.limits.max_member_size:
                raise _Refused(f"member unpacks to more than {self.limits.max_member_size}")
            if self.unpacked_total > self.limits.max_total_size:
                raise _Refused(f"archive unpacks to more than {self.limits.max_total_size}")
            if compressed_size is not None:
                self._check_ratio(done, compressed_size)
                self._check_ratio(self.unpacked_total, self.archive_size)

        return on_chunk

    def _check_ratio(self, unpacked: int, compressed: int) -> None:
        if unpacked > RATIO_GRACE_BYTES and unpacked > self.limits.max_ratio * max(compressed, 1):
            raise _Refused(
                f"compression ratio above {self.limits.max_ratio:g} (decompression bomb?)"
            )

    # -- driver --------------------------------------------------------------------------

    def run(self) -> tuple[dict[str, str], set[str]]:
        """Extract; return the symlink members (path -> target), which are not created, and
        the first path component of every member."""
        sink = ExtractionSink(str(self.target), archive=self.archive, wanted=self.wanted)
        try:
            if self.fmt == "zip":
                self._zip(sink)
            else:
                self._tar(sink)
        except _Refused as exc:
            raise self._error(str(exc)) from None
        except ArchiveError:
            raise
        except (tarfile.TarError, zipfile.BadZipFile, zlib.error, lzma.LZMAError, EOFError) as exc:
            raise self._error(f"corrupt archive: {exc}") from None
        except (NotImplementedError, UnicodeDecodeError) as exc:
            # NOTE: zipfile raises these for a newer zip version than it reads and for a
            # name flagged UTF-8 that is not (found by bench/fuzz.py).
            raise self._error(f"unsupported or corrupt archive: {exc}") from None
        except OSError as exc:
            # NOTE: e.g. ENAMETOOLONG, or a BadGzipFile (an OSError) for a broken stream.
            raise self._error(f"cannot extract: {exc.strerror or exc}") from None
        finally:
            sink.close()
        if self.members == 0:
            raise ArchiveError("archive holds no members", archive=self.archive)
        return sink.links, sink.top_level

    # -- tar -----------------------------------------------------------------------------

    def _open_decompressed(self, raw: _CountingReader) -> BinaryIO:
        if self.fmt == "gz":
            return gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[arg-type]
        if self.fmt == "bz2":
            return bz2.BZ2File(raw, mode="rb")  # type: ignore[arg-type]
        if self.fmt == "xz":
            return lzma.LZMAFile(raw, mode="rb")  # type: ignore[arg-type]
        return raw  # type: ignore[return-value]

    def _tar(self, sink: ExtractionSink) -> None:
        limits = self.limits
        with open(self.source, "rb") as fh:
            raw = _CountingReader(fh)  # type: ignore[arg-type]
            # NOTE: headers and padding count too: a stream of empty members or huge pax
            # headers is a bomb without file data. The ratio is judged on the whole stream
            # because compression of a tar is solid.
            stream_cap = limits.max_total_size + 2048 * limits.max_members

            def check_stream() -> None:
                if self.fmt != "tar":
                    self._check_ratio(unpacked.count, raw.count)
                if unpacked.count > stream_cap:
                    raise _Refused(f"archive unpacks to more than {stream_cap} bytes")

            unpacked = _CountingReader(self._open_decompressed(raw), check_stream)
            # NOTE: stream mode ("r|"): one forward pass, members are read as they come.
            with tarfile.open(fileobj=unpacked, mode="r|") as tf:  # type: ignore[call-overload]
                for info in tf:
                    self._tar_member(tf, info, sink)
                self.member = None
                self._drain_tail(tf)

    def _drain_tail(self, tf: tarfile.TarFile) -> None:
        """Read what follows the end marker: only NUL padding may be there (checks gzip CRC)."""
        stream = tf.fileobj
        assert stream is not None
        while True:
            chunk = stream.read(1024 * 1024)
            if not chunk:
                return
            if chunk.strip(b"\x00"):
                raise _Refused("data after the end of the tar archive (corrupt header?)")

    def _tar_member(self, tf: tarfile.TarFile, info: tarfile.TarInfo, sink: ExtractionSink) -> None:
        declared = info.size if info.isreg() else 0
        self._start_member(info.name, declared)
        parts = split_member_name(info.name, archive=self.archive, limits=self.limits)
        if info.issym():
            self._check_link(parts, info.linkname)
            sink.add_link(parts, info.linkname)
            return
        if info.islnk():
            try:
                target = split_member_name(info.linkname, archive=self.archive, limits=self.limits)
            except ArchiveError as exc:
                raise self._error(
                    f"hardlink target {info.linkname!r} refused: {exc.message}"
                ) from None
            with sink.open_extracted(target, parts) as src:
                sink.add_file(
                    parts,
                    src,
                    executable=bool(info.mode & 0o111),
                    on_chunk=self._chunk_counter(None),
                )
            return
        if info.ischr() or info.isblk():
            raise self._error("device member refused")
        if info.isfifo():
            raise self._error("FIFO member refused")
        if info.issparse():
            raise self._error("sparse member refused")
        if info.isdir():
            sink.add_dir(parts)
            return
        if info.type not in (tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.CONTTYPE):
            raise self._error(f"member of unknown type {info.type!r} refused")
        src = tf.extractfile(info)
        assert src is not None
        with src:
            written = sink.add_file(
                parts,
                src,  # type: ignore[arg-type]
                executable=bool(info.mode & 0o111),
                on_chunk=self._chunk_counter(None),
            )
        if written != info.size:
            raise self._error(f"member truncated: {written} of {info.size} bytes")

    def _check_link(self, parts: tuple[str, ...], target: str) -> None:
        if len(os.fsencode(target)) > self.limits.max_path_length:
            raise self._error(
                f"symlink target longer than {self.limits.max_path_length} bytes refused"
            )
        if not target or "\x00" in target:
            raise self._error("symlink member with an empty or NUL target refused")
        if link_leaves_tree(parts, target):
            raise self._error(f"symlink leaves the release tree (-> {target!r})")

    # -- zip -----------------------------------------------------------------------------

    def _zip(self, sink: ExtractionSink) -> None:
        with zipfile.ZipFile(self.source) as zf:
            infos = zf.infolist()
            if len(infos) > self.limits.max_members:
                self.member = infos[self.limits.max_members].orig_filename
                raise self._error(f"more than {self.limits.max_members} members")
            for info in infos:
                self._zip_member(zf, info, sink)

    def _zip_member(self, zf: zipfile.ZipFile, info: zipfile.ZipInfo, sink: ExtractionSink) -> None:
        name = info.orig_filename  # NOTE: zipfile cuts ``filename`` at a NUL; this is whole
        self._start_member(name, info.file_size)
        parts = split_member_name(name, archive=self.archive, limits=self.limits, zip_name=True)
        mode = info.external_attr >> 16 if info.create_system == 3 else 0
        kind = stat.S_IFMT(mode)
        if info.flag_bits & 0x1:
            raise self._error("encrypted member refused")
        if info.compress_type not in _ZIP_METHODS:
            # NOTE: zipfile raises NotImplementedError for these (e.g. deflate64, method 9).
            raise self._error(f"compression method {info.compress_type} not supported")
        if kind == stat.S_IFLNK:
            if info.file_size > self.limits.max_path_length:
                raise self._error(
                    f"symlink target longer than {self.limits.max_path_length} bytes refused"
                )
            target = zf.read(info).decode("utf-8", "surrogateescape")
            self._check_link(parts, target)
            sink.add_link(parts, target)
            return
        if info.is_dir() or kind == stat.S_IFDIR:
            if info.file_size:
                raise self._error("folder member with data refused")
            sink.add_dir(parts)
            return
        if kind not in (0, stat.S_IFREG):
            raise self._error(f"member of special type {stat.filemode(mode)[0]!r} refused")
        with zf.open(info) as src:
            written = sink.add_file(
                parts,
                src,  # type: ignore[arg-type]
                executable=bool(mode & 0o111),
                on_chunk=self._chunk_counter(info.compress_size),
            )
        if written != info.file_size:
            raise self._error(f"member size {written} differs from declared {info.file_size}")
