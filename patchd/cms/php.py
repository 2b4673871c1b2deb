"""Hints about an account's PHP version from ``.htaccess`` handlers and ini comments.

Hosters select PHP per folder with handler lines such as
``AddHandler application/x-httpd-php74 .php``, ``AddType application/x-httpd-ea-php81 .php``
or ``SetHandler "proxy:unix:/run/php/php8.1-fpm.sock|fcgi://localhost"``, or leave a
``; php_version=8.1`` comment in ``.user.ini`` / ``php.ini``. These are hints (the
inventory's ``php`` wins), reported with where they were found.

NOTE: stdlib-only; the host-side agent imports it. Files are read as text, size-limited.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Sequence

from patchd.cms._text import clean, join_rel, read_text
from patchd.errors import UnsafePathError
from patchd.safefs import SafeRoot, split_relpath

#: Largest ``.htaccess`` / ini file read for hints.
HINT_FILE_LIMIT = 1 << 20

_DIRECTIVE = re.compile(r"^\s*(AddHandler|SetHandler|AddType|FcgidWrapper)\s+(\S.*)$", re.I)
# php74, php7.4, php-8.1, ea-php81, lsphp82, php8.2-fpm; not php710 or php (no digit)
_PHP_TOKEN = re.compile(r"php-?(\d)(?:\.(\d{1,2})|(\d))?(?!\d)", re.I)
_INI_HINT = re.compile(
    r"""^\s*[;#]\s*php[_-]?version\s*[=:]\s*["']?(\d\.\d{1,2})["']?\s*$""", re.I | re.M
)


def php_version_from_handler(text: str) -> str | None:
    """``"7.4"`` from a handler or type such as ``application/x-httpd-php74``."""
    m = _PHP_TOKEN.search(text)
    if not m:
        return None
    minor = m.group(2) if m.group(2) is not None else m.group(3)
    return f"{m.group(1)}.{minor}" if minor is not None else m.group(1)


def _htaccess_hint(root: SafeRoot, rel: str) -> tuple[str, str] | None:
    """The last PHP-selecting directive of an ``.htaccess`` (Apache: the last one wins)."""
    text, _ = read_text(root, rel, max_size=HINT_FILE_LIMIT)
    if text is None:
        return None
    hit: tuple[str, str] | None = None
    for no, line in enumerate(text.splitlines(), 1):
        m = _DIRECTIVE.match(line)
        if not m:
            continue
        directive, args = m.group(1).lower(), m.group(2).strip()
        # NOTE: for AddHandler/AddType only the handler/type counts: a later ".php5"
        # extension argument says nothing about the version.
        subject = args if directive in ("sethandler", "fcgidwrapper") else args.split()[0]
        version = php_version_from_handler(subject.strip("\"'"))
        if version:
            hit = (version, f"{rel} line {no}: {clean(line, 200)}")
    return hit


def _ini_hint(root: SafeRoot, rel: str) -> tuple[str, str] | None:
    text, _ = read_text(root, rel, max_size=HINT_FILE_LIMIT)
    if text is None:
        return None
    m = _INI_HINT.search(text)
    if not m:
        return None
    no = text.count("\n", 0, m.start()) + 1
    return m.group(1), f"{rel} line {no}: {clean(m.group(0), 200)}"


def php_hints(root: SafeRoot, docroots: Sequence[str] | None) -> tuple[str | None, str]:
    """``(version, source)`` of the first PHP hint found, or ``(None, "")``.

    Looks at each docroot's ``.htaccess`` and those of its parent folders up to the
    account root (they apply too), then ``.user.ini`` and ``php.ini`` in the docroot and
    the root.
    """
    starts: list[str] = []
    for docroot in docroots or [""]:
        try:
            starts.append("/".join(split_relpath(docroot)))
        except UnsafePathError:
            continue
    for start in starts:
        folder = start
        while True:
            hit = _htaccess_hint(root, join_rel(folder, ".htaccess"))
            if hit:
                return hit
            if not folder:
                break
            folder = posixpath.dirname(folder)
    for start in starts:
        for folder in dict.fromkeys((start, "")):
            for name in (".user.ini", "php.ini"):
                hit = _ini_hint(root, join_rel(folder, name))
                if hit:
                    return hit
    return None, ""
