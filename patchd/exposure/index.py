"""Advisories indexed by what they are for, with the matching of versions cached.

A fleet has few distinct (CMS, component, version) triples and many installations; each
triple is matched against its advisories once.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Iterable, Sequence

from patchd.advisories.constraints import compare_key, normalize
from patchd.advisories.model import SEVERITIES, Advisory

#: Extension kinds that count as the advisory's kind (a WordPress mu-plugin is a plugin).
_KIN = {"plugin": {"plugin", "mu-plugin"}, "theme": {"theme"}}

Key = tuple[str, str]
Hit = tuple[Advisory, str | None, str]
"""An advisory that affects a version, the version that fixes it, and its severity (the
highest of the advisories listed once with it)."""


class AdvisoryIndex:
    """Advisories by (cms, component) (lower case), core and extensions apart."""

    def __init__(self, advisories: Iterable[Advisory]) -> None:
        self._by_key: dict[Key, list[Advisory]] = defaultdict(list)
        self.count = 0
        for a in advisories:
            if a.target is None:
                continue
            key = (a.target.cms.lower(), a.target.component.lower())
            self._by_key[key].append(a)
            self.count += 1
        self._exact = frozenset(self._by_key)
        # NOTE: only components with an advisory in two sources (a shared CVE or alias)
        # need listing each advisory once; the rest skip that bookkeeping.
        self._shared = {key for key, found in self._by_key.items() if _shares_a_name(found)}

    def knows(self, cms: str, component: str) -> bool:
        """Whether any advisory is for ``component`` of ``cms`` (cheap, asked first)."""
        return (cms, component) in self._exact or (cms.lower(), component.lower()) in self._by_key

    @functools.lru_cache(maxsize=65536)  # noqa: B019 - one index per command, freed with it
    def candidates(self, cms: str, component: str, kind: str | None) -> list[Advisory]:
        """The advisories for ``component`` of ``cms`` (``kind`` None: the core)."""
        found = self._by_key.get((cms.lower(), component.lower()), [])
        if kind is None:
            return [a for a in found if a.target is not None and a.target.kind is None]
        return [a for a in found if _kind_fits(a, kind)]

    @functools.lru_cache(maxsize=65536)  # noqa: B019 - one index per command, freed with it
    def affecting(self, cms: str, component: str, kind: str | None, version: str) -> list[Hit]:
        """The advisories whose affected versions hold ``version``; ``ValueError`` when
        ``version`` is not a version composer can read."""
        candidates = self.candidates(cms, component, kind)
        if not candidates:
            return []
        normalized = normalize(version)
        key = compare_key(normalized)
        hits: list[tuple[Advisory, str | None]] = []
        for a in candidates:
            affected, fixed = a.ranges.match_key(normalized, key)
            if affected:
                hits.append((a, fixed))
        if (cms.lower(), component.lower()) in self._shared:
            return once(hits)
        return [(a, fixed, a.severity) for a, fixed in hits]

    @functools.lru_cache(maxsize=4096)  # noqa: B019 - one index per command, freed with it
    def unmatched(self, cms: str, component: str, kind: str | None) -> list[Hit]:
        """Every advisory for the component, once (for a version that cannot be read)."""
        return once([(a, None) for a in self.candidates(cms, component, kind)])


def _kind_fits(a: Advisory, kind: str) -> bool:
    want = a.target.kind if a.target is not None else None
    if want is None:
        return False
    if want in ("extension", "module"):
        return True  # NOTE: TYPO3 and Drupal name extensions by key whatever their kind
    return kind in _KIN.get(want, {want})


def _shares_a_name(advisories: list[Advisory]) -> bool:
    seen: set[str] = set()
    for a in advisories:
        if a.names & seen:
            return True
        seen |= a.names
    return False


def once(hits: Sequence[tuple[Advisory, str | None]]) -> list[Hit]:
    """Each advisory once: one known by a name (CVE, alias, id) already given is left out,
    its severity counting for the one kept (FriendsOfPHP gives none, OSV often does)."""
    kept: list[Hit] = []
    slot_of: dict[str, int] = {}
    for a, fixed in hits:
        slot = next((slot_of[n] for n in a.names if n in slot_of), None)
        if slot is None:
            slot = len(kept)
            kept.append((a, fixed, a.severity))
        else:
            first, first_fixed, severity = kept[slot]
            severity = max(severity, a.severity, key=SEVERITIES.index)
            kept[slot] = (first, first_fixed or fixed, severity)
        for n in a.names:
            slot_of.setdefault(n, slot)
    return kept
