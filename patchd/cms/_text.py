"""Small helpers shared by the detectors: bounded reads and text-only PHP parsing.

NOTE: customer files are hostile input. They are read with size limits through
:class:`SafeRoot`, parsed with anchored regexes (never executed), and every value taken
from them is cleaned (control characters removed, length capped) before it is reported.
stdlib-only; the host-side agent imports it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable

from patchd.errors import UnsafePathError
from patchd.safefs import DirEntry, SafeRoot, join_rel

#: Largest version file a detector reads whole.
VERSION_FILE_LIMIT = 1 << 20
#: Bytes read from the head of a file for header comments (WordPress reads 8 KiB too).
HEADER_LIMIT = 8192
#: Most extensions reported per installation (a hostile tree may hold millions of dirs).
MAX_EXTENSIONS = 2000
#: Longest value (version, name) reported from a customer file.
MAX_VALUE = 100

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_QUOTED = r"(['\"])([^'\"\r\n]{1,64})"


def read_text(
    root: SafeRoot, rel: str, *, max_size: int = VERSION_FILE_LIMIT
) -> tuple[str | None, str | None]:
    """``(text, None)`` for a readable regular file, else ``(None, reason)``."""
    try:
        data = root.read_bytes(rel, max_size=max_size)
    except FileNotFoundError:
        return None, f"{rel}: missing"
    except UnsafePathError as exc:
        return None, f"{rel}: {exc.message}"
    except OSError as exc:
        return None, f"{rel}: {exc.strerror or exc}"
    return data.decode("utf-8", "replace"), None


def read_head(root: SafeRoot, rel: str, limit: int = HEADER_LIMIT) -> str | None:
    """The first ``limit`` bytes of ``rel`` as text, or None when it cannot be read safely."""
    try:
        return root.read_head(rel, limit).decode("utf-8", "replace")
    except (OSError, UnsafePathError):
        return None


def listdir_or_empty(root: SafeRoot, rel: str) -> list[DirEntry]:
    """The listing of ``rel``, or ``[]`` when it is missing, a symlink or unreadable."""
    try:
        return root.listdir(rel)
    except (OSError, UnsafePathError):
        return []


def clean(value: str | None, limit: int = MAX_VALUE) -> str | None:
    """``value`` stripped, control characters removed, capped; None when empty."""
    if value is None:
        return None
    value = _CONTROL.sub("", value).strip()
    return value[:limit] or None


def php_assign(text: str, var: str) -> str | None:
    """The string assigned to ``$var`` at the start of a line (``$wp_version = '6.4';``)."""
    m = re.search(rf"^[ \t]*\${re.escape(var)}\s*=\s*{_QUOTED}\1\s*;", text, re.MULTILINE)
    return clean(m.group(2)) if m else None


def php_const(text: str, name: str) -> str | None:
    """The value of a class or global constant (``protected const VERSION = '12.4.11';``).

    Integer values are returned as their digits (``const MAJOR_VERSION = 4;`` gives "4").
    """
    m = re.search(
        rf"^[ \t]*(?:(?:public|protected|private|final)\s+)*const\s+{re.escape(name)}"
        rf"\s*=\s*(?:{_QUOTED}\1|(\d{{1,9}}))\s*;",
        text,
        re.MULTILINE,
    )
    if not m:
        return None
    return clean(m.group(2) if m.group(2) is not None else m.group(3))


def php_define(text: str, name: str) -> str | None:
    """The string of ``define('NAME', '1.6.6');`` at the start of a line."""
    m = re.search(
        rf"^[ \t]*define\s*\(\s*(['\"]){re.escape(name)}\1\s*,\s*(['\"])([^'\"\r\n]{{1,64}})\2",
        text,
        re.MULTILINE,
    )
    return clean(m.group(3)) if m else None


def header_field(text: str, name: str) -> str | None:
    """A ``Name: value`` line in a header comment (WordPress plugin/theme style)."""
    m = re.search(rf"^[ \t/*#@]*{re.escape(name)}:(.*)$", text, re.MULTILINE | re.IGNORECASE)
    if not m:
        return None
    value = re.sub(r"\s*(?:\*/|\?>).*$", "", m.group(1))
    return clean(value)


def json_field(text: str | None, key: str) -> str | None:
    """``data[key]`` of a JSON object when it is a string, else None (never raises)."""
    if not text:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if isinstance(data, dict) and isinstance(data.get(key), str):
        return clean(data[key])
    return None


def dirs(entries: Iterable[DirEntry]) -> list[str]:
    """Names of the real folders in a listing (symlinks excluded)."""
    return [e.name for e in entries if e.kind == "dir"]


def files(entries: Iterable[DirEntry], suffix: str = "") -> list[str]:
    """Names of the regular files in a listing ending in ``suffix``."""
    return [e.name for e in entries if e.kind == "file" and e.name.endswith(suffix)]


__all__ = [
    "HEADER_LIMIT",
    "MAX_EXTENSIONS",
    "VERSION_FILE_LIMIT",
    "clean",
    "dirs",
    "files",
    "header_field",
    "join_rel",
    "json_field",
    "listdir_or_empty",
    "php_assign",
    "php_const",
    "php_define",
    "read_head",
    "read_text",
]
