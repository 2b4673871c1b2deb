"""Which versions an advisory affects: composer constraints, OSV events, listed versions.

An advisory's affected set is a list of :class:`Span` (OR): a FriendsOfPHP branch is one
span with a composer constraint, an OSV range one span with its ``events``; OSV's
explicit ``versions`` are a span of their own. A span also knows the version that fixes
it, for the emails ("update to 12.4.11").

Every version is compared as composer compares it (:mod:`patchd.advisories.constraints`):
OSV's Packagist ranges are composer versions; for other ecosystems' SEMVER ranges this
order agrees with semver for the release numbers CMSs use.

NOTE: stdlib only (pydantic models live in :mod:`patchd.advisories.model`).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from patchd.advisories.constraints import compare_key, normalize, parse_constraint

EVENT_KINDS = ("introduced", "fixed", "last_affected", "limit")


@functools.lru_cache(maxsize=65536)
def version_key(version: str) -> tuple[tuple[int, int], ...]:
    """Composer's order of ``version`` (any spelling); ``ValueError`` when it is none."""
    return compare_key(normalize(version))


def _event_key(kind: str, version: str) -> tuple[tuple[int, int], ...]:
    if kind == "introduced" and version == "0":
        return ()
    return version_key(version)


@dataclass(frozen=True)
class Span:
    """One part of an affected set: a composer ``constraint``, OSV ``events``
    (``(kind, version)`` pairs) or explicit ``versions``; ``fixed`` is where it ends."""

    constraint: str | None = None
    events: tuple[tuple[str, str], ...] = ()
    versions: tuple[str, ...] = ()
    fixed: str | None = None

    def check(self) -> None:
        """Raise ``ValueError`` naming what cannot be read (before anything is stored)."""
        if self.constraint is not None:
            parse_constraint(self.constraint)
        for kind, version in self.events:
            if kind not in EVENT_KINDS:
                raise ValueError(f"unknown OSV event {kind!r}")
            _event_key(kind, version)
        for version in self.versions:
            version_key(version)

    def contains(self, normalized: str) -> bool:
        """Whether the span holds ``normalized`` (a composer-normalized version)."""
        if self.constraint is not None:
            return parse_constraint(self.constraint).matches_normalized(normalized)
        if normalized.startswith("dev-"):
            return False
        key = compare_key(normalized)
        if self.versions:
            return any(version_key(v) == key for v in self.versions)
        return _in_events(key, self.events)


def _in_events(key: tuple[tuple[int, int], ...], events: Sequence[tuple[str, str]]) -> bool:
    """OSV's evaluation of one range: events in version order, ``introduced`` opens,
    ``fixed`` closes at the version, ``last_affected`` after it; ``limit`` caps the range."""
    ordered = sorted(events, key=lambda e: _event_key(*e))
    affected = False
    for kind, version in ordered:
        at = _event_key(kind, version)
        if kind == "introduced":
            if key >= at:
                affected = True
        elif kind == "fixed":
            if key >= at:
                affected = False
        elif kind == "last_affected":
            if key > at:
                affected = False
        elif kind == "limit" and key >= at:
            return False
    return affected


@dataclass(frozen=True)
class Affected:
    """An advisory's affected versions: the union of its spans."""

    spans: tuple[Span, ...]

    def match(self, version: str) -> tuple[bool, str | None]:
        """(whether ``version`` is affected, the fixed version of the span that holds it).
        ``ValueError`` when ``version`` is not a composer version."""
        normalized = normalize(version)
        for span in self.spans:
            if span.contains(normalized):
                return True, span.fixed or self.next_fixed(normalized)
        return False, None

    def next_fixed(self, normalized: str) -> str | None:
        """The lowest fixed version above ``normalized`` of any span (OSV lists the fix of
        each branch separately)."""
        key = compare_key(normalized)
        best: tuple[tuple[tuple[int, int], ...], str] | None = None
        for span in self.spans:
            for kind, version in span.events:
                if kind != "fixed":
                    continue
                k = version_key(version)
                if k > key and (best is None or k < best[0]):
                    best = (k, version)
        return best[1] if best else None


def fixed_of_constraint(parts: Iterable[str]) -> str | None:
    """The fixed version a FriendsOfPHP branch names: its ``<X`` bound (``X``)."""
    found = None
    for part in parts:
        for piece in part.replace(",", " ").split():
            if piece.startswith("<") and not piece.startswith("<="):
                found = piece[1:].strip() or found
    return found
