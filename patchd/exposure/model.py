"""One exposure row: an installation (or one of its extensions) and one advisory."""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field
from typing import Any


class Status(enum.StrEnum):
    """What an advisory means for an installation."""

    EXPOSED = "exposed"
    MITIGATED = "mitigated"  # a bundle naming the advisory is in place, files intact
    UNKNOWN = "unknown"  # the version could not be read


@dataclass(frozen=True)
class ExposureRow:
    """One (installation or extension, advisory) pair of a scan (DESIGN.md's keys)."""

    account: str
    customer: str | None
    host: str
    path: str
    cms: str
    component: str
    version: str | None
    advisory: str
    cve: tuple[str, ...]
    title: str
    severity: str
    fixed_in: str | None
    status: Status
    source: str
    package: str = ""
    link: str | None = None
    detail: str | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def to_json(self) -> dict[str, Any]:
        """The stable JSON keys of DESIGN.md plus ``package``, ``link``, ``detail``."""
        data = asdict(self)
        data.pop("extra")
        data["cve"] = list(self.cve)
        data["status"] = self.status.value
        return data
