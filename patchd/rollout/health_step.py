"""The health check around one batch of a rollout: baselines before the batch, a check
after each apply, and the undo at once of every installation whose site got worse.

An installation is checked when its account lists ``sites`` with its path. Its outcome
stays ``patched`` (``detail`` gains the check's before/after) unless the site got worse:
then the host restores its files from the apply's journal (the agent's ``rollback``, the
code of ``patchd rollback``, verified by hash) and the outcome becomes ``reverted`` with
reason ``health-check``. An undo that fails leaves ``error`` with reason ``health-check``
(``patchd rollback`` can retry it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from patchd.errors import PatchdError
from patchd.health.checker import HealthChecker, SiteURL
from patchd.health.page import Page
from patchd.health.verdict import Verdict
from patchd.inventory import Account, Host
from patchd.ledger.models import FileState, ResultRecord, TouchedFileRecord
from patchd.outcomes import Outcome, Reason
from patchd.rollout.rollback import undo_request
from patchd.transport import AgentSession, Transport

Key = tuple[str, str]  # (account id, installation path)
Recorded = tuple[ResultRecord, Sequence[TouchedFileRecord]]
#: Runs the agent's ``rollback`` op with these entries on the host; returns its items.
Undo = Callable[[list[dict[str, Any]]], list[dict[str, Any]]]


def undo_in(session: AgentSession) -> Undo:
    """Undo through an open agent session (between two batches)."""
    return lambda requests: session.run("rollback", {"installations": requests}).items


def undo_with(transport: Transport) -> Undo:
    """Undo through an agent session of its own (while the host's session goes on)."""

    def undo(requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
        with transport.open() as session:
            return session.run("rollback", {"installations": requests}).items

    return undo


def sites_of(
    account: Account, path: str, hosts: Mapping[str, Host], also: Iterable[str] = ()
) -> list[SiteURL]:
    """The URLs to check for the installation at ``path`` of ``account`` (and for the
    sites at the paths ``also`` that use its files, e.g. TYPO3 sites sharing a source)."""
    host = hosts.get(account.host)
    default = host.resolve if host is not None else None
    paths = {path, *also}
    return [SiteURL(s.url, s.resolve or default) for s in account.sites if s.path in paths]


class HealthStep:
    """Checks the installations of a rollout that have URLs (see the module docstring)."""

    def __init__(
        self,
        checker: HealthChecker,
        hosts: Mapping[str, Host],
        site_paths: Mapping[Key, Iterable[str]] | None = None,
    ) -> None:
        self.checker = checker
        self.hosts = hosts
        self.site_paths = site_paths or {}

    def batch(self, host: str, targets: Iterable[tuple[Account, str, bool]]) -> BatchChecks:
        """The checks of one batch; takes the baselines of the installations that will be
        applied (``(account, path, applies)``) and waits for them."""
        checks = BatchChecks(self.checker, host)
        for account, path, applies in targets:
            also = self.site_paths.get((account.id, path), ())
            sites = sites_of(account, path, self.hosts, also) if applies else []
            if sites:
                checks.sites[(account.id, path)] = (account, sites)
        baselines = {
            (key, site.url): self.checker.baseline(host, site)
            for key, (_account, sites) in checks.sites.items()
            for site in sites
        }
        checks.before = {k: f.result() for k, f in baselines.items()}
        return checks


@dataclass
class BatchChecks:
    """The health checks of one batch of one host."""

    checker: HealthChecker
    host: str
    sites: dict[Key, tuple[Account, list[SiteURL]]] = field(default_factory=dict)
    before: dict[tuple[Key, str], Page] = field(default_factory=dict)
    running: dict[Key, list[Future[Verdict]]] = field(default_factory=dict)

    def applied(self, record: ResultRecord) -> None:
        """Start checking an installation whose result just arrived (if it was patched)."""
        key = (record.account, record.path)
        if record.outcome is not Outcome.PATCHED or key not in self.sites:
            return
        _account, sites = self.sites[key]
        self.running[key] = [
            self.checker.after(self.host, s, self.before[(key, s.url)]) for s in sites
        ]

    @property
    def checking(self) -> bool:
        """Whether any check of the batch was started."""
        return bool(self.running)

    def finish(self, undo: Undo, got: list[Recorded]) -> list[Recorded]:
        """``got`` with the checks' verdicts (waits for them): details added, the sites
        that got worse undone at once through ``undo``."""
        if not self.running:
            return got
        verdicts = {key: [f.result() for f in futures] for key, futures in self.running.items()}
        worse = {key: [v for v in vs if v.worse] for key, vs in verdicts.items()}
        worse = {key: vs for key, vs in worse.items() if vs}
        undone = self._undo(undo, got, worse) if worse else {}
        out: list[Recorded] = []
        for record, files in got:
            key = (record.account, record.path)
            if key not in verdicts:
                out.append((record, files))
            elif key in worse:
                out.append(_reverted(record, files, worse[key], undone.get(key)))
            else:
                words = "; ".join(v.describe() for v in verdicts[key])
                out.append((_add_detail(record, words), files))
        return out

    def _undo(
        self, undo: Undo, got: list[Recorded], worse: Mapping[Key, Any]
    ) -> dict[Key, dict[str, Any]]:
        requests = [
            undo_request(self.sites[(r.account, r.path)][0], r.path, r.journal or "")
            for r, _files in got
            if (r.account, r.path) in worse
        ]
        try:
            items = undo(requests)
        except PatchdError as exc:  # TransportError, RemoteOpError
            failed = {"ok": False, "detail": str(exc), "files": []}
            return {(q["account"], q["path"]): failed for q in requests}
        return {(i["account"], i["path"]): i for i in items}


def _add_detail(record: ResultRecord, words: str) -> ResultRecord:
    detail = f"{record.detail}; {words}" if record.detail else words
    return record.model_copy(update={"detail": detail})


def _reverted(
    record: ResultRecord,
    files: Sequence[TouchedFileRecord],
    worse: list[Verdict],
    undo: dict[str, Any] | None,
) -> Recorded:
    """The result of an installation whose site got worse, after its undo."""
    words = "; ".join(v.describe() for v in worse)
    undo = undo or {"ok": False, "detail": "no answer from the host", "files": []}
    status = {f.get("path"): f.get("status") for f in undo.get("files", [])}
    if undo.get("ok"):
        detail = f"{words}; undone at once: {undo.get('detail')}, verified by hash"
        outcome = Outcome.REVERTED
    else:
        detail = (
            f"{words}; the undo failed ({undo.get('detail')}): the patch is still applied, "
            "undo it with patchd rollback"
        )
        outcome = Outcome.ERROR
    new_files = [
        f.model_copy(update={"state": _file_state(status.get(f.file))}) if f.file in status else f
        for f in files
    ]
    changed = {"outcome": outcome, "reason": Reason.HEALTH_CHECK, "detail": detail}
    return record.model_copy(update=changed), new_files


def _file_state(status: str | None) -> FileState:
    if status in ("conflict", "failed"):
        return FileState.ROLLBACK_CONFLICT
    return FileState.ROLLED_BACK
