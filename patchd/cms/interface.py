"""What a detector finds (Installation, Extension), and the Detector seam itself.

An :class:`Installation` is one CMS found in one folder of an account; its ``path`` is
relative to the account root (``""`` for the root itself). Everything a detector reports
is read from files as text: customer code is never executed.

NOTE: stdlib-only; the host-side agent imports it and ships results as JSON.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from patchd.safefs import SafeRoot, join_rel


@dataclass(frozen=True)
class Extension:
    """A plugin, theme, module or extension of an installation.

    ``kind`` is one of ``plugin``, ``mu-plugin``, ``theme``, ``extension``,
    ``system-extension``, ``module``, ``component`` (open-ended: detectors may add words).
    """

    name: str
    version: str | None
    kind: str

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict with the stable keys ``name``, ``version``, ``kind``."""
        return {"name": self.name, "version": self.version, "kind": self.kind}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Extension:
        """Rebuild from :meth:`to_json` output; ``ValueError`` if a key is wrong."""
        return cls(
            name=_req_str(data, "name"),
            version=_opt_str(data, "version"),
            kind=_req_str(data, "kind"),
        )


@dataclass(frozen=True)
class Installation:
    """One CMS installation found in an account.

    ``version`` is None when it could not be read; ``version_error`` then says why.
    ``facts`` holds detector-specific strings (``required_php``, ``typo3_src_target``...).
    ``marker`` is the relative marker (below ``path``) that identified the installation.
    """

    path: str
    cms: str
    version: str | None
    version_error: str | None
    extensions: tuple[Extension, ...] = ()
    facts: dict[str, str] = field(default_factory=dict, hash=False)
    marker: str = ""

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (extensions as a list of dicts)."""
        return {
            "path": self.path,
            "cms": self.cms,
            "version": self.version,
            "version_error": self.version_error,
            "extensions": [e.to_json() for e in self.extensions],
            "facts": dict(self.facts),
            "marker": self.marker,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Installation:
        """Rebuild from :meth:`to_json` output; ``ValueError`` if a key is wrong."""
        exts = data.get("extensions", [])
        facts = data.get("facts", {})
        if not isinstance(exts, list) or not isinstance(facts, dict):
            raise ValueError("installation: extensions must be a list, facts a mapping")
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in facts.items()):
            raise ValueError("installation: facts must map str to str")
        return cls(
            path=_req_str(data, "path"),
            cms=_req_str(data, "cms"),
            version=_opt_str(data, "version"),
            version_error=_opt_str(data, "version_error"),
            extensions=tuple(Extension.from_json(e) for e in exts),
            facts=dict(facts),
            marker=str(data.get("marker", "")),
        )


@dataclass(frozen=True)
class ScanProblem:
    """A folder the search could not look into, or a detector could not read."""

    path: str
    message: str

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict with ``path`` and ``message``."""
        return {"path": self.path, "message": self.message}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ScanProblem:
        """Rebuild from :meth:`to_json` output."""
        return cls(path=_req_str(data, "path"), message=_req_str(data, "message"))


class Detector(ABC):
    """Recognises one CMS in a folder and reads its version, extensions and facts.

    ``markers`` are paths relative to the candidate folder; the search calls
    :meth:`detect` only when the first component of one of them is in the folder's
    listing. ``owned_dirs`` are the installation's own folders: the search does not
    descend into them once the installation is found (other subfolders may hold nested
    installations and are still searched).
    """

    name: str
    markers: tuple[str, ...]
    owned_dirs: frozenset[str] = frozenset()
    #: Markers that, present in a folder :meth:`detect` finds nothing in, make the folder
    #: ``unrecognised`` (the completeness guard); default: every marker.
    guard_markers: tuple[str, ...] | None = None
    #: The files of a release tree (paths from its root) that :meth:`detect` reads to tell
    #: the CMS and its version, besides :attr:`markers`: a backport release is extracted
    #: with only these and the files its patch touches.
    release_files: tuple[str, ...] = ()

    @abstractmethod
    def detect(self, root: SafeRoot, path: str) -> Installation | None:
        """The installation in folder ``path`` (relative to ``root``), or None."""

    def not_an_installation(self, root: SafeRoot, path: str) -> str | None:
        """Why folder ``path`` holds a marker but is, knowingly, no installation (a
        shared source folder, a composer project's docroot); None when not known."""
        return None

    def unrecognised(self, root: SafeRoot, path: str) -> str | None:
        """The completeness guard for a folder :meth:`detect` returned None for: the
        marker found there when the folder is not knowingly something else, else None.

        NOTE (issue 19): a marker file without an installation is a detector gap until
        shown otherwise; the scan reports it instead of passing over it silently.
        """
        for marker in self.markers if self.guard_markers is None else self.guard_markers:
            if root.exists(join_rel(path, marker)):
                return None if self.not_an_installation(root, path) else marker
        return None

    def installation(
        self,
        path: str,
        version: str | None,
        error: str | None,
        extensions: Sequence[Extension],
        facts: dict[str, str],
        marker: str,
    ) -> Installation:
        """An :class:`Installation` of this CMS; at most ``MAX_EXTENSIONS`` extensions
        (a customer tree may hold any number), marking ``extensions_truncated``."""
        from patchd.cms._text import MAX_EXTENSIONS

        if len(extensions) > MAX_EXTENSIONS:
            facts["extensions_truncated"] = "yes"
        return Installation(
            path=path,
            cms=self.name,
            version=version,
            version_error=None if version else error,
            extensions=tuple(extensions[:MAX_EXTENSIONS]),
            facts=facts,
            marker=marker,
        )

    def project_root_for_docroot(self, root: SafeRoot, docroot: str) -> str | None:
        """A folder above ``docroot`` holding this CMS's installation (composer layouts).

        The search asks this for every configured docroot, because a search that starts
        at ``public/`` never sees the project root holding ``vendor/``. Default: None.
        """
        return None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"


def _req_str(data: Mapping[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str):
        raise ValueError(f"{key}: expected a string, got {value!r}")
    return value


def _opt_str(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        raise ValueError(f"{key}: expected a string or null, got {value!r}")
    return value
