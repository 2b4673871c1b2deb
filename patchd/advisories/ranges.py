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
from typing import Any

from patchd.advisories.constraints import Key, compare_key, normalize, parse_constraint

EVENT_KINDS = ("introduced", "fixed", "last_affected", "limit")


@functools.lru_cache(maxsize=65536)
def version_key(version: str) -> Key:
    """Composer's order of ``version`` (any spelling); ``ValueError`` when it is none."""
    return compare_key(normalize(version))


def _event_key(kind: str, version: str) -> Key:
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

    @functools.cached_property
    def _compiled(self) -> tuple[Any, ...]:
        """What matching needs, made once: the parsed constraint, the events in version
        order with their keys, the listed versions' keys."""
        constraint = parse_constraint(self.constraint) if self.constraint is not None else None
        events = tuple(sorted(((_event_key(k, v), k) for k, v in self.events), key=lambda e: e[0]))
        listed = frozenset(version_key(v) for v in self.versions)
        return constraint, events, listed

    def contains(self, normalized: str) -> bool:
        """Whether the span holds ``normalized`` (a composer-normalized version)."""
        return self.contains_key(normalized, compare_key(normalized))

    def contains_key(self, normalized: str, key: Key) -> bool:
        """:meth:`contains` with ``normalized``'s :func:`compare_key` given."""
        constraint, events, listed = self._compiled
        if constraint is not None:
            return constraint.matches_key(normalized, key)
        if normalized.startswith("dev-"):
            return False
        if listed:
            return key in listed
        return _in_events(key, events)


def _in_events(key: Key, events: Sequence[tuple[Key, str]]) -> bool:
    """OSV's evaluation of one range: events in version order, ``introduced`` opens,
    ``fixed`` closes at the version, ``last_affected`` after it; ``limit`` caps the range."""
    affected = False
    for at, kind in events:
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
        return self.match_key(normalized, compare_key(normalized))

    def match_key(self, normalized: str, key: Key) -> tuple[bool, str | None]:
        """:meth:`match` for a normalized version and its key."""
        for span in self.spans:
            if span.contains_key(normalized, key):
                return True, span.fixed or self.next_fixed(key)
        return False, None

    def next_fixed(self, key: Key) -> str | None:
        """The lowest fixed version above ``key`` of any span (OSV lists the fix of each
        branch separately)."""
        best: tuple[Key, str] | None = None
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
