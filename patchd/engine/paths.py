"""Turn a file name from a diff header into a safe path relative to the installation root.

NOTE: stdlib-only; the host-side agent uses it too. The checks here are the first line of
defence against ``../`` and absolute names (CVE-2010-4651 style); the file-system layer
still walks descriptor by descriptor and refuses symlinks.
"""

from __future__ import annotations

from patchd.errors import UnsafePathError

__all__ = ["safe_relpath"]


def safe_relpath(name: bytes | str, *, strip: int = 1) -> str:
    """Strip ``strip`` leading components (like ``patch -pN``) and return a safe relative path.

    Refuses (with :class:`UnsafePathError` naming the path) empty names, NUL bytes, absolute
    names, ``..`` components anywhere in the name, and names with fewer than ``strip + 1``
    components. Repeated slashes count as one separator and ``.`` components are dropped
    after stripping. Non-UTF-8 bytes are decoded with ``surrogateescape``.
    """
    if strip < 0:
        raise ValueError("strip must be >= 0")
    text = name.decode("utf-8", "surrogateescape") if isinstance(name, bytes) else name
    shown = repr(text)
    if not text:
        raise UnsafePathError("empty file name", where="path ''")
    if "\0" in text:
        raise UnsafePathError("file name contains a NUL byte", where=f"path {shown}")
    if text.startswith("/"):
        raise UnsafePathError("absolute file name refused", where=f"path {shown}")
    parts = [p for p in text.split("/") if p]
    if ".." in parts:
        raise UnsafePathError("'..' component refused", where=f"path {shown}")
    if len(parts) <= strip:
        raise UnsafePathError(
            f"file name has too few components to strip {strip}", where=f"path {shown}"
        )
    # NOTE: like patch -pN, '.' counts as a component while stripping, but is meaningless
    # (and only confuses later comparisons) in what is left.
    rest = [p for p in parts[strip:] if p != "."]
    if not rest:
        raise UnsafePathError("file name names no file", where=f"path {shown}")
    return "/".join(rest)
