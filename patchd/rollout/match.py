"""Match: which installations of a scan a bundle applies to, and with which variant.

An installation is a target when its CMS is the bundle's, its version (of the core, or of
the bundle's component when that is an extension/plugin) is in the bundle's affected
versions, and a variant covers it; everything else is ``not-affected`` with the reason
in words.
"""

from __future__ import annotations

import dataclasses
import posixpath
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from patchd.bundle.manifest import Bundle, Variant
from patchd.engine.model import FilePatch


class InstalledExtension(Protocol):
    """What matching reads of an extension of an installation."""

    @property
    def name(self) -> str: ...

    @property
    def version(self) -> str | None: ...


class Installed(Protocol):
    """What matching reads of an installation: a scan's
    :class:`~patchd.ledger.models.InstallationRecord`, or the lean
    :class:`~patchd.ledger.scans.MatchRow` a rollout reads."""

    @property
    def path(self) -> str: ...

    @property
    def cms(self) -> str: ...

    @property
    def version(self) -> str | None: ...

    @property
    def version_error(self) -> str | None: ...

    @property
    def facts(self) -> Mapping[str, Any]: ...

    @property
    def extensions(self) -> Sequence[InstalledExtension]: ...


@dataclass(frozen=True, slots=True)
class Match:
    """The verdict of matching one installation against a bundle."""

    installation: Installed
    variant: Variant | None  # None: not affected
    version: str | None  # the version that was compared (core or component)
    why: str  # the not-affected reason, or what matched
    path: str = ""  # where the files to patch are (relative to the account root)
    unsafe: str | None = None  # affected, but its files may not be touched (why)
    layout: str = ""  # "" or a key of LAYOUTS: the bundle's paths are rewritten for it

    @property
    def affected(self) -> bool:
        return self.variant is not None


_SYSEXT = re.compile(r"^typo3/sysext/([a-z0-9_]+)/")


def _typo3_composer(path: str) -> str:
    """``typo3/sysext/core/X`` (release tarball) -> ``vendor/typo3/cms-core/X`` (composer)."""
    return _SYSEXT.sub(lambda m: f"vendor/typo3/cms-{m.group(1).replace('_', '-')}/", path)


#: Installation layouts whose files sit elsewhere than in the release tarball the bundle
#: was built from: layout -> path rewrite.
LAYOUTS = {"typo3-composer": _typo3_composer}


def layout_of(inst: Installed) -> str:
    """The key of :data:`LAYOUTS` for ``inst``, or "" when the tarball's paths apply."""
    if inst.cms == "typo3" and inst.facts.get("layout") == "composer":
        return "typo3-composer"
    return ""


def for_layout(patches: list[FilePatch], layout: str) -> list[FilePatch]:
    """``patches`` with their paths rewritten for ``layout``."""
    if not layout:
        return patches
    rewrite = LAYOUTS[layout]
    return [
        dataclasses.replace(
            fp,
            old_path=None if fp.old_path is None else rewrite(fp.old_path),
            new_path=None if fp.new_path is None else rewrite(fp.new_path),
        )
        for fp in patches
    ]


def source_folder(inst: Installed) -> tuple[str, str | None]:
    """Where an installation's core files really are: (path, problem).

    A classic TYPO3 site reaches its core through ``typo3_src``, a symlink to a source
    folder that several sites may share. patchd never writes through symlinks, so the
    target is the source folder itself when it lies inside the account; a source folder
    outside the account (the hoster's shared sources) is not the customer's to patch.
    """
    if inst.cms != "typo3":
        return inst.path, None
    facts = inst.facts
    target = facts.get("typo3_src_target")
    if not target:
        return inst.path, None
    if facts.get("typo3_src_outside") == "yes" or target.startswith("/"):
        return inst.path, (
            f"typo3_src links outside the account to {target}; patch that shared source folder"
        )
    resolved = posixpath.normpath(posixpath.join(inst.path, target))
    if resolved.startswith("../") or resolved == "..":
        return inst.path, f"typo3_src target {target} leaves the account"
    return ("" if resolved == "." else resolved), None


def needs_extensions(bundle: Bundle) -> bool:
    """Whether matching ``bundle`` looks at installations' extensions (its component is
    an extension, not the core)."""
    return bundle.manifest.component not in ("core", "", bundle.manifest.cms)


def component_version(bundle: Bundle, inst: Installed) -> tuple[str | None, str | None]:
    """(version compared, problem) for the bundle's component in ``inst``."""
    component = bundle.manifest.component
    if not needs_extensions(bundle):
        return inst.version, None if inst.version else "version unknown"
    for ext in inst.extensions:
        if ext.name == component:
            return ext.version, None if ext.version else f"{component} version unknown"
    return None, f"component {component} not installed"


def match_installation(bundle: Bundle, inst: Installed) -> Match:
    """Match one installation (see the module docstring)."""
    return Matcher(bundle).match(inst)


class Matcher:
    """:func:`match_installation` for many installations of one bundle.

    NOTE: whether a version is affected and which variant covers it is worked out once
    per version, not per installation (50,000 installations have a few dozen versions).
    """

    def __init__(self, bundle: Bundle) -> None:
        self.bundle = bundle
        self._verdicts: dict[str, tuple[Variant | None, str]] = {}

    def _verdict(self, version: str) -> tuple[Variant | None, str]:
        """(variant covering ``version`` or None, why) for a known version."""
        known = self._verdicts.get(version)
        if known is None:
            bundle = self.bundle
            if not bundle.is_affected(version):
                known = (None, f"version {version} not in affected {bundle.manifest.affected}")
            else:
                variant = bundle.variant_for(version)
                if variant is None:
                    known = (None, f"no variant of the bundle covers version {version}")
                else:
                    known = (variant, f"version {version} -> {variant.file}")
            self._verdicts[version] = known
        return known

    def match(self, inst: Installed) -> Match:
        """Match one installation (see the module docstring)."""
        m = self.bundle.manifest
        if inst.cms != m.cms:
            return Match(inst, None, inst.version, f"not {m.cms} ({inst.cms})", inst.path)
        version, problem = component_version(self.bundle, inst)
        if problem is not None or version is None:
            detail = f"{problem}" + (f": {inst.version_error}" if inst.version_error else "")
            return Match(inst, None, version, detail, inst.path)
        variant, why = self._verdict(version)
        if variant is None:
            return Match(inst, None, version, why, inst.path)
        path, unsafe = source_folder(inst)
        if path != inst.path:
            why += f" (core files in {path}, used by {inst.path or 'the account root'})"
        return Match(inst, variant, version, why, path, unsafe, layout_of(inst))
