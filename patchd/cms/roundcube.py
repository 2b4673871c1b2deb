"""Roundcube webmail: version from ``program/include/iniset.php``, plugins from ``plugins/``.

NOTE: stdlib-only; the host-side agent imports it.
"""

from __future__ import annotations

from patchd.cms._text import (
    MAX_EXTENSIONS,
    dirs,
    files,
    join_rel,
    json_field,
    listdir_or_empty,
    php_define,
    read_text,
)
from patchd.cms.interface import Detector, Extension, Installation
from patchd.safefs import SafeRoot

VERSION_FILE = "program/include/iniset.php"


class RoundcubeDetector(Detector):
    """Finds Roundcube by ``program/include/iniset.php`` (``define('RCMAIL_VERSION', ...)``)."""

    name = "roundcube"
    markers = (VERSION_FILE,)
    release_files = (VERSION_FILE,)
    owned_dirs = frozenset(
        {
            "program",
            "plugins",
            "skins",
            "config",
            "vendor",
            "bin",
            "installer",
            "SQL",
            "temp",
            "logs",
            "public_html",
        }
    )

    def detect(self, root: SafeRoot, path: str) -> Installation | None:
        """The Roundcube installation in ``path``, or None."""
        if not root.exists(join_rel(path, VERSION_FILE)):
            return None
        text, error = read_text(root, join_rel(path, VERSION_FILE))
        version = None
        if text is not None:
            version = php_define(text, "RCMAIL_VERSION")
            if version is None:
                error = f"{join_rel(path, VERSION_FILE)}: no RCMAIL_VERSION define found"
        facts: dict[str, str] = {}
        plugins = _plugins(root, join_rel(path, "plugins"))
        return self.installation(path, version, error, plugins, facts, VERSION_FILE)


def _plugins(root: SafeRoot, base: str) -> list[Extension]:
    """Plugins: ``plugins/<name>/<name>.php``; version from ``composer.json`` if any."""
    found: list[Extension] = []
    for name in dirs(listdir_or_empty(root, base)):
        if len(found) > MAX_EXTENSIONS:
            break
        listing = listdir_or_empty(root, join_rel(base, name))
        if f"{name}.php" not in files(listing, ".php"):
            continue
        version = None
        if any(e.name == "composer.json" and e.kind == "file" for e in listing):
            text, _ = read_text(root, join_rel(base, name, "composer.json"))
            version = json_field(text, "version")
        found.append(Extension(name, version, "plugin"))
    return found
