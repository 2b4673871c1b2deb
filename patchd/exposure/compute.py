"""Exposure of one scan: every installation and extension against the advisories."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence

from patchd.advisories.model import SEVERITIES, Advisory
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
        candidates = index.candidates(inst.cms, component, kind)
        if not candidates:
            return
        why = f"version {version!r} is not a version" if version else "version unreadable"
        for a, severity in _once(candidates):
            yield _row(inst, customer, component, version, a, None, Status.UNKNOWN, why, severity)
        return
    fixed_of = {id(a): fixed for a, fixed in hits}
    for a, severity in _once([a for a, _ in hits]):
        ok, detail = mitigations.check(inst, component, a)
        status = Status.MITIGATED if ok else Status.EXPOSED
        yield _row(inst, customer, component, version, a, fixed_of[id(a)], status, detail, severity)


def _once(advisories: Sequence[Advisory]) -> list[tuple[Advisory, str]]:
    """Each advisory once: one known by a name (CVE, alias, id) already given is left out,
    its severity counting for the one kept (FriendsOfPHP gives none, OSV often does)."""
    if len(advisories) == 1:  # NOTE: the common case, without the bookkeeping
        (a,) = advisories
        return [(a, a.severity)]
    kept: list[tuple[Advisory, str]] = []
    slot_of: dict[str, int] = {}
    for a in advisories:
        names = a.names
        slot = next((slot_of[n] for n in names if n in slot_of), None)
        if slot is None:
            slot = len(kept)
            kept.append((a, a.severity))
        else:
            first, severity = kept[slot]
            kept[slot] = (first, max(severity, a.severity, key=SEVERITIES.index))
        for n in names:
            slot_of.setdefault(n, slot)
    return kept


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
