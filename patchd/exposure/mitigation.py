"""Whether a bundle patchd rolled out mitigates an advisory on an installation.

An advisory is ``mitigated`` on an installation when a bundle whose manifest names it
(``advisories``: the advisory's id, a CVE id or an alias) carries its fix there as of
the scan (the bundle's current result is ``patched`` or ``already-patched``, see
:mod:`patchd.ledger.current`) AND the scan's integrity check confirms the patched files:

- ``patched``: every file of the bundle's variant is in the scan's ``patched_files`` for
  that bundle (its content is the post-image patchd wrote);
- ``already-patched`` (the fix was there before patchd): every such file still differs
  from the registered release (it is in ``modified_files``): a file changed back to the
  release's content is vulnerable again.

A scan without a registered release for the installation's version checks no files, so
nothing can be confirmed: the advisory stays ``exposed`` and ``detail`` says why.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from patchd.advisories.model import Advisory
from patchd.bundle.manifest import Bundle
from patchd.ledger.current import fix_states
from patchd.ledger.db import Ledger
from patchd.ledger.exposure import Installed
from patchd.outcomes import Outcome


@dataclass(frozen=True)
class BundleFix:
    """What exposure needs of one bundle: its id, target and files per version."""

    bundle: Bundle
    states: dict[tuple[str, str], Outcome]

    @property
    def id(self) -> str:
        return self.bundle.id

    def files_for(self, version: str | None) -> tuple[str, ...]:
        """The files the bundle changes on ``version`` (all variants' when none fits):
        the manifest's list, else the files its diff names."""
        variant = self.bundle.variant_for(version)
        variants = [variant] if variant is not None else list(self.bundle.manifest.variants)
        files = {f.path for v in variants for f in v.files}
        if not files:
            files = {p.path for v in variants for p in self.bundle.patches(v)}
        return tuple(sorted(files))


class Mitigations:
    """The bundles that name advisories, and where each carries its fix."""

    def __init__(self, fixes: Iterable[BundleFix]) -> None:
        self._by_name: dict[str, list[BundleFix]] = defaultdict(list)
        for fix in fixes:
            for name in fix.bundle.manifest.advisories:
                self._by_name[name.upper()].append(fix)
        self._names = frozenset(self._by_name)

    @classmethod
    def load(
        cls, ledger: Ledger, bundles: Iterable[Bundle], *, as_of: datetime | None
    ) -> Mitigations:
        """From ``bundles`` and the ledger's results of their real runs up to ``as_of``."""
        return cls(
            BundleFix(b, fix_states(ledger, b.id, as_of=as_of))
            for b in bundles
            if b.manifest.advisories
        )

    def check(self, inst: Installed, component: str, advisory: Advisory) -> tuple[bool, str | None]:
        """(mitigated, detail): whether a bundle naming ``advisory`` carries the fix on
        ``inst`` with its files intact; ``detail`` says which bundle, or what failed."""
        failure: str | None = None
        seen: set[str] = set()
        if not self._names or not _upper(advisory.names) & self._names:
            return False, None
        for name in advisory.names:
            for fix in self._by_name.get(name.upper(), ()):
                if fix.id in seen or not _same_target(fix, inst.cms, component):
                    continue
                seen.add(fix.id)
                # NOTE: a classic TYPO3 site's result is recorded under its source folder.
                outcome = fix.states.get((inst.account, inst.path)) or fix.states.get(
                    (inst.account, inst.core_path)
                )
                if outcome is None:
                    continue
                broken = _broken_files(inst, fix, outcome)
                if not broken:
                    return True, f"bundle {fix.id} ({outcome.value}), patched files intact"
                failure = (
                    f"bundle {fix.id} was {outcome.value}, but the scan does not find its fix "
                    f"in {', '.join(broken)}"
                )
        return False, failure


@functools.lru_cache(maxsize=65536)
def _upper(names: frozenset[str]) -> frozenset[str]:
    return frozenset(n.upper() for n in names)


def _same_target(fix: BundleFix, cms: str, component: str) -> bool:
    m = fix.bundle.manifest
    return m.cms.lower() == cms.lower() and m.component.lower() == component.lower()


def _broken_files(inst: Installed, fix: BundleFix, outcome: Outcome) -> list[str]:
    files = fix.files_for(inst.version)
    if outcome is Outcome.PATCHED:
        intact = {path for path, bundle in inst.patched_files if bundle == fix.id}
    else:
        intact = set(inst.modified_files)
    return [f for f in files if f not in intact] if files else ["(no files in the manifest)"]
