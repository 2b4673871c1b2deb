"""An advisory as patchd stores it, whichever database it came from (pydantic)."""

from __future__ import annotations

import functools
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from patchd.advisories.ranges import Affected, Span

Severity = Literal["low", "medium", "high", "critical", "unknown"]
SEVERITIES: tuple[str, ...] = ("unknown", "low", "medium", "high", "critical")
"""Severities from least to most severe (``--severity high`` keeps high and critical)."""


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SpanModel(_Model):
    """One part of the affected versions (see :class:`patchd.advisories.ranges.Span`)."""

    constraint: str | None = None
    events: tuple[tuple[str, str], ...] = ()
    versions: tuple[str, ...] = ()
    fixed: str | None = None

    def span(self) -> Span:
        return Span(self.constraint, self.events, self.versions, self.fixed)


class Target(_Model):
    """What a package is in patchd's words: a CMS's core or one of its extensions."""

    cms: str
    component: str = "core"
    kind: str | None = Field(
        default=None, description="extension kind (plugin, theme, extension); None: core"
    )


class Advisory(_Model):
    """One advisory for one package."""

    source: Literal["friendsofphp", "osv"]
    advisory_id: str = Field(description="the source's id (file name or OSV id)")
    package: str = Field(description="composer name, e.g. typo3/cms-core")
    target: Target | None = None
    title: str
    link: str | None = None
    cve: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    severity: Severity = "unknown"
    affected: tuple[SpanModel, ...]
    row_id: int = Field(default=0, description="the ledger's row (0: not stored)")

    @functools.cached_property
    def ranges(self) -> Affected:
        """The affected versions, ready to match."""
        return Affected(tuple(s.span() for s in self.affected))

    @functools.cached_property
    def names(self) -> frozenset[str]:
        """Every id this advisory goes by (a bundle's ``advisories`` may name any)."""
        return frozenset({self.advisory_id, *self.cve, *self.aliases})
