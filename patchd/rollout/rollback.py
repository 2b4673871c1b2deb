"""``patchd rollback RUN``: restore the backed-up originals of a run, exactly.

Each patched installation's journal (kept in the ledger's result row) is sent to its
host, which restores every file that still holds the post-image and verifies the
restored pre-image hash; a file changed since the patch is left alone and reported.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from patchd.errors import LedgerError, TransportError, UsageError
from patchd.inventory import Account, Inventory
from patchd.ledger import runs as ledger_runs
from patchd.ledger.db import Ledger
from patchd.ledger.models import FileState, Result
from patchd.outcomes import Outcome, Reason
from patchd.progress import Progress, SilentProgress
from patchd.transport import AgentSession, Transport, transport_for
from patchd.transport.pool import run_per_host


@dataclass(frozen=True)
class RollbackItem:
    """The rollback of one installation."""

    account: str
    host: str
    path: str
    ok: bool
    detail: str
    conflicts: tuple[str, ...] = ()


def rollback_run(
    ledger: Ledger,
    inventory: Inventory,
    run_id: int,
    *,
    account: str | None = None,
    parallel: int = 8,
    progress: Progress | None = None,
    transports: dict[str, Transport] | None = None,
) -> list[RollbackItem]:
    """Roll back every patched installation of ``run_id`` (of one ``account``)."""
    progress = progress or SilentProgress()
    ledger_runs.get_run(ledger, run_id)
    patched = [
        r
        for r in ledger_runs.results(ledger, run_id, account=account)
        if r.journal and _to_undo(ledger, run_id, r)
    ]
    if not patched:
        what = f"account {account} in run {run_id}" if account else f"run {run_id}"
        raise UsageError(f"{what} patched nothing; nothing to roll back")
    accounts = {a.id: a for a in inventory.accounts}
    by_host: dict[str, list[Result]] = defaultdict(list)
    for r in patched:
        if r.account not in accounts:
            raise UsageError(f"account {r.account} of run {run_id} is not in the inventory")
        by_host[r.host].append(r)
    if transports is None:
        transports = {h: transport_for(h, inventory.hosts[h]) for h in by_host}
    progress.start(len(patched), f"rollback run {run_id}")

    def work(session: AgentSession) -> list[dict[str, Any]]:
        rows = by_host[session.host]
        args = {
            "installations": [
                undo_request(accounts[r.account], r.path, r.journal or "") for r in rows
            ]
        }
        out = []
        for item in session.call("rollback", args):
            out.append(item)
            progress.advance(label="restored" if item.get("ok") else "conflict")
        return out

    try:
        outcome = run_per_host({h: transports[h] for h in by_host}, work, parallel=parallel)
    finally:
        progress.finish()
    items: list[RollbackItem] = []
    for host, res in outcome.items():
        if isinstance(res, TransportError):
            items.extend(
                RollbackItem(r.account, host, r.path, False, f"unreachable: {res.message}")
                for r in by_host[host]
            )
            continue
        for it in res:
            conflicts = tuple(
                f["path"] for f in it.get("files", []) if f.get("status") in ("conflict", "failed")
            )
            items.append(
                RollbackItem(
                    it["account"],
                    host,
                    it["path"],
                    bool(it.get("ok")),
                    it.get("detail", ""),
                    conflicts,
                )
            )
            _mark_files(ledger, run_id, it)
            _mark_result(ledger, run_id, it)
    return items


def undo_request(account: Account, path: str, journal: str) -> dict[str, Any]:
    """The agent's ``rollback`` request entry restoring one installation from ``journal``
    (also used by the health check to undo an apply at once)."""
    return {
        "account": account.id,
        "root": account.root,
        "path": path,
        "journal": journal,
        "uid": account.uid,
        "gid": account.gid,
    }


def _to_undo(ledger: Ledger, run_id: int, r: Result) -> bool:
    """Whether rollback acts on ``r``: patched, an installation the health check could not
    undo (``error``, ``health-check``), or rolled back with files left in conflict (a
    second rollback, after the operator resolved them, restores the rest)."""
    if r.outcome is Outcome.PATCHED:
        return True
    if r.outcome is Outcome.ERROR and r.reason is Reason.HEALTH_CHECK:
        return True
    if r.outcome is not Outcome.ROLLED_BACK:
        return False
    files = ledger_runs.touched_files(ledger, run_id, r.account)
    return any(f.path == r.path and f.state is FileState.ROLLBACK_CONFLICT for f in files)


def _mark_result(ledger: Ledger, run_id: int, item: dict[str, Any]) -> None:
    """Record the installation as ``rolled-back`` once any file of it holds its original
    again: the fix is then no longer whole, whatever conflicts are left."""
    files = item.get("files", [])
    restored = [f for f in files if f.get("status") not in ("conflict", "failed")]
    if not restored:
        return
    conflicts = [f["path"] for f in files if f.get("status") in ("conflict", "failed")]
    detail = f"rolled back {len(restored)} file(s) with patchd rollback (was patched)"
    if conflicts:
        detail += "; left as changed since the patch: " + ", ".join(conflicts)
    ledger_runs.mark_rolled_back(ledger, run_id, item["account"], item["path"], detail)


def _mark_files(ledger: Ledger, run_id: int, item: dict[str, Any]) -> None:
    """Move the run's touched files to rolled-back / rollback-conflict."""
    for f in item.get("files", []):
        status = f.get("status")
        state = (
            FileState.ROLLBACK_CONFLICT
            if status in ("conflict", "failed")
            else FileState.ROLLED_BACK
        )
        try:
            ledger_runs.update_touched_file_state(
                ledger, run_id, item["account"], item["path"], f["path"], state
            )
        except LedgerError:  # a file the ledger never recorded
            continue
