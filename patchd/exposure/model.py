"""One exposure row: an installation (or one of its extensions) and one advisory."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any


class Status(enum.StrEnum):
    """What an advisory means for an installation."""

    EXPOSED = "exposed"
    MITIGATED = "mitigated"  # a bundle naming the advisory is in place, files intact
    UNKNOWN = "unknown"  # the version could not be read


@dataclass(slots=True)
class ExposureRow:
    """One (installation or extension, advisory) pair of a scan (DESIGN.md's keys).

    NOTE: slotted and not frozen (a frozen dataclass sets each field through
    ``object.__setattr__``): a 50,000-installation fleet has hundreds of thousands of
    rows. Treat it as read-only.
    """

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
    installation: int = 0  # the scan_installations row (ledger)
    ref: int = 0  # the advisories row (ledger)

    def to_json(self) -> dict[str, Any]:
        """The stable JSON keys of DESIGN.md plus ``package``, ``link``, ``detail``."""
        return {
            "account": self.account,
            "customer": self.customer,
            "host": self.host,
            "path": self.path,
            "cms": self.cms,
            "component": self.component,
            "version": self.version,
            "advisory": self.advisory,
            "cve": list(self.cve),
            "title": self.title,
            "severity": self.severity,
            "fixed_in": self.fixed_in,
            "status": self.status.value,
            "source": self.source,
            "package": self.package,
            "link": self.link,
            "detail": self.detail,
        }
