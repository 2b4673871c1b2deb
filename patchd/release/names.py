"""Validation of archive member names: the only way a name becomes a path under the root.

A name is accepted when it is relative, has no ``..`` component, no NUL or control
character, and stays within the length and depth limits. ``.`` components and repeated
slashes are dropped (``./a//b`` is ``a/b``). Names are ``str`` as the archive readers give
them (``surrogateescape`` for non-UTF-8 bytes); lengths are counted in bytes.
"""

from __future__ import annotations

import os
import re

from patchd.errors import ArchiveError
from patchd.release.limits import NAME_MAX, ArchiveLimits

Parts = tuple[str, ...]
_CONTROL = re.compile("[\x00-\x1f\x7f]")


def _bytes_len(text: str) -> int:
    return len(os.fsencode(text))


def split_member_name(
    name: str, *, archive: str, limits: ArchiveLimits, zip_name: bool = False
) -> Parts:
    """Return the path components of a member name, or raise :class:`ArchiveError`.

    An empty result means the member names the archive root itself (``./``). ``zip_name``
    also refuses backslashes: zip tools on Windows write them as separators, so
    ``..\\..\\x`` is a traversal there.
    """

    def refuse(why: str) -> ArchiveError:
        return ArchiveError(why, archive=archive, member=name)

    if not name:
        raise refuse("empty member name")
    if "\x00" in name:
        raise refuse("NUL byte in member name")
    if _CONTROL.search(name):
        # NOTE: a newline in a path cannot be written into a unified diff header; no CMS
        # release has such names, so refuse rather than produce a diff that lies.
        raise refuse("control character in member name")
    if zip_name and "\\" in name:
        raise refuse("backslash in zip member name (Windows separator or traversal trick)")
    if name.startswith("/"):
        raise refuse("absolute member name")
    if _bytes_len(name) > limits.max_path_length:
        raise refuse(f"member name longer than {limits.max_path_length} bytes")
    parts = tuple(p for p in name.split("/") if p not in ("", "."))
    if ".." in parts:
        raise refuse("'..' component in member name")
    if len(parts) > limits.max_depth:
        raise refuse(f"member name deeper than {limits.max_depth} folders")
    for part in parts:
        if _bytes_len(part) > NAME_MAX:
            raise refuse(f"path component longer than {NAME_MAX} bytes")
    return parts


def link_leaves_tree(member_parts: Parts, target: str) -> bool:
    """Whether a symlink at ``member_parts`` pointing to ``target`` resolves outside the root.

    Judged lexically (the link is never created, so no other link can take part).
    """
    if not target or target.startswith("/"):
        return True
    depth = len(member_parts) - 1  # the folder holding the link
    for part in target.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            depth -= 1
            if depth < 0:
                return True
        else:
            depth += 1
    return False
