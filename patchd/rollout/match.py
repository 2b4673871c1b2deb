"""Match: which installations of a scan a bundle applies to, and with which variant.

An installation is a target when its CMS is the bundle's, its version (of the core, or of
the bundle's component when that is an extension/plugin) is in the bundle's affected
versions, and a variant covers it; everything else is ``not-affected`` with the reason
in words.
"""

from __future__ import annotations

from dataclasses import dataclass

from patchd.bundle.manifest import Bundle, Variant
from patchd.ledger.models import InstallationRecord


@dataclass(frozen=True)
class Match:
    """The verdict of matching one installation against a bundle."""

    installation: InstallationRecord
    variant: Variant | None  # None: not affected
    version: str | None  # the version that was compared (core or component)
    why: str  # the not-affected reason, or what matched

    @property
    def affected(self) -> bool:
        return self.variant is not None


def component_version(bundle: Bundle, inst: InstallationRecord) -> tuple[str | None, str | None]:
    """(version compared, problem) for the bundle's component in ``inst``."""
    component = bundle.manifest.component
    if component in ("core", "", bundle.manifest.cms):
        return inst.version, None if inst.version else "version unknown"
    for ext in inst.extensions:
        if ext.name == component:
            return ext.version, None if ext.version else f"{component} version unknown"
    return None, f"component {component} not installed"


def match_installation(bundle: Bundle, inst: InstallationRecord) -> Match:
    """Match one installation (see the module docstring)."""
    m = bundle.manifest
    if inst.cms != m.cms:
        return Match(inst, None, inst.version, f"not {m.cms} ({inst.cms})")
    version, problem = component_version(bundle, inst)
    if problem is not None:
        detail = f"{problem}" + (f": {inst.version_error}" if inst.version_error else "")
        return Match(inst, None, version, detail)
    if not bundle.is_affected(version):
        return Match(inst, None, version, f"version {version} not in affected {m.affected}")
    variant = bundle.variant_for(version)
    if variant is None:
        return Match(inst, None, version, f"no variant of the bundle covers version {version}")
    return Match(inst, variant, version, f"version {version} -> {variant.file}")
