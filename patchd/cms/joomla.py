"""Joomla: version from ``libraries/src/Version.php`` (or the files manifest), components.

NOTE: stdlib-only; the host-side agent imports it.
"""

from __future__ import annotations

import re

from patchd.cms._text import (
    MAX_EXTENSIONS,
    clean,
    dirs,
    files,
    join_rel,
    listdir_or_empty,
    php_const,
    read_head,
    read_text,
)
from patchd.cms.interface import Detector, Extension, Installation
from patchd.safefs import SafeRoot

VERSION_FILE = "libraries/src/Version.php"
MANIFEST = "administrator/manifests/files/joomla.xml"

_XML_VERSION = re.compile(r"<version>\s*([^<\s]{1,64})\s*</version>")


class JoomlaDetector(Detector):
    """Finds Joomla by ``libraries/src/Version.php`` or its ``joomla.xml`` files manifest."""

    name = "joomla"
    markers = (VERSION_FILE, MANIFEST)
    release_files = (VERSION_FILE, MANIFEST)
    owned_dirs = frozenset(
        {
            "administrator",
            "api",
            "bin",
            "cache",
            "cli",
            "components",
            "images",
            "includes",
            "installation",
            "language",
            "layouts",
            "libraries",
            "media",
            "modules",
            "plugins",
            "templates",
            "tmp",
            "logs",
        }
    )

    def detect(self, root: SafeRoot, path: str) -> Installation | None:
        """The Joomla installation in ``path``, or None."""
        has_version = root.exists(join_rel(path, VERSION_FILE))
        has_manifest = root.exists(join_rel(path, MANIFEST))
        if not has_version and not has_manifest:
            return None
        version, error = _version(root, path) if has_version else (None, None)
        if version is None and has_manifest:
            text, manifest_error = read_text(root, join_rel(path, MANIFEST))
            m = _XML_VERSION.search(text) if text is not None else None
            if m:
                version = clean(m.group(1))
            else:
                error = (
                    error
                    or manifest_error
                    or f"{join_rel(path, MANIFEST)}: no <version> element found"
                )
        facts: dict[str, str] = {}
        components = _components(root, join_rel(path, "administrator/components"))
        marker = VERSION_FILE if has_version else MANIFEST
        return self.installation(path, version, error, components, facts, marker)


def _version(root: SafeRoot, path: str) -> tuple[str | None, str | None]:
    """``MAJOR.MINOR.PATCH[-EXTRA]`` from the Version class constants."""
    text, error = read_text(root, join_rel(path, VERSION_FILE))
    if text is None:
        return None, error
    parts = [php_const(text, f"{n}_VERSION") for n in ("MAJOR", "MINOR", "PATCH")]
    if any(p is None or not p.isdigit() for p in parts):
        return (
            None,
            f"{join_rel(path, VERSION_FILE)}: MAJOR/MINOR/PATCH_VERSION constants not found",
        )
    version = ".".join(p for p in parts if p is not None)
    extra = php_const(text, "EXTRA_VERSION")
    if extra:
        version = f"{version}-{extra}"
    return version, None


def _components(root: SafeRoot, base: str) -> list[Extension]:
    """Components: ``administrator/components/com_*/<manifest>.xml`` ``<version>``."""
    found: list[Extension] = []
    for name in dirs(listdir_or_empty(root, base)):
        if len(found) > MAX_EXTENSIONS:
            break
        if not name.startswith("com_"):
            continue
        xmls = files(listdir_or_empty(root, join_rel(base, name)), ".xml")
        # NOTE: the manifest is usually <name without com_>.xml; prefer it.
        xmls.sort(key=lambda n: (n != f"{name[4:]}.xml", n))
        version = None
        for xml in xmls:
            head = read_head(root, join_rel(base, name, xml), 16384)
            if head and "<extension" in head:
                m = _XML_VERSION.search(head)
                version = clean(m.group(1)) if m else None
                break
        found.append(Extension(name, version, "component"))
    return found
