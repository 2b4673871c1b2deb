"""Exposure of one scan: every installation and extension against the advisories."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

from patchd.advisories.model import Advisory
from patchd.exposure.index import AdvisoryIndex, Hit
from patchd.exposure.mitigation import Mitigations
from patchd.exposure.model import ExposureRow, Status
from patchd.ledger.exposure import Installed

CORE = "core"


def compute_exposure(
    installations: Iterable[Installed],
    index: AdvisoryIndex,
    mitigations: Mitigations,
    customers: Mapping[str, str],
) -> Iterator[ExposureRow]:
    """The exposure rows of ``installations`` (``customers``: account -> customer id).

    The core is matched with the installation's version, each extension with its own;
    an unreadable version makes every advisory for that component ``unknown``. An
    advisory that another source already reported for the same component (a shared CVE
    or alias) is listed once.
    """
    for inst in installations:
        customer = customers.get(inst.account)
        parts: list[tuple[str, str | None, str | None]] = [(CORE, None, inst.version)]
        parts += [(name, kind, version) for name, kind, version in inst.extensions]
        for component, kind, version in parts:
            yield from _component_rows(inst, customer, component, kind, version, index, mitigations)


def _component_rows(
    inst: Installed,
    customer: str | None,
    component: str,
    kind: str | None,
    version: str | None,
    index: AdvisoryIndex,
    mitigations: Mitigations,
) -> Iterator[ExposureRow]:
    hits: list[Hit] | None = None
    if version:
        try:
            hits = index.affecting(inst.cms, component, kind, version)
        except ValueError:
            hits = None
    if hits is None:
        why = f"version {version!r} is not a version" if version else "version unreadable"
        for a, _, severity in index.unmatched(inst.cms, component, kind):
            yield _row(inst, customer, component, version, a, None, Status.UNKNOWN, why, severity)
        return
    for a, fixed, severity in hits:
        ok, detail = mitigations.check(inst, component, a)
        status = Status.MITIGATED if ok else Status.EXPOSED
        yield _row(inst, customer, component, version, a, fixed, status, detail, severity)


def _row(
    inst: Installed,
    customer: str | None,
    component: str,
    version: str | None,
    a: Advisory,
    fixed: str | None,
    status: Status,
    detail: str | None,
    severity: str,
) -> ExposureRow:
    # NOTE: positional: hundreds of thousands of rows (field order of ExposureRow).
    return ExposureRow(
        inst.account,
        customer,
        inst.host,
        inst.path,
        inst.cms,
        component,
        version,
        a.advisory_id,
        a.cve,
        a.title,
        severity,
        fixed,
        status,
        a.source,
        a.package,
        a.link,
        detail,
        inst.id,
        a.row_id,
    )
