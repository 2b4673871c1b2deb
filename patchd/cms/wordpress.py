"""WordPress: version from ``wp-includes/version.php``, plugins, must-use plugins, themes.

NOTE: stdlib-only; the host-side agent imports it.
"""

from __future__ import annotations

from patchd.cms._text import (
    MAX_EXTENSIONS,
    dirs,
    files,
    header_field,
    join_rel,
    listdir_or_empty,
    php_assign,
    read_head,
    read_text,
)
from patchd.cms.interface import Detector, Extension, Installation
from patchd.safefs import SafeRoot

VERSION_FILE = "wp-includes/version.php"


class WordPressDetector(Detector):
    """Finds WordPress by ``wp-includes/version.php`` or ``wp-load.php``.

    NOTE: ``wp-config.php`` alone is not enough: WordPress also reads it from the folder
    *above* the installation, so a lone config marks a parent, not an installation.
    """

    name = "wordpress"
    markers = (VERSION_FILE, "wp-load.php", "wp-config.php")
    release_files = (VERSION_FILE, "wp-load.php")
    # NOTE: a lone wp-config.php is normal (WordPress also reads it from the folder above).
    guard_markers = (VERSION_FILE, "wp-load.php")
    owned_dirs = frozenset({"wp-admin", "wp-includes", "wp-content"})

    def detect(self, root: SafeRoot, path: str) -> Installation | None:
        """The WordPress installation in ``path``, or None."""
        has_version_file = root.exists(join_rel(path, VERSION_FILE))
        if has_version_file:
            marker = VERSION_FILE
        elif root.exists(join_rel(path, "wp-load.php")):
            marker = "wp-load.php"
        else:
            return None
        text, error = read_text(root, join_rel(path, VERSION_FILE))
        version = None
        facts: dict[str, str] = {}
        if text is not None:
            version = php_assign(text, "wp_version")
            if version is None:
                error = f"{join_rel(path, VERSION_FILE)}: no $wp_version assignment found"
            required_php = php_assign(text, "required_php_version")
            if required_php:
                facts["required_php"] = required_php
        if root.exists(join_rel(path, ".maintenance")):
            # NOTE: WordPress's own updater is running; rollout must not race it.
            facts["maintenance"] = "yes"
        extensions = [
            *_plugins(root, join_rel(path, "wp-content/plugins")),
            *_mu_plugins(root, join_rel(path, "wp-content/mu-plugins")),
            *_themes(root, join_rel(path, "wp-content/themes")),
        ]
        return self.installation(path, version, error, extensions, facts, marker)


def _plugin_header(root: SafeRoot, rel: str) -> tuple[str, str | None] | None:
    """``(plugin name, version)`` when ``rel`` starts with a plugin header, else None."""
    head = read_head(root, rel)
    if head is None:
        return None
    name = header_field(head, "Plugin Name")
    if name is None:
        return None
    return name, header_field(head, "Version")


def _plugins(root: SafeRoot, base: str) -> list[Extension]:
    """Plugins in folders (``<slug>/*.php``) and single files (``<stem>.php``)."""
    found: list[Extension] = []
    entries = listdir_or_empty(root, base)
    for slug in dirs(entries):
        if len(found) > MAX_EXTENSIONS:
            break
        candidates = files(listdir_or_empty(root, join_rel(base, slug)), ".php")
        # NOTE: the main file is usually <slug>.php; look there first, then the rest.
        candidates.sort(key=lambda n: (n != f"{slug}.php", n))
        for fname in candidates:
            header = _plugin_header(root, join_rel(base, slug, fname))
            if header is not None:
                found.append(Extension(slug, header[1], "plugin"))
                break
    for fname in files(entries, ".php"):
        header = _plugin_header(root, join_rel(base, fname))
        if header is not None:
            found.append(Extension(fname[: -len(".php")], header[1], "plugin"))
    return found


def _mu_plugins(root: SafeRoot, base: str) -> list[Extension]:
    """Must-use plugins: every ``*.php`` directly in ``mu-plugins`` (WordPress loads all)."""
    found: list[Extension] = []
    for fname in files(listdir_or_empty(root, base), ".php")[: MAX_EXTENSIONS + 1]:
        head = read_head(root, join_rel(base, fname))
        version = header_field(head, "Version") if head else None
        found.append(Extension(fname[: -len(".php")], version, "mu-plugin"))
    return found


def _themes(root: SafeRoot, base: str) -> list[Extension]:
    """Themes: folders with a ``style.css`` carrying a ``Theme Name:`` header."""
    found: list[Extension] = []
    for slug in dirs(listdir_or_empty(root, base))[: MAX_EXTENSIONS + 1]:
        head = read_head(root, join_rel(base, slug, "style.css"))
        if head is None or header_field(head, "Theme Name") is None:
            continue
        found.append(Extension(slug, header_field(head, "Version"), "theme"))
    return found
