"""Advisories indexed by what they are for, with the matching of versions cached.

A fleet has few distinct (CMS, component, version) triples and many installations; each
triple is matched against its advisories once.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Iterable

from patchd.advisories.constraints import compare_key, normalize
from patchd.advisories.model import Advisory

#: Extension kinds that count as the advisory's kind (a WordPress mu-plugin is a plugin).
_KIN = {"plugin": {"plugin", "mu-plugin"}, "theme": {"theme"}}

Key = tuple[str, str]
Hit = tuple[Advisory, str | None]
"""An advisory that affects a version, and the version that fixes it."""


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
        hits: list[Hit] = []
        for a in candidates:
            affected, fixed = a.ranges.match_key(normalized, key)
            if affected:
                hits.append((a, fixed))
        return hits


def _kind_fits(a: Advisory, kind: str) -> bool:
    want = a.target.kind if a.target is not None else None
    if want is None:
        return False
    if want in ("extension", "module"):
        return True  # NOTE: TYPO3 and Drupal name extensions by key whatever their kind
    return kind in _KIN.get(want, {want})
