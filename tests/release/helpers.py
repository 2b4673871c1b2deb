"""Builders for hostile and benign archives, a tree snapshot, and a tiny diff renderer."""

from __future__ import annotations

import io
import os
import stat
import tarfile
import zipfile
from collections.abc import Iterable
from pathlib import Path

from patchd.engine.model import FilePatch, Hunk


def tar_file(name: str, data: bytes = b"x\n", mode: int = 0o644) -> tuple[tarfile.TarInfo, bytes]:
    """A regular-file member."""
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = mode
    return info, data


def tar_entry(
    name: str, kind: bytes, *, linkname: str = "", mode: int = 0o644
) -> tuple[tarfile.TarInfo, bytes]:
    """A member without data: folder, symlink, hardlink, FIFO, device."""
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    info.mode = mode
    return info, b""


def write_tar(
    path: Path, members: Iterable[tuple[tarfile.TarInfo, bytes]], compression: str = ""
) -> Path:
    """Write members as given (no normalisation) with ``w:``/``w:gz``/``w:bz2``/``w:xz``."""
    with tarfile.open(path, f"w:{compression}", format=tarfile.PAX_FORMAT) as tf:
        for info, data in members:
            tf.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return path


def zip_info(name: str, *, unix_mode: int | None = None) -> zipfile.ZipInfo:
    """A zip member whose name is kept verbatim; ``unix_mode`` sets the external attrs."""
    info = zipfile.ZipInfo(name)
    info.compress_type = zipfile.ZIP_DEFLATED
    if unix_mode is not None:
        info.create_system = 3
        info.external_attr = unix_mode << 16
    return info


def write_zip(path: Path, members: Iterable[tuple[zipfile.ZipInfo | str, bytes]]) -> Path:
    """Write members as given (duplicates allowed)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about duplicate names
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
            for info, data in members:
                zf.writestr(info, data)
    return path


def snapshot(root: Path) -> dict[str, tuple[str, bytes]]:
    """Every entry below ``root``: kind and content (file bytes or link target)."""
    out: dict[str, tuple[str, bytes]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, root)
            st = os.lstat(full)
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("link", os.fsencode(os.readlink(full)))
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = ("dir", b"")
            else:
                out[rel] = ("file", Path(full).read_bytes())
    return out


def _name(prefix: str, path: str | None) -> bytes:
    return b"/dev/null" if path is None else os.fsencode(f"{prefix}/{path}")


def _range(start: int, length: int) -> bytes:
    return f"{start}".encode() if length == 1 else f"{start},{length}".encode()


def _hunk(h: Hunk) -> bytes:
    out = [b"@@ -" + _range(h.old_start, h.old_len) + b" +" + _range(h.new_start, h.new_len)]
    out.append(b" @@" + h.section + b"\n")
    for ln in h.lines:
        out.append(ln.kind.encode() + ln.data)
        if not ln.data.endswith(b"\n"):
            out.append(b"\n\\ No newline at end of file\n")
    return b"".join(out)


def render(patches: Iterable[FilePatch]) -> bytes:
    """A minimal unified-diff renderer (test-local, independent of patchd.engine.render)."""
    out: list[bytes] = []
    for fp in patches:
        out.append(b"--- " + _name("a", fp.old_path) + b"\n")
        out.append(b"+++ " + _name("b", fp.new_path) + b"\n")
        out.extend(_hunk(h) for h in fp.hunks)
    return b"".join(out)
