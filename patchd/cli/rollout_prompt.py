"""What ``patchd rollout`` asks before writing: the bundle, the accounts in scope and the
installations that will be dry-run (issue 17: the prompt did not say how many)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from patchd.bundle.manifest import Bundle
from patchd.cms.names import proper_name
from patchd.inventory import Inventory
from patchd.ledger import scans as ledger_scans
from patchd.ledger.backup_store import describe_stores
from patchd.ledger.db import Ledger
from patchd.rollout.match import Matcher
from patchd.rollout.run import RolloutOptions


def _installations(bundle: Bundle, ledger: Ledger, scan_id: int | None, accounts: set[str]) -> str:
    """How many installations the bundle matches, from ``scan_id`` or the newest scan."""
    scan = (
        ledger_scans.get_scan(ledger, scan_id)
        if scan_id is not None
        else ledger_scans.latest_scan(ledger)
    )
    if scan is None:
        return "installations: none scanned yet (the rollout scans these accounts first)"
    matcher = Matcher(bundle)
    count = sum(
        1
        for inst in ledger_scans.scan_installations(ledger, scan.id)
        if inst.account in accounts and matcher.match(inst).checked_on_host
    )
    again = "" if scan_id is not None else "; the rollout scans them again first"
    return f"installations to dry-run: {count} (per scan {scan.id}{again})"


def rollout_question(
    bundle: Bundle,
    inventory: Inventory,
    options: RolloutOptions,
    ledger: Ledger,
    *,
    accounts_file: Path,
    scan_id: int | None,
    stores: Mapping[str, str],
) -> str:
    """The confirmation question, one fact per line."""
    m = bundle.manifest
    accounts = [a for a in inventory.accounts if options.in_scope(a)]
    auto = sum(1 for a in accounts if a.policy == "auto")
    hosts = sorted({a.host for a in accounts})
    lines = [
        f"bundle: {m.id} ({proper_name(m.cms)} {m.component}, affected {m.affected})",
        f"accounts: {len(accounts)} of {accounts_file} on {len(hosts)} host(s) "
        f"({auto} with policy auto are written to; the others are only dry-run)",
        _installations(bundle, ledger, scan_id, {a.id for a in accounts}),
        f"backups: {describe_stores(dict(stores), hosts)}",
    ]
    if options.canary is not None:
        lines.append(f"canary: stops after {options.canary} patched installation(s)")
    return "\n".join(lines) + "\nRoll out, writing where the dry run succeeds?"
