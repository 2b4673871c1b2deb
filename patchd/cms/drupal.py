"""Drupal (8+): version from ``core/lib/Drupal.php``, contributed modules and themes.

NOTE: stdlib-only; the host-side agent imports it.
"""

from __future__ import annotations

import re

from patchd.cms._text import (
    MAX_EXTENSIONS,
    clean,
    dirs,
    join_rel,
    listdir_or_empty,
    php_const,
    read_head,
    read_text,
)
from patchd.cms.interface import Detector, Extension, Installation
from patchd.safefs import SafeRoot

VERSION_FILE = "core/lib/Drupal.php"

_INFO_VERSION = re.compile(r"""^version:[ \t]*(['"]?)([^'"\r\n#]{1,64}?)\1[ \t]*(?:#.*)?$""", re.M)


class DrupalDetector(Detector):
    """Finds Drupal 8+ by ``core/lib/Drupal.php`` (``const VERSION = '10.2.3';``)."""

    name = "drupal"
    markers = (VERSION_FILE,)
    release_files = (VERSION_FILE,)
    owned_dirs = frozenset(
        {"core", "modules", "themes", "profiles", "sites", "vendor", "libraries"}
    )

    def detect(self, root: SafeRoot, path: str) -> Installation | None:
        """The Drupal installation in ``path``, or None."""
        if not root.exists(join_rel(path, VERSION_FILE)):
            return None
        text, error = read_text(root, join_rel(path, VERSION_FILE))
        version = None
        facts: dict[str, str] = {}
        if text is not None:
            version = php_const(text, "VERSION")
            if version is None:
                error = f"{join_rel(path, VERSION_FILE)}: no VERSION constant found"
            minimum_php = php_const(text, "MINIMUM_PHP")
            if minimum_php:
                facts["required_php"] = minimum_php
        extensions = [
            *_projects(root, join_rel(path, "modules"), "module"),
            *_projects(root, join_rel(path, "themes"), "theme"),
        ]
        return self.installation(path, version, error, extensions, facts, VERSION_FILE)


def _info_version(root: SafeRoot, rel: str) -> str | None:
    """``version:`` of a ``.info.yml`` (``VERSION`` means "same as core": None)."""
    head = read_head(root, rel, 16384)
    m = _INFO_VERSION.search(head) if head else None
    if not m:
        return None
    value = clean(m.group(2))
    return None if value == "VERSION" else value


def _projects(root: SafeRoot, base: str, kind: str) -> list[Extension]:
    """``<base>/<name>/<name>.info.yml``, also one level deeper (``contrib/``, ``custom/``)."""
    found: list[Extension] = []
    for name in dirs(listdir_or_empty(root, base)):
        if len(found) > MAX_EXTENSIONS:
            break
        folder = join_rel(base, name)
        info = join_rel(folder, f"{name}.info.yml")
        if root.is_file(info):
            found.append(Extension(name, _info_version(root, info), kind))
            continue
        for sub in dirs(listdir_or_empty(root, folder)):
            info = join_rel(folder, sub, f"{sub}.info.yml")
            if root.is_file(info):
                found.append(Extension(sub, _info_version(root, info), kind))
    return found
