"""Write file patches back out as a unified diff that ``patch -p1`` and :func:`parse_diff` read.

Headers are ``--- a/PATH`` / ``+++ b/PATH`` (``/dev/null`` for a created or deleted
file), hunk ranges follow GNU diff (``,1`` omitted, zero-length ranges as ``N,0``), and a
line without EOL is followed by ``\\ No newline at end of file``. A created or deleted
file without hunks (an empty file) is written as a git header (and then every file gets
one), which both GNU patch and :func:`parse_diff` understand. Names that need it are
C-quoted the way git quotes them.
"""

from __future__ import annotations

from collections.abc import Iterable

from patchd.engine.model import FilePatch, Hunk

__all__ = ["render_patch"]

_NO_EOL = b"\\ No newline at end of file\n"
_ESCAPES = {7: b"\\a", 8: b"\\b", 9: b"\\t", 10: b"\\n", 11: b"\\v", 12: b"\\f", 13: b"\\r"}


def _quote(name: bytes) -> bytes:
    """C-quote ``name`` when it holds bytes a bare header name cannot carry."""
    needs = (
        name.startswith(b'"')
        or name != name.strip()
        or any(c < 0x20 or c == 0x7F or c >= 0x80 or c in b'"\\' for c in name)
    )
    if not needs:
        return name
    out = bytearray(b'"')
    for c in name:
        if c in _ESCAPES:
            out += _ESCAPES[c]
        elif c in b'"\\':
            out += b"\\" + bytes([c])
        elif c < 0x20 or c >= 0x7F:
            out += b"\\%03o" % c
        else:
            out.append(c)
    out += b'"'
    return bytes(out)


def _name(prefix: bytes, path: str | None) -> bytes:
    if path is None:
        return b"/dev/null"
    return _quote(prefix + path.encode("utf-8", "surrogateescape"))


def _range(start: int, length: int) -> bytes:
    return b"%d" % start if length == 1 else b"%d,%d" % (start, length)


def _hunk(hunk: Hunk) -> bytes:
    parts = [
        b"@@ -%s +%s @@%s\n"
        % (_range(hunk.old_start, hunk.old_len), _range(hunk.new_start, hunk.new_len), hunk.section)
    ]
    for ln in hunk.lines:
        parts.append(ln.kind.encode() + ln.data)
        if not ln.data.endswith(b"\n"):
            parts.append(b"\n" + _NO_EOL)
    return b"".join(parts)


def _git_header(fp: FilePatch) -> bytes:
    path = fp.path.encode("utf-8", "surrogateescape")
    out = b"diff --git %s %s\n" % (_quote(b"a/" + path), _quote(b"b/" + path))
    if fp.is_new:
        out += b"new file mode 100644\n"
    elif fp.is_deleted:
        out += b"deleted file mode 100644\n"
    return out


def render_patch(patches: Iterable[FilePatch]) -> bytes:
    """The unified diff (bytes) for ``patches``, applicable with ``patch -p1``."""
    patches = list(patches)
    # NOTE: an empty created/deleted file has no hunk; only a git header can say so. Once
    # one file has only a git header, every file gets one: GNU patch (and unidiff) would
    # otherwise read the next plain ``---``/``+++`` as part of that header's file.
    git_style = any(not fp.hunks for fp in patches)
    out: list[bytes] = []
    for fp in patches:
        if not fp.hunks and not (fp.is_new or fp.is_deleted):
            raise ValueError(f"file patch for {fp.path!r} has no hunks")
        if git_style:
            out.append(_git_header(fp))
        if not fp.hunks:
            continue
        out.append(b"--- %s\n+++ %s\n" % (_name(b"a/", fp.old_path), _name(b"b/", fp.new_path)))
        out.extend(_hunk(h) for h in fp.hunks)
    return b"".join(out)
