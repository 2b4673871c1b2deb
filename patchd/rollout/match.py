"""Match: which installations of a scan a bundle applies to, and with which variant.

An installation is a target when its CMS is the bundle's, its version (of the core, or of
the bundle's component when that is an extension/plugin) is in the bundle's affected
versions, and a variant covers it. ``not-affected`` is only for a known version outside
the affected set, another CMS, or an absent component.

NOTE (issue 13): a vulnerable installation is never ``not-affected``. A version in the
affected set without a variant is ``no-variant`` (dry-run-failed: update needed), and an
installation whose version cannot be read is ``version-unknown``: the host tries every
variant's dry run (forward and reverse) and uses the one that applies, if exactly one does.
"""

from __future__ import annotations

import dataclasses
import posixpath
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from patchd.bundle.manifest import Bundle, Variant
from patchd.engine.model import FilePatch
from patchd.versions import Version


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


#: What matching decided for one installation: a ``target`` (a variant covers its
#: version), ``not-affected``, ``no-variant`` (affected, no variant covers the version) or
#: ``version-unknown`` (the version is unreadable: every variant is a candidate).
MatchKind = Literal["target", "not-affected", "no-variant", "version-unknown"]


@dataclass(frozen=True, slots=True)
class Match:
    """The verdict of matching one installation against a bundle."""

    installation: Installed
    variant: Variant | None  # the variant for a target; None otherwise
    version: str | None  # the version that was compared (core or component)
    why: str  # the not-affected reason, or what matched
    path: str = ""  # where the files to patch are (relative to the account root)
    unsafe: str | None = None  # affected, but its files may not be touched (why)
    layout: str = ""  # "" or a key of LAYOUTS: the bundle's paths are rewritten for it
    kind: MatchKind = "not-affected"

    @property
    def affected(self) -> bool:
        """Known to be vulnerable: its version is in the affected set (with or without a
        variant). An unreadable version is neither affected nor not-affected."""
        return self.kind in ("target", "no-variant")

    @property
    def checked_on_host(self) -> bool:
        """Whether the host must dry-run it (a target, or an unreadable version)."""
        return self.kind in ("target", "version-unknown")


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
    return source_folder_of(inst.cms, inst.path, inst.facts)


def source_folder_of(cms: str, path: str, facts: Mapping[str, Any]) -> tuple[str, str | None]:
    """:func:`source_folder` of an installation at ``path`` with the detector's ``facts``."""
    if cms != "typo3":
        return path, None
    target = facts.get("typo3_src_target")
    if not target:
        return path, None
    if facts.get("typo3_src_outside") == "yes" or target.startswith("/"):
        return path, (
            f"typo3_src links outside the account to {target}; patch that shared source folder"
        )
    resolved = posixpath.normpath(posixpath.join(path, target))
    if resolved.startswith("../") or resolved == "..":
        return path, f"typo3_src target {target} leaves the account"
    return ("" if resolved == "." else resolved), None


def needs_extensions(bundle: Bundle) -> bool:
    """Whether matching ``bundle`` looks at installations' extensions (its component is
    an extension, not the core)."""
    return bundle.manifest.component not in ("core", "", bundle.manifest.cms)


def component_version(bundle: Bundle, inst: Installed) -> tuple[str | None, str | None, bool]:
    """(version compared, problem, component present) for the bundle's component in
    ``inst``; ``problem`` is set when the version is unknown or the component absent."""
    component = bundle.manifest.component
    if not needs_extensions(bundle):
        return inst.version, None if inst.version else "version unknown", True
    for ext in inst.extensions:
        if ext.name == component:
            return ext.version, None if ext.version else f"{component} version unknown", True
    return None, f"component {component} not installed", False


def no_variant_detail(version: str, fixed_in: str | None) -> str:
    """The ``detail`` of a ``no-variant`` result (support and the emails read it back)."""
    update = f"update to {fixed_in} or newer" if fixed_in else "update to the newest version"
    return f"no-variant: version {version} is affected and no variant covers it; {update}"


def version_unknown_detail(problem: str, fixed_in: str | None, tried: str = "") -> str:
    """The ``detail`` of a ``version-unknown`` result."""
    update = f"update to {fixed_in} or newer" if fixed_in else "update to the newest version"
    return f"version-unknown: {problem}{tried}; {update}"


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
        version, problem, present = component_version(self.bundle, inst)
        if not present:
            return Match(inst, None, version, f"{problem}", inst.path)
        if problem is not None or version is None or not _parses(version):
            problem = problem or f"version {version!r} unreadable"
            detail = f"{problem}" + (f": {inst.version_error}" if inst.version_error else "")
            path, unsafe = source_folder(inst)
            return Match(
                inst, None, version, detail, path, unsafe, layout_of(inst), "version-unknown"
            )
        variant, why = self._verdict(version)
        if variant is None:
            if self.bundle.is_affected(version):
                detail = no_variant_detail(version, m.fixed_in)
                return Match(inst, None, version, detail, inst.path, kind="no-variant")
            return Match(inst, None, version, why, inst.path)
        path, unsafe = source_folder(inst)
        if path != inst.path:
            why += f" (core files in {path}, used by {inst.path or 'the account root'})"
        return Match(inst, variant, version, why, path, unsafe, layout_of(inst), "target")


def _parses(version: str) -> bool:
    try:
        Version.parse(version)
    except ValueError:
        return False
    return True
