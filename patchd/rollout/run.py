"""``patchd rollout``: match, dry-run, apply where the dry run succeeded; resumable.

One run of one bundle across the inventory. The controller matches the bundle against a
scan, records every not-affected installation, then fans out over hosts: each host gets
its targets in batches in one agent session and streams one result per installation
back, which is recorded in the ledger at once. A run killed at any moment is resumed by
``--resume RUN`` or by running the same command again: interrupted applies are put back
by the hosts (``recover``), installations with a result are not redone.
"""

from __future__ import annotations

import contextlib
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from patchd.bundle.manifest import Bundle, Variant
from patchd.errors import TransportError, UsageError
from patchd.health.checker import HealthChecker
from patchd.inventory import Account, Inventory
from patchd.ledger import runs as ledger_runs
from patchd.ledger import scans as ledger_scans
from patchd.ledger.db import Ledger
from patchd.ledger.locks import acquire_rollout_lock
from patchd.ledger.models import (
    FileState,
    ResultRecord,
    RunStatus,
    TouchedFileRecord,
)
from patchd.matrix.tested import effective_min_php, untested_reason
from patchd.outcomes import Outcome, Reason, skipped_detail
from patchd.patcher.safewrite import MAX_FILE_SIZE
from patchd.progress import Progress, SilentProgress
from patchd.rollout.feed import TargetFeed
from patchd.rollout.gate import DEFAULT_MAX_FAILURE_RATE, FailureGate, gate_minimum
from patchd.rollout.health_step import (
    BatchChecks,
    HealthStep,
    Recorded,
    Undo,
    undo_in,
    undo_with,
)
from patchd.rollout.match import (
    Match,
    Matcher,
    for_layout,
    needs_extensions,
    version_unknown_detail,
)
from patchd.rollout.stream import stream as _stream
from patchd.scanner import run_scan
from patchd.transport import AgentSession, Transport, transport_for
from patchd.transport.early import EarlyTransport
from patchd.transport.pool import run_on_host, run_per_host

DEFAULT_BACKUP_DIR = "/var/lib/patchd/backups"


@dataclass(frozen=True)
class RolloutOptions:
    """How a rollout runs. Only :meth:`identity` decides whether a run can be resumed."""

    dry_run: bool = False
    hosts: frozenset[str] = frozenset()
    accounts: frozenset[str] = frozenset()
    customers: frozenset[str] = frozenset()
    canary: int | None = None
    parallel_hosts: int = 8
    per_host: int = 1
    batch: int = 25
    backup_dir: str | None = None
    # NOTE (issue 17): the store per host chosen by the caller (tied to the ledger, see
    # patchd.ledger.backup_store); hosts not in it use backup_dir / the host's / the default.
    host_backup_dirs: Mapping[str, str] = field(default_factory=dict)
    max_file_size: int = MAX_FILE_SIZE
    require_tested: bool = False
    health_check: bool = True  # check the sites' URLs after applying, undo what got worse
    health_per_host: int = 4  # health check requests to one host at once
    health_timeout: float = 10.0  # seconds per health check request
    health_settle: float = 3.0  # opcache may serve the old code this long after an apply
    max_failure_rate: float = DEFAULT_MAX_FAILURE_RATE  # the fleet failure gate (1.0: off)
    continue_past_gate: bool = False  # resume a run the gate stopped

    def identity(self) -> dict[str, Any]:
        """The options that make two rollouts "the same command" (for automatic resume)."""
        return {
            "dry_run": self.dry_run,
            "hosts": sorted(self.hosts),
            "accounts": sorted(self.accounts),
            "customers": sorted(self.customers),
            "canary": self.canary,
            "require_tested": self.require_tested,
        }

    def in_scope(self, account: Account) -> bool:
        return (
            (not self.hosts or account.host in self.hosts)
            and (not self.accounts or account.id in self.accounts)
            and (not self.customers or account.customer.id in self.customers)
        )


@dataclass
class RolloutReport:
    """What a rollout did; the full results are in the ledger under ``run_id``."""

    run_id: int
    bundle_id: str
    resumed: bool
    status: RunStatus
    summary: dict[str, int] = field(default_factory=dict)
    untested: list[str] = field(default_factory=list)  # "account:path: why" per target
    gate: str | None = None  # why the fleet failure gate stopped the run (if it did)


@dataclass(frozen=True, slots=True)
class _Target:
    """An installation the bundle is dry-run (and maybe applied) on: what the fan-out needs
    of its match and scan record (lean: a rollout over 50,000 installations holds them)."""

    account: Account
    path: str  # where the files to patch are (the match's path)
    version: str | None
    variant: Variant | None
    layout: str
    cms: str
    php: str | None  # the installation's PHP from the scan (None: the account's)
    unknown: str | None = None  # the version is unreadable: why (every variant is tried)

    @classmethod
    def of(cls, match: Match, account: Account) -> _Target:
        inst = match.installation
        unknown = match.why if match.kind == "version-unknown" else None
        return cls(
            account,
            match.path,
            match.version,
            match.variant,
            match.layout,
            inst.cms,
            inst.php,
            unknown,
        )

    @property
    def key(self) -> tuple[str, str]:
        return (self.account.id, self.path)


#: Results held while matching before they are stored (bounds the controller's memory).
_RECORD_EARLY = 1000


class _Recorder:
    """Writes results to the ledger from the host threads and counts outcomes (for the
    canary and the fleet failure gate)."""

    def __init__(
        self,
        ledger: Ledger,
        run_id: int,
        progress: Progress,
        canary: int | None,
        gate: FailureGate | None = None,
    ) -> None:
        self.ledger = ledger
        self.run_id = run_id
        self.progress = progress
        self.canary = canary
        self.gate = gate or FailureGate(active=False)
        self.patched = 0
        self.lock = threading.Lock()

    def canary_reached(self) -> bool:
        with self.lock:
            return self.canary is not None and self.patched >= self.canary

    def stopped(self) -> bool:
        """No further batch: the canary is complete, or the gate tripped."""
        return self.gate.tripped or self.canary_reached()

    def result(self, record: ResultRecord) -> None:
        self.results([(record, ())])

    def results(
        self,
        batch: list[tuple[ResultRecord, Sequence[TouchedFileRecord]]],
        *,
        advance: bool = True,
    ) -> None:
        """Record several results (with their touched files) in one ledger transaction;
        ``advance=False`` leaves the progress bar alone (it may not be started yet)."""
        ledger_runs.record_results(self.ledger, self.run_id, batch)
        self.gate.count(r for r, _f in batch)
        with self.lock:
            self.patched += sum(r.outcome is Outcome.PATCHED for r, _f in batch)
        if advance:
            for record, _files in batch:
                self.progress.advance(label=record.outcome.value)


def _base(t: _Target) -> dict[str, Any]:
    return {
        "account": t.account.id,
        "customer_id": t.account.customer.id,
        "host": t.account.host,
        "path": t.path,
        "cms": t.cms,
        "version": t.version,
        "variant": t.variant.file if t.variant else None,
        "policy": t.account.policy,
    }


def _result_from_item(
    t: _Target, item: dict[str, Any], dry_run: bool, fixed_in: str | None = None
) -> ResultRecord:
    """Turn an agent item into the installation's outcome (see DESIGN.md "Outcomes")."""
    base = _base(t)
    outcome = item.get("outcome")
    detail = item.get("detail") or ""
    reason = item.get("reason")
    if t.unknown is not None:
        base["variant"] = item.get("variant")
        if reason == Reason.VERSION_UNKNOWN.value:
            detail = version_unknown_detail(t.unknown, fixed_in, f" ({detail})")
    if outcome == "error":
        return ResultRecord(
            **base, outcome=Outcome.ERROR, detail=detail, error_traceback=item.get("traceback")
        )
    applied = item.get("applied")
    if not applied:
        # A dry run only: the run is --dry-run, or the account's policy forbids writing.
        if t.account.policy != "auto":
            return ResultRecord(
                **base,
                outcome=Outcome.SKIPPED,
                detail=skipped_detail(t.account.policy, outcome, detail),
            )
        if outcome is None:
            return ResultRecord(**base, outcome=Outcome.SKIPPED, detail=f"dry run: {detail}")
    return ResultRecord(
        **base,
        outcome=Outcome(outcome),
        reason=Reason(reason) if reason else None,
        detail=detail,
        journal=item.get("journal"),
    )


def _touched_files(t: _Target, item: dict[str, Any]) -> list[TouchedFileRecord]:
    """The ledger rows of the files an applied (or rolled back) installation touched."""
    journal = item.get("journal")
    if not item.get("applied") or item.get("outcome") not in ("patched", "apply-failed"):
        return []
    state = FileState.VERIFIED if item["outcome"] == "patched" else FileState.RESTORED
    return [
        TouchedFileRecord(
            account=t.account.id,
            path=t.path,
            file=f["path"],
            pre_sha256=f.get("pre_sha256"),
            post_sha256=f.get("post_sha256"),
            backup_path=f"{journal}/{n:04d}.orig" if journal and f.get("pre_sha256") else None,
            mode=f.get("mode"),
            uid=f.get("uid"),
            gid=f.get("gid"),
            state=state,
        )
        for n, f in enumerate(item.get("files", []))
    ]


def _host_work(
    bundle: Bundle,
    feed: TargetFeed[_Target],
    rec: _Recorder,
    options: RolloutOptions,
    backup_dir: str,
    bundle_runs: list[str],
    transport: Transport,
    max_sessions: int,
    resumed: bool = True,
    health: HealthStep | None = None,
    roots: Sequence[str] | None = None,
) -> Callable[[AgentSession], list[tuple[str, str]]]:
    """The work for one host; returns the keys it finished (for unreachable bookkeeping).

    The host's batches are shared by ``options.per_host`` agent sessions (the first is
    the one the pool opened; the others are opened here), so a host works on several
    installations at once (at most the host's ``max_sessions``); with ``--canary`` one
    session only, so the count is exact. With ``health``, each batch's sites are checked
    (see :mod:`patchd.rollout.health_step`) before its results are recorded.

    ``feed`` holds the host's targets: all of them (closed), or those of a scan still
    running (open: the sessions wait for more until the scan of the host has ended).
    ``roots``: the account roots the host's ``recover`` covers (default: the targets').
    """
    by_file = {v.file: v for v in bundle.manifest.variants}
    variants_key = f"{rec.run_id}:{bundle.manifest.digest}"
    batch_size = 1 if options.canary is not None else options.batch
    sessions = 1 if options.canary is not None else max(1, min(options.per_host, max_sessions))
    ready = threading.Lock()  # the host's prepare_backup_dir and recover, once, first
    prepared: list[bool] = []

    def new_variants(chunk: list[_Target], sent: set[tuple[str, str]]) -> dict[str, Any]:
        """The variants ``chunk`` needs that this session has not sent yet (each is sent
        once per session; the agent keeps them under ``variants_key``)."""
        wanted = {(t.variant.file, t.layout) for t in chunk if t.variant}
        wanted |= {(name, t.layout) for t in chunk if t.unknown is not None for name in by_file}
        wanted -= sent
        sent |= wanted
        return {
            _variant_key(name, layout): [
                fp.to_json() for fp in for_layout(bundle.patches(by_file[name]), layout)
            ]
            for name, layout in sorted(wanted)
        }

    def prepare(session: AgentSession, chunk: list[_Target]) -> None:
        """Before the host's first write: the backup store, and the interrupted applies of
        this bundle's runs put back."""
        if options.dry_run or not any(t.account.policy == "auto" for t in chunk):
            return
        with ready:
            if prepared:
                return
            list(session.call("prepare_backup_dir", {"backup_dir": backup_dir}))
            # NOTE: always, not only on --resume: an agent that died mid-apply ends its host
            # as unreachable in a run that then finishes, and the next run is a new one.
            # Only this bundle's runs: the bundle lock makes them ours; another bundle's
            # rollout may be applying right now.
            # Only this host's accounts: two hosts may share a file system and a store.
            covered = sorted(
                roots if roots is not None else {t.account.root for t in feed.everything}
            )
            list(
                session.call(
                    "recover", {"backup_dir": backup_dir, "runs": bundle_runs, "roots": covered}
                )
            )
            prepared.append(True)

    def run_batches(session: AgentSession, finished: list[tuple[str, str]]) -> None:
        settling: list[threading.Thread] = []
        try:
            send_batches(session, finished, settling)
        finally:
            for thread in settling:
                thread.join()

    def send_batches(
        session: AgentSession,
        finished: list[tuple[str, str]],
        settling: list[threading.Thread],
    ) -> None:
        first = True
        sent: set[tuple[str, str]] = set()
        while not rec.stopped():
            chunk = feed.take(rec.gate.batch_size(batch_size), batch_size, _writes)
            if not chunk:
                return
            prepare(session, chunk)
            by_key = {t.key: t for t in chunk}
            checks = None
            if health is not None and not options.dry_run:
                checks = health.batch(
                    session.host, ((t.account, t.path, t.account.policy == "auto") for t in chunk)
                )
            args = _rollout_args(chunk)
            variants = new_variants(chunk, sent)
            if first or variants:  # the agent keeps them for the session's later batches
                args["variants"] = variants
                first = False
            # NOTE: one ledger transaction per batch, also when the session fails half-way
            # (what arrived is recorded; the rest is the host's unreachable bookkeeping).
            got: list[tuple[ResultRecord, Sequence[TouchedFileRecord]]] = []
            streamed = False
            try:
                for item in session.call("rollout", args):
                    t = by_key[(item["account"], item["path"])]
                    record = _result_from_item(t, item, options.dry_run, bundle.manifest.fixed_in)
                    got.append((record, _touched_files(t, item)))
                    finished.append(t.key)
                    if checks is not None:
                        checks.applied(record)
                streamed = True
            finally:
                if checks is None or not checks.checking:
                    rec.results(got)
                elif streamed and options.canary is None and rec.gate.judging():
                    # NOTE: the checks settle (opcache) while the session sends the next
                    # batch; an undo then runs in a session of its own. One batch at most
                    # runs ahead of its results (the gate must see them before the next).
                    for thread in settling:
                        thread.join()
                    settle = threading.Thread(
                        target=_settle_and_record,
                        args=(rec, checks, got, undo_with(transport)),
                        daemon=True,
                    )
                    settle.start()
                    settling.append(settle)
                else:
                    # NOTE: the canary and the gate's first judgement need these results
                    # before the next batch.
                    undo = undo_in(session) if streamed else undo_with(transport)
                    rec.results(checks.finish(undo, got))

    def extra_session(finished: list[tuple[str, str]]) -> None:
        # NOTE: a second session failing leaves its batch without results; the host's
        # bookkeeping afterwards records those installations as unreachable.
        with contextlib.suppress(TransportError), transport.open() as session:
            run_batches(session, finished)

    def _rollout_args(chunk: list[_Target]) -> dict[str, Any]:
        return {
            "run_id": str(rec.run_id),
            "dry_run": options.dry_run,
            "backup_dir": backup_dir,
            "min_php": min_php,
            "max_file_size": options.max_file_size,
            "variants_key": variants_key,
            # NOTE: only a resumed run can find its own finished applies on the host.
            "resumed": resumed,
            "installations": [
                {
                    "account": t.account.id,
                    "root": t.account.root,
                    "path": t.path,
                    "variant": _variant_key(t.variant.file, t.layout) if t.variant else None,
                    "candidates": (
                        [_variant_key(name, t.layout) for name in by_file]
                        if t.unknown is not None
                        else []
                    ),
                    "uid": t.account.uid,
                    "gid": t.account.gid,
                    "php": t.php or t.account.php,
                    "php_binary": t.account.php_binary,
                    "apply": t.account.policy == "auto",
                }
                for t in chunk
            ],
        }

    min_php = effective_min_php(bundle)

    def work(session: AgentSession) -> list[tuple[str, str]]:
        finished: list[tuple[str, str]] = []
        if not options.dry_run:
            # NOTE: before any session of the host sends a batch (a stored scan: as before
            # the streaming; a streamed scan: once the host's first writing batch is known)
            prepare(session, feed.everything)
        # NOTE: an open feed's size is not known yet: every extra session is started
        helpers_n = (
            sessions if not feed.closed else min(sessions, -(-len(feed.everything) // batch_size))
        )
        helpers = [
            threading.Thread(target=extra_session, args=(finished,), daemon=True)
            for _ in range(helpers_n - 1)
        ]
        for thread in helpers:
            thread.start()
        try:
            run_batches(session, finished)
        finally:
            for thread in helpers:
                thread.join()
        return finished

    return work


def _settle_and_record(
    rec: _Recorder, checks: BatchChecks, got: list[Recorded], undo: Undo
) -> None:
    """Wait for a batch's health checks, undo what got worse, record the batch."""
    try:
        got = checks.finish(undo, got)
    finally:
        rec.results(got)


def _writes(t: _Target) -> bool:
    """Whether ``t`` may be applied (policy ``auto``): a batch holds up to ``--batch`` of
    these, the dry-run-only ones ride along."""
    return t.account.policy == "auto"


def _variant_key(file: str, layout: str) -> str:
    """The agent's name of a variant's patches as rewritten for one layout."""
    return f"{file}#{layout}" if layout else file


def _unreachable(rec: _Recorder, targets: list[_Target], error: str) -> None:
    for t in targets:
        rec.result(ResultRecord(**_base(t), outcome=Outcome.UNREACHABLE, detail=error))


def _start_run(
    ledger: Ledger,
    bundle: Bundle,
    options: RolloutOptions,
    resume_run: int | None,
    scan_id: int | None,
) -> tuple[int, bool, int | None, FailureGate]:
    """(run id, resumed?, scan id of the run if known, the run's failure gate)."""
    identity = options.identity()
    if resume_run is not None:
        run = ledger_runs.get_run(ledger, resume_run)
        if run.bundle_id != bundle.id or run.bundle_digest != bundle.manifest.digest:
            raise UsageError(
                f"run {resume_run} is of bundle {run.bundle_id} (digest {run.bundle_digest[:12]}),"
                f" not {bundle.id} (digest {bundle.manifest.digest[:12]})"
            )
        if run.status == RunStatus.FINISHED:
            raise UsageError(f"run {resume_run} has finished; start a new rollout instead")
        gate = _gate(ledger, run, options)
        ledger_runs.set_run_status(ledger, run.id, RunStatus.RUNNING)
        return run.id, True, run.scan_id, gate
    run = ledger_runs.find_unfinished_run(ledger, bundle.id, ledger_runs.options_key(identity))
    if (
        run is not None
        and run.bundle_digest == bundle.manifest.digest
        and scan_id in (None, run.scan_id)
    ):
        gate = _gate(ledger, run, options)
        ledger_runs.set_run_status(ledger, run.id, RunStatus.RUNNING)
        return run.id, True, run.scan_id, gate
    run_id = ledger_runs.create_run(
        ledger,
        bundle_id=bundle.id,
        bundle_digest=bundle.manifest.digest,
        dry_run=options.dry_run,
        scan_id=scan_id,
        options=identity,
    )
    return run_id, False, scan_id, _gate(ledger, None, options)


def _gate(ledger: Ledger, run: Any, options: RolloutOptions) -> FailureGate:
    """The failure gate of a new or resumed ``run``: a resumed run counts what it applied
    so far, a run continued past the gate counts afresh; a run the gate stopped is
    resumed only with ``--continue-past-gate``."""
    gate = FailureGate(
        max_rate=options.max_failure_rate,
        minimum=gate_minimum(options.canary),
        active=not options.dry_run and options.max_failure_rate < 1.0,
    )
    if run is None:
        return gate
    if run.status is RunStatus.GATE_STOPPED:
        if not options.continue_past_gate:
            raise UsageError(
                f"run {run.id} was stopped by the fleet failure gate; look at its failures "
                f"(patchd report {run.id}), then run the same command with "
                "--continue-past-gate to go on"
            )
        return gate
    # NOTE: outcome counts, not 50,000 result rows; a failed undo (error) is not told apart
    gate.count_summary(ledger_runs.summary(ledger, run.id))
    return gate


def run_rollout(
    bundle: Bundle,
    inventory: Inventory,
    ledger: Ledger,
    *,
    inventory_path: Path,
    options: RolloutOptions,
    scan_id: int | None = None,
    resume_run: int | None = None,
    progress: Progress | None = None,
    transports: dict[str, Transport] | None = None,
) -> RolloutReport:
    """Roll ``bundle`` out over the inventory's accounts in scope (see the module docstring)."""
    progress = progress or SilentProgress()
    with acquire_rollout_lock(ledger, bundle.id) as lock:
        run_id, resumed, run_scan_id, gate = _start_run(
            ledger, bundle, options, resume_run, scan_id
        )
        # NOTE: a second rollout of the bundle is refused with a message naming this run.
        lock.set_run(run_id)
        untested_targets: list[str] = []
        try:
            status = _execute(
                bundle,
                inventory,
                ledger,
                inventory_path,
                options,
                run_id,
                resumed,
                run_scan_id,
                progress,
                transports,
                untested_targets,
                gate,
            )
        except BaseException:
            ledger_runs.set_run_status(ledger, run_id, RunStatus.INTERRUPTED)
            raise
        ledger_runs.set_run_status(ledger, run_id, status)
    return RolloutReport(
        run_id,
        bundle.id,
        resumed,
        status,
        ledger_runs.summary(ledger, run_id),
        untested_targets,
        gate.describe() if status is RunStatus.GATE_STOPPED else None,
    )


def _execute(
    bundle: Bundle,
    inventory: Inventory,
    ledger: Ledger,
    inventory_path: Path,
    options: RolloutOptions,
    run_id: int,
    resumed: bool,
    scan_id: int | None,
    progress: Progress,
    transports: dict[str, Transport] | None,
    untested_targets: list[str],
    gate: FailureGate,
) -> RunStatus:
    accounts = {a.id: a for a in inventory.accounts if options.in_scope(a)}
    if not accounts:
        raise UsageError("no account of the inventory is in scope (check --limit)")
    if transports is None:
        used = {a.host for a in accounts.values()}
        transports = {h: transport_for(h, inventory.hosts[h]) for h in used}
    if scan_id is None and _streams(inventory, accounts):
        return _stream_and_roll_out(
            bundle,
            inventory,
            ledger,
            inventory_path,
            options,
            run_id,
            resumed,
            progress,
            transports,
            untested_targets,
            accounts,
            gate,
        )
    if scan_id is None:
        # NOTE: only the id is kept; the installations are read back from the ledger below
        # (holding both copies doubled the controller's memory on large fleets).
        scan_id = run_scan(
            inventory,
            ledger,
            inventory_path=inventory_path,
            only_accounts=set(accounts),
            transports=transports,
            parallel=options.parallel_hosts,
            keep_installations=False,
        ).scan_id
        ledger_runs.set_run_scan(ledger, run_id, scan_id)
    # NOTE: the agents of the first hosts start while the scan is read and matched.
    in_scope = sorted({a.host for a in accounts.values()} & set(transports))
    early = {h: EarlyTransport(transports[h]) for h in in_scope[: options.parallel_hosts]}
    try:
        return _match_and_roll_out(
            bundle,
            inventory,
            ledger,
            options,
            run_id,
            resumed,
            scan_id,
            progress,
            {**transports, **early},
            untested_targets,
            accounts,
            gate,
        )
    finally:
        for transport in early.values():
            transport.discard()


def _match_and_roll_out(
    bundle: Bundle,
    inventory: Inventory,
    ledger: Ledger,
    options: RolloutOptions,
    run_id: int,
    resumed: bool,
    scan_id: int,
    progress: Progress,
    transports: dict[str, Transport],
    untested_targets: list[str],
    accounts: dict[str, Account],
    gate: FailureGate,
) -> RunStatus:
    installations = ledger_scans.iter_match_rows(
        ledger, scan_id, with_extensions=needs_extensions(bundle)
    )
    errors = ledger_scans.scan_errors(ledger, scan_id)
    done = ledger_runs.done_installations(ledger, run_id)
    rec = _Recorder(ledger, run_id, progress, options.canary, gate)
    matching = _Matching(bundle, options, accounts, done, rec, untested_targets)
    per_host = matching.add(installations)
    errors_out, held = _scan_error_results(errors, accounts, done, matching.taken)
    pending_records = [r for r in matching.pending if (r.account, r.path) not in held]
    for targets in per_host.values():
        targets[:] = [t for t in targets if t.key not in held]
    recorded_early = matching.recorded_early
    site_paths = matching.site_paths
    pending_records.extend(errors_out)
    total = recorded_early.total() + len(pending_records)
    total += sum(len(v) for v in per_host.values())
    progress.start(total, f"rollout {bundle.id}")
    with contextlib.ExitStack() as stack:
        stack.callback(progress.finish)
        # NOTE: the counts of results stored while matching (the bar starts only now)
        for label, count in sorted(recorded_early.items()):
            progress.advance(count, label=label)
        rec.results([(r, ()) for r in pending_records])
        bundle_runs = [str(r.id) for r in ledger_runs.list_runs(ledger, bundle_id=bundle.id)]
        checker = _health_checker(options, (t.account for ts in per_host.values() for t in ts))
        if checker is not None:
            stack.callback(checker.close)
        health = None
        if checker is not None:
            health = HealthStep(checker, inventory.hosts, site_paths)
        works = {
            h: _host_work(
                bundle,
                TargetFeed(ts, closed=True),
                rec,
                options,
                _backup_dir(inventory, h, options),
                bundle_runs,
                transports[h],
                inventory.hosts[h].max_sessions,
                resumed,
                health,
            )
            for h, ts in per_host.items()
        }

        def dispatch(session: AgentSession) -> list[tuple[str, str]]:
            return works[session.host](session)

        outcome = run_per_host(
            {h: transports[h] for h in sorted(per_host)}, dispatch, parallel=options.parallel_hosts
        )
        for host, res in outcome.items():
            if isinstance(res, TransportError):
                finished = set(ledger_runs.done_installations(ledger, run_id, retry=()))
                left = [t for t in per_host[host] if t.key not in finished]
                _unreachable(rec, left, res.message)
        if gate.tripped:
            _gate_skipped(rec, per_host, gate)
            return RunStatus.GATE_STOPPED
    if options.canary is not None and rec.canary_reached():
        return RunStatus.CANARY_STOPPED
    return RunStatus.FINISHED


class _Matching:
    """Matches scan rows into results (stored at once, ``_RECORD_EARLY`` at a time) and
    targets by host; ``add`` may be called batch by batch from several threads."""

    def __init__(
        self,
        bundle: Bundle,
        options: RolloutOptions,
        accounts: dict[str, Account],
        done: Any,
        rec: _Recorder,
        untested_targets: list[str],
        *,
        advance: bool = False,
    ) -> None:
        self.bundle = bundle
        self.options = options
        self.accounts = accounts
        self.done = done
        self.rec = rec
        self.untested_targets = untested_targets
        self.advance = advance  # the progress bar runs already (a streamed rollout)
        self.pending: list[ResultRecord] = []
        self.recorded_early: Counter[str] = Counter()  # stored while matching, by outcome
        self.verdicts: dict[tuple[str | None, str | None], str | None] = {}
        self.seen: set[tuple[str, str]] = set()
        self.site_paths: dict[tuple[str, str], set[str]] = {}  # target -> its sites' paths
        #: (account, path) of every installation's result (issue 19: where error rows go)
        self.taken: set[tuple[str, str]] = set()
        self.matcher = Matcher(bundle)
        self.lock = threading.Lock()

    def untested(self, version: str | None, php: str | None) -> str | None:
        # NOTE: one tested.json lookup per (version, PHP), not per installation.
        if (version, php) not in self.verdicts:
            self.verdicts[(version, php)] = untested_reason(self.bundle, version, php)
        return self.verdicts[(version, php)]

    def add(self, installations: Any) -> dict[str, list[_Target]]:
        """Match ``installations`` (scan rows); the targets to dry-run, by host."""
        with self.lock:
            return self._add(installations)

    def _add(self, installations: Any) -> dict[str, list[_Target]]:
        per_host: dict[str, list[_Target]] = {}
        options = self.options
        for inst in installations:
            account = self.accounts.get(inst.account)
            if account is None:
                continue
            m = self.matcher.match(inst)
            t = _Target.of(m, account)
            if account.sites and inst.path != t.path:
                # NOTE: the health check fetches the URLs of every site using this source.
                self.site_paths.setdefault(t.key, set()).add(inst.path)
            self.taken.add(t.key)
            # NOTE: sites sharing one TYPO3 source folder are one target (patched once).
            if t.key in self.done or t.key in self.seen:
                continue
            self.seen.add(t.key)
            if m.kind == "not-affected":
                self.pending.append(
                    ResultRecord(**_base(t), outcome=Outcome.NOT_AFFECTED, detail=m.why)
                )
            elif m.kind == "no-variant":
                self.pending.append(_no_variant(t, m.why))
            elif m.unsafe is not None:
                self.pending.append(
                    ResultRecord(
                        **_base(t),
                        outcome=Outcome.DRY_RUN_FAILED,
                        reason=Reason.UNSAFE_PATH,
                        detail=f"unsafe-path: {m.unsafe}",
                    )
                )
            else:
                why = self.untested(t.version, t.php or account.php)
                if why is not None:
                    self.untested_targets.append(f"{account.id}:{t.path or '.'}: {why}")
                    if options.require_tested:
                        self.pending.append(
                            ResultRecord(
                                **_base(t),
                                outcome=Outcome.SKIPPED,
                                detail=f"untested configuration (--require-tested): {why}",
                            )
                        )
                        continue
                per_host.setdefault(account.host, []).append(t)
            if len(self.pending) >= _RECORD_EARLY:
                self.flush()
        return per_host

    def flush(self) -> None:
        """Store the results held so far (most of a large fleet is not affected)."""
        self.rec.results([(r, ()) for r in self.pending], advance=self.advance)
        if not self.advance:
            self.recorded_early.update(r.outcome.value for r in self.pending)
        self.pending = []


def _scan_error_results(
    errors: Iterable[Any],
    accounts: dict[str, Account],
    done: Any,
    taken: set[tuple[str, str]],
) -> tuple[list[ResultRecord], set[tuple[str, str]]]:
    """The results of the accounts a scan could not read (``error``) or reach (their host
    is ``unreachable``); a skipped folder inside an account is no account's result. Also
    the installations held back: a problem in an installation's own folder (a second CMS
    in it) with no other place for its row makes that row the error, and the installation
    is not rolled out (issue 19: never replaced by a result, never silent)."""
    error_rows: dict[tuple[str, str], ResultRecord] = {}
    held: set[tuple[str, str]] = set()
    for e in errors:
        if e.kind == "folder":
            continue  # a skipped folder inside an account; its installations were scanned
        for account in _accounts_of_error(e, accounts):
            key = (account.id, _error_path(account.id, e.message, taken, error_rows))
            if key in done:
                continue
            if key in taken and key not in error_rows:
                held.add(key)
            if key in error_rows:
                # NOTE: one row per account and path: an account's errors are joined.
                row = error_rows[key]
                error_rows[key] = row.model_copy(update={"detail": f"{row.detail}; {e.message}"})
                continue
            outcome = Outcome.UNREACHABLE if e.account is None else Outcome.ERROR
            error_rows[key] = ResultRecord(
                account=account.id,
                customer_id=account.customer.id,
                host=account.host,
                path=key[1],
                outcome=outcome,
                detail=f"scan: {e.message}",
                policy=account.policy,
            )
    return list(error_rows.values()), held


#: Accounts per ``scan`` request in a streamed rollout (a host's first dry runs start once
#: this many of its accounts are scanned; a plain scan asks for 500 at a time).
STREAM_SCAN_BATCH = 50


def _streams(inventory: Inventory, accounts: dict[str, Account]) -> bool:
    """Whether a rollout with its own scan streams it: every host in scope allows a second
    agent session (the scan keeps one, the rollout uses the others)."""
    return all(inventory.hosts[h].max_sessions >= 2 for h in {a.host for a in accounts.values()})


def _stream_and_roll_out(
    bundle: Bundle,
    inventory: Inventory,
    ledger: Ledger,
    inventory_path: Path,
    options: RolloutOptions,
    run_id: int,
    resumed: bool,
    progress: Progress,
    transports: dict[str, Transport],
    untested_targets: list[str],
    accounts: dict[str, Account],
    gate: FailureGate,
) -> RunStatus:
    """Scan and roll out as one stream per host (issue 18): each batch of a host's scan
    records is stored, matched, and its targets handed to the host's rollout session(s)
    while the scan of the host's next accounts goes on. The scan is stored in full, as
    ``patchd scan`` stores it; results are the same as against that scan stored first."""
    done = ledger_runs.done_installations(ledger, run_id)
    rec = _Recorder(ledger, run_id, progress, options.canary, gate)
    matching = _Matching(bundle, options, accounts, done, rec, untested_targets, advance=True)
    with_extensions = needs_extensions(bundle)
    hosts = sorted({a.host for a in accounts.values()})
    feeds: dict[str, TargetFeed[_Target]] = {h: TargetFeed() for h in hosts}

    def on_batch(host: str, records: list[Any], errors: list[Any]) -> None:
        found = matching.add(ledger_scans.match_rows_of(records, with_extensions=with_extensions))
        with matching.lock:
            # NOTE (issue 19): an installation whose own folder holds the account's scan
            # error is held back; its row is the error, recorded with the others below.
            _, held = _scan_error_results(errors, accounts, done, matching.taken)
            matching.pending = [r for r in matching.pending if (r.account, r.path) not in held]
            found = {h: [t for t in ts if t.key not in held] for h, ts in found.items()}
            matching.flush()
        for h, ts in found.items():
            feeds[h].put(ts)

    bundle_runs = [str(r.id) for r in ledger_runs.list_runs(ledger, bundle_id=bundle.id)]
    progress.start(None, f"scan and rollout {bundle.id}")
    with contextlib.ExitStack() as stack:
        stack.callback(progress.finish)
        checker = _health_checker(options, accounts.values())
        health = None
        if checker is not None:
            stack.callback(checker.close)
            health = HealthStep(checker, inventory.hosts, matching.site_paths)
        works = {
            h: _host_work(
                bundle,
                feeds[h],
                rec,
                options,
                _backup_dir(inventory, h, options),
                bundle_runs,
                transports[h],
                inventory.hosts[h].max_sessions - 1,  # the scan holds one
                resumed,
                health,
                roots=sorted({a.root for a in accounts.values() if a.host == h}),
            )
            for h in hosts
        }
        outcome = _stream(
            hosts,
            feeds,
            lambda h: run_on_host(transports[h], works[h]) if feeds[h].wait_any() else [],
            lambda: (
                run_scan(
                    inventory,
                    ledger,
                    inventory_path=inventory_path,
                    only_accounts=set(accounts),
                    transports=transports,
                    parallel=options.parallel_hosts,
                    keep_installations=False,
                    on_batch=on_batch,
                    on_host_done=lambda h: feeds[h].close(),
                    batch=STREAM_SCAN_BATCH,
                ).scan_id
            ),
            options.parallel_hosts,
        )
        ledger_runs.set_run_scan(ledger, run_id, outcome.scan_id)
        untested_targets.sort()
        errors = ledger_scans.scan_errors(ledger, outcome.scan_id)
        error_rows, _held = _scan_error_results(errors, accounts, done, matching.taken)
        rec.results([(r, ()) for r in error_rows])
        for host, res in outcome.hosts.items():
            if isinstance(res, TransportError):
                finished = set(ledger_runs.done_installations(ledger, run_id, retry=()))
                left = [t for t in feeds[host].everything if t.key not in finished]
                _unreachable(rec, left, res.message)
        if gate.tripped:
            _gate_skipped(rec, {h: f.everything for h, f in feeds.items()}, gate)
            return RunStatus.GATE_STOPPED
    if options.canary is not None and rec.canary_reached():
        return RunStatus.CANARY_STOPPED
    return RunStatus.FINISHED


def _gate_skipped(rec: _Recorder, per_host: dict[str, list[_Target]], gate: FailureGate) -> None:
    """Record every target the run did not get to as ``skipped`` by the ``gate``."""
    done = ledger_runs.done_installations(rec.ledger, rec.run_id, retry=())
    detail = gate.skipped_detail()
    rec.results(
        [
            (
                ResultRecord(
                    **_base(t), outcome=Outcome.SKIPPED, reason=Reason.GATE, detail=detail
                ),
                (),
            )
            for ts in per_host.values()
            for t in ts
            if t.key not in done
        ]
    )


def _health_checker(options: RolloutOptions, accounts: Iterable[Account]) -> HealthChecker | None:
    """The health checker of a rollout that writes into installations with URLs (of
    ``accounts``: those of the targets, or every account in scope of a streamed rollout)."""
    if options.dry_run or not options.health_check:
        return None
    if not any(a.sites for a in accounts):
        return None
    return HealthChecker(
        per_host=options.health_per_host,
        timeout=options.health_timeout,
        settle=options.health_settle,
    )


def _no_variant(t: _Target, detail: str) -> ResultRecord:
    """The result of an installation whose version is affected but has no variant: on the
    failure list (``dry-run-failed``, ``no-variant``), or ``skipped`` with that verdict
    when the account's policy forbids writing (its customer is told to update either way).
    """
    if t.account.policy != "auto":
        return ResultRecord(
            **_base(t),
            outcome=Outcome.SKIPPED,
            detail=skipped_detail(t.account.policy, Outcome.DRY_RUN_FAILED.value, detail),
        )
    return ResultRecord(
        **_base(t), outcome=Outcome.DRY_RUN_FAILED, reason=Reason.NO_VARIANT, detail=detail
    )


def _error_path(
    account: str,
    message: str,
    taken: set[tuple[str, str]],
    rows: dict[tuple[str, str], ResultRecord],
) -> str:
    """The result path of an account's scan error: the account root (``""``), unless an
    installation's result is recorded there; then the folder the message names
    (``FOLDER: ...``) when that is no installation's, else the account's first error row.

    NOTE (issue 19): the error row used to be written at ``""`` always, and the result of
    an installation in the account root replaced it: an ``unrecognised`` folder in such
    an account passed the rollout unseen. A problem in the root installation's own folder
    (a second CMS in it) as the account's first error gets that installation's path: the
    installation is then not rolled out (see the caller).
    """
    if (account, "") not in taken:
        return ""
    folder = message.partition(": ")[0]
    if folder and (account, folder) not in taken:
        return folder
    return next((path for acc, path in rows if acc == account), folder)


def _accounts_of_error(e: Any, accounts: dict[str, Account]) -> list[Account]:
    """The accounts in scope a scan error is about: one account, or all of a host."""
    if e.account is not None:
        return [accounts[e.account]] if e.account in accounts else []
    return [a for a in accounts.values() if a.host == e.host]


def _backup_dir(inventory: Inventory, host: str, options: RolloutOptions) -> str:
    if options.backup_dir:
        return options.backup_dir
    if host in options.host_backup_dirs:
        return options.host_backup_dirs[host]
    configured = getattr(inventory.hosts[host], "backup_dir", None)
    return str(configured) if configured else DEFAULT_BACKUP_DIR


__all__ = ["RolloutOptions", "RolloutReport", "run_rollout"]
