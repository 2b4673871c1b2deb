"""Showing file names safely in details, logs and reports.

File names are carried as ``str`` with ``surrogateescape`` (non-UTF-8 bytes become lone
surrogates); shown to people, such bytes appear as ``\\xNN`` and control characters
(a newline in a name could forge a report line) as escapes too.

NOTE: stdlib-only.
"""

from __future__ import annotations


def show(rel: str) -> str:
    """``rel`` with non-UTF-8 bytes as ``\\xNN`` and non-printable characters escaped."""
    if rel.isascii() and rel.isprintable():
        return rel  # NOTE: the common case, without the per-character loop
    raw = rel.encode("utf-8", "surrogateescape")
    text = raw.decode("utf-8", "backslashreplace")
    out: list[str] = []
    for ch in text:
        if ch.isprintable():
            out.append(ch)
        else:
            out.append(ch.encode("unicode_escape").decode("ascii"))
    return "".join(out)
