"""TYPO3: classic (``typo3_src`` symlink) and composer (``vendor/typo3/cms-core``) layouts.

Classic installations usually link ``typo3_src`` to a source folder, often one shared by
many accounts outside the account root (``typo3_src -> /var/www/shared/typo3_src-12.4.10``).
Such a link is never followed: the installation is reported with the link target as a
fact and the version taken from the target folder's name. Composer installations are
reported at the project root (the folder holding ``vendor/``), not at their ``public/``
docroot. System extensions (``typo3/sysext``, ``vendor/typo3/cms-*``) are core, not
extensions.

NOTE: stdlib-only; the host-side agent imports it.
"""

from __future__ import annotations

import json
import posixpath
import re
import stat
from typing import Any

from patchd.cms._text import (
    MAX_EXTENSIONS,
    clean,
    dirs,
    join_rel,
    json_field,
    listdir_or_empty,
    php_const,
    php_define,
    read_text,
)
from patchd.cms.interface import Detector, Extension, Installation
from patchd.errors import UnsafePathError
from patchd.safefs import SafeRoot, split_relpath

VERSION_FILE = "sysext/core/Classes/Information/Typo3Version.php"  # below typo3/
OLD_VERSION_FILE = "sysext/core/Classes/Core/SystemEnvironmentBuilder.php"  # TYPO3 <= 9
COMPOSER_CORE = "vendor/typo3/cms-core"
COMPOSER_VERSION_FILE = f"{COMPOSER_CORE}/Classes/Information/Typo3Version.php"

_SRC_NAME = re.compile(r"^typo3_src-(\d+\.\d+\.\d+(?:[-.]?(?:alpha|beta|rc|dev)\d*)?)$", re.I)
#: A shared source folder's name: ``typo3_src``, optionally with a version and any suffix.
_SRC_FOLDER = re.compile(r"^typo3_src(?:[-_.].*)?$", re.I)
_EMCONF_VERSION = re.compile(r"""['"]version['"]\s*=>\s*(['"])([^'"\r\n]{1,64})\1""")


class Typo3Detector(Detector):
    """Finds TYPO3 by its core folder, a ``typo3_src`` link, ``typo3conf`` or composer core."""

    name = "typo3"
    markers = (
        f"typo3/{VERSION_FILE}",
        "typo3_src",
        "typo3conf/LocalConfiguration.php",
        "typo3conf/ext",
        COMPOSER_VERSION_FILE,
    )
    owned_dirs = frozenset(
        {"typo3", "typo3_src", "typo3conf", "typo3temp", "fileadmin", "uploads", "vendor"}
    )
    release_files = (
        f"typo3/{VERSION_FILE}",
        f"typo3/{OLD_VERSION_FILE}",
        COMPOSER_VERSION_FILE,
        "composer.json",
        "composer.lock",
    )

    def detect(self, root: SafeRoot, path: str) -> Installation | None:
        """The TYPO3 installation in ``path``, or None."""
        if root.is_dir(join_rel(path, COMPOSER_CORE)):
            return self._composer(root, path)
        if path and self._is_composer_docroot(root, path):
            return None  # the docroot of a composer project, reported at the project root
        if _is_source_folder(root, path):
            return None
        return self._classic(root, path)

    def not_an_installation(self, root: SafeRoot, path: str) -> str | None:
        """A shared ``typo3_src*`` folder, or the web-dir of a composer project."""
        if _is_source_folder(root, path):
            return "a shared TYPO3 source folder (the sites linking to it are reported)"
        if path and self._is_composer_docroot(root, path):
            return "the docroot of the composer project in the folder above"
        return None

    @staticmethod
    def _is_composer_docroot(root: SafeRoot, path: str) -> bool:
        """Whether ``path`` is the web-dir of a composer project in its parent folder.

        NOTE (issue 19): only the project's configured web-dir (``public`` by default) is
        its docroot. Any other subfolder of a composer project may hold an installation
        of its own (a classic TYPO3 in ``html/blog`` below a composer project in ``html``),
        which must be reported like any other.
        """
        parent = posixpath.dirname(path)
        if not root.is_dir(join_rel(parent, COMPOSER_CORE)):
            return False
        return path == join_rel(parent, _web_dir(root, parent))

    def project_root_for_docroot(self, root: SafeRoot, docroot: str) -> str | None:
        """The composer project root one level above ``docroot`` (``public/``), if any."""
        if not docroot:
            return None
        parent = posixpath.dirname(docroot.rstrip("/"))
        return parent if root.is_dir(join_rel(parent, COMPOSER_CORE)) else None

    # -- layouts ----------------------------------------------------------------------

    def _classic(self, root: SafeRoot, path: str) -> Installation | None:
        src = join_rel(path, "typo3_src")
        core = join_rel(path, "typo3")
        src_kind = _kind(root, src)
        core_kind = _kind(root, core)
        core_is_real = core_kind == "dir" and root.is_dir(join_rel(core, "sysext/core"))
        has_conf = root.exists(join_rel(path, "typo3conf/LocalConfiguration.php")) or (
            root.is_dir(join_rel(path, "typo3conf/ext"))
        )
        if src_kind is None and not core_is_real and not has_conf:
            return None
        marker = (
            "typo3_src"
            if src_kind is not None
            else f"typo3/{VERSION_FILE}"
            if core_is_real
            else "typo3conf"
        )
        facts: dict[str, str] = {"layout": "classic"}
        version: str | None = None
        error: str | None = None
        core_dir: str | None = None
        if src_kind == "symlink":
            core_dir, version, error = _follow_src_link(root, src, "typo3_src", facts)
            if core_dir is not None:
                core_dir = join_rel(core_dir, "typo3")
        elif src_kind == "dir":
            core_dir = join_rel(src, "typo3")
        elif core_kind == "symlink":
            core_dir, version, error = _follow_src_link(root, core, "typo3", facts)
        elif core_kind == "dir":
            core_dir = core
        else:
            error = "no TYPO3 core found (neither typo3_src nor typo3/ is present)"
        if core_is_real:
            # NOTE: a real typo3/ core folder is what the site runs, whatever typo3_src says.
            core_dir = core
        if core_dir is not None:
            read_version, read_error = _core_version(root, core_dir)
            if read_version is not None or version is None:
                version, error = read_version, read_error
                facts.pop("version_source", None)
        extensions = _ext_folder(root, join_rel(path, "typo3conf/ext"))
        return _installation(path, version, error, extensions, facts, marker)

    def _composer(self, root: SafeRoot, path: str) -> Installation:
        facts: dict[str, str] = {"layout": "composer"}
        text, error = read_text(root, join_rel(path, COMPOSER_VERSION_FILE))
        version = None
        if text is not None:
            version = php_const(text, "VERSION")
            if version is None:
                error = f"{join_rel(path, COMPOSER_VERSION_FILE)}: no VERSION constant found"
        web_dir = _web_dir(root, path)
        facts["web_dir"] = web_dir
        extensions = _vendor_extensions(root, join_rel(path, "vendor"))
        extensions += _lock_extensions(root, join_rel(path, "composer.lock"))
        # NOTE: TYPO3 <= 11 in composer mode may still hold extensions in typo3conf/ext.
        extensions += _ext_folder(root, join_rel(path, web_dir, "typo3conf/ext"))
        return _installation(path, version, error, extensions, facts, COMPOSER_VERSION_FILE)


def _is_source_folder(root: SafeRoot, path: str) -> bool:
    """Whether ``path`` is a shared ``typo3_src-X.Y.Z`` source folder, not a site.

    NOTE: classic sites reach their core through a ``typo3_src`` link to such a folder;
    the site is reported (with the link target), the folder itself is not a second
    installation. A folder of that name with its own ``typo3conf`` is a site after all.
    Hosters name these folders with suffixes too (``typo3_src-12.4.9-2``,
    ``typo3_src-12.4.9-patched``): the ``typo3_src`` prefix is what counts.
    """
    if not path or not _SRC_FOLDER.match(posixpath.basename(path)):
        return False
    return _kind(root, join_rel(path, "typo3conf")) is None


def _lock_extensions(root: SafeRoot, lock: str) -> list[Extension]:
    """Extensions listed in ``composer.lock`` (``type: typo3-cms-extension``).

    NOTE: composer installs path-repository packages (``packages/*``) as links or copies
    in ``vendor/``; the lock file names every installed package with its version either
    way, so it also covers packages whose ``vendor/`` entry is missing or points outside.
    """
    data = _load_json(root, lock)
    packages = data.get("packages")
    found: list[Extension] = []
    if not isinstance(packages, list):
        return found
    for pkg in packages[: MAX_EXTENSIONS + 1]:
        if not isinstance(pkg, dict) or pkg.get("type") != "typo3-cms-extension":
            continue
        name = pkg.get("name")
        if not isinstance(name, str) or "/" not in name:
            continue
        key = _typo3_extra(pkg).get("extension-key")
        ext = clean(key) if isinstance(key, str) else None
        version = pkg.get("version")
        # NOTE: no str.removeprefix: the agent runs this on the hosts' Python 3.8.
        version = (
            clean(version[1:] if version.startswith("v") else version)
            if isinstance(version, str)
            else None
        )
        found.append(
            Extension(ext or name.split("/", 1)[1].replace("-", "_"), version, "extension")
        )
    return found


def _installation(
    path: str,
    version: str | None,
    error: str | None,
    extensions: list[Extension],
    facts: dict[str, str],
    marker: str,
) -> Installation:
    unique: dict[str, Extension] = {}
    for ext in extensions:
        unique.setdefault(ext.name, ext)
    if len(unique) > MAX_EXTENSIONS:
        facts["extensions_truncated"] = "yes"
    return Installation(
        path=path,
        cms="typo3",
        version=version,
        version_error=None if version else (error or "version not found"),
        extensions=tuple(sorted(unique.values(), key=lambda e: e.name)[:MAX_EXTENSIONS]),
        facts=facts,
        marker=marker,
    )


def _kind(root: SafeRoot, rel: str) -> str | None:
    """``"dir"``, ``"symlink"``, ``"other"`` or None (missing) without following links."""
    try:
        mode = root.lstat(rel).st_mode
    except (OSError, UnsafePathError):
        return None
    if stat.S_ISLNK(mode):
        return "symlink"
    return "dir" if stat.S_ISDIR(mode) else "other"


def _follow_src_link(
    root: SafeRoot, link: str, label: str, facts: dict[str, str]
) -> tuple[str | None, str | None, str | None]:
    """Judge the ``typo3_src`` (or ``typo3``) link: ``(inside folder, version, error)``.

    Records the target in ``facts``. A target outside the root is never followed; the
    version then comes from a ``typo3_src-X.Y.Z`` folder name on the target, if any.
    """
    try:
        target = root.readlink(link)
        inside = root.resolve_symlink_inside(link)
    except (OSError, UnsafePathError) as exc:
        return None, None, f"{label}: unreadable symlink ({exc})"
    facts[f"{label}_target"] = clean(target, 1024) or ""
    facts[f"{label}_outside"] = "no" if inside is not None else "yes"
    named = _version_from_target(target)
    if inside is not None:
        return inside, named, None if named else f"{label}: version not found"
    if named:
        facts["version_source"] = f"{label} link target name"
        return None, named, None
    return (
        None,
        None,
        (
            f"{label} points outside the account ({clean(target, 200)}); not followed, and the "
            "target's name does not carry a version"
        ),
    )


def _version_from_target(target: str) -> str | None:
    """``12.4.10`` from ``/var/www/shared/typo3_src-12.4.10`` (or ``.../typo3_src-X/typo3``)."""
    parts = [p for p in target.split("/") if p not in ("", ".")]
    if parts and parts[-1] == "typo3":
        parts = parts[:-1]
    if not parts:
        return None
    m = _SRC_NAME.match(parts[-1])
    return m.group(1) if m else None


def _core_version(root: SafeRoot, typo3_dir: str) -> tuple[str | None, str | None]:
    """The core version from ``Typo3Version.php``, falling back to the pre-10 define."""
    text, error = read_text(root, join_rel(typo3_dir, VERSION_FILE))
    if text is not None:
        version = php_const(text, "VERSION")
        if version:
            return version, None
        error = f"{join_rel(typo3_dir, VERSION_FILE)}: no VERSION constant found"
    old, _old_error = read_text(root, join_rel(typo3_dir, OLD_VERSION_FILE))
    if old is not None:
        version = php_define(old, "TYPO3_version")
        if version:
            return version, None
    return None, error


def _ext_version(root: SafeRoot, ext_dir: str) -> str | None:
    """An extension's version from ``ext_emconf.php``, else from ``composer.json``."""
    text, _ = read_text(root, join_rel(ext_dir, "ext_emconf.php"))
    if text is not None:
        m = _EMCONF_VERSION.search(text)
        if m:
            return clean(m.group(2))
    composer, _ = read_text(root, join_rel(ext_dir, "composer.json"))
    return json_field(composer, "version")


def _ext_folder(root: SafeRoot, base: str) -> list[Extension]:
    """Extensions in ``typo3conf/ext/<key>``; links are followed only inside the account."""
    found: list[Extension] = []
    for entry in listdir_or_empty(root, base)[: MAX_EXTENSIONS + 1]:
        ext_dir: str | None = None
        if entry.kind == "dir":
            ext_dir = join_rel(base, entry.name)
        elif entry.kind == "symlink":
            try:
                inside = root.resolve_symlink_inside(join_rel(base, entry.name))
            except UnsafePathError:
                inside = None
            if inside is not None and root.is_dir(inside):
                ext_dir = inside
        else:
            continue
        version = _ext_version(root, ext_dir) if ext_dir is not None else None
        found.append(Extension(entry.name, version, "extension"))
    return found


def _load_json(root: SafeRoot, rel: str) -> dict[str, Any]:
    text, _ = read_text(root, rel)
    if not text:
        return {}
    try:
        data = json.loads(text)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _typo3_extra(data: dict[str, Any]) -> dict[str, Any]:
    extra = data.get("extra")
    cms = extra.get("typo3/cms") if isinstance(extra, dict) else None
    return cms if isinstance(cms, dict) else {}


def _web_dir(root: SafeRoot, path: str) -> str:
    """The composer project's docroot (``extra.typo3/cms.web-dir``, default ``public``)."""
    web = _typo3_extra(_load_json(root, join_rel(path, "composer.json"))).get("web-dir")
    if isinstance(web, str):
        try:
            return "/".join(split_relpath(web)) or "public"
        except UnsafePathError:
            pass
    return "public"


def _vendor_extensions(root: SafeRoot, vendor: str) -> list[Extension]:
    """Third-party extensions installed by composer: ``vendor/<v>/<p>/ext_emconf.php``."""
    found: list[Extension] = []
    for vendor_name in dirs(listdir_or_empty(root, vendor)):
        for entry in listdir_or_empty(root, join_rel(vendor, vendor_name)):
            if len(found) > MAX_EXTENSIONS:
                return found
            if vendor_name == "typo3" and entry.name.startswith("cms-"):
                continue  # system extensions are core
            pkg = join_rel(vendor, vendor_name, entry.name)
            if entry.kind == "symlink":  # composer path repositories link local packages
                try:
                    inside = root.resolve_symlink_inside(pkg)
                except UnsafePathError:
                    inside = None
                if inside is None:
                    continue
                pkg = inside
            elif entry.kind != "dir":
                continue
            if not root.is_file(join_rel(pkg, "ext_emconf.php")):
                continue
            composer = _load_json(root, join_rel(pkg, "composer.json"))
            if composer.get("type") == "typo3-cms-framework":
                continue
            key = _typo3_extra(composer).get("extension-key")
            name = clean(key) if isinstance(key, str) else None
            found.append(
                Extension(
                    name or entry.name.replace("-", "_"), _ext_version(root, pkg), "extension"
                )
            )
    return found
