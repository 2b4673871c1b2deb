"""``patchd scan``: detect every installation in every account and store a dated snapshot.

The controller groups accounts by host, opens one agent session per host (hosts in
parallel), lets each host walk its accounts and stream one item per account back, then
asks the host to verify core files against registered releases. Everything lands in the
ledger as one scan; an unreachable host or an unreadable account is recorded as a scan
error and the scan goes on.
"""

from __future__ import annotations

import hashlib
import posixpath
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from patchd.agent.package import build_package
from patchd.errors import TransportError
from patchd.inventory import Account, Inventory
from patchd.ledger import releases as ledger_releases
from patchd.ledger import scans as ledger_scans
from patchd.ledger.db import Ledger
from patchd.ledger.models import (
    Extension,
    FileState,
    InstallationRecord,
    PatchedFile,
    ScanStatus,
)
from patchd.outcomes import Outcome
from patchd.progress import Progress, SilentProgress
from patchd.transport import AgentSession, Transport, transport_for
from patchd.transport.pool import run_per_host

#: Accounts sent to a host per ``scan`` request (bounds the agent's memory per request).
BATCH = 500


@dataclass(frozen=True)
class ScanError:
    """A host or an account that could not be scanned."""

    host: str
    account: str | None
    message: str
    kind: str = "account"  # host (unreachable) | account (unreadable) | folder (skipped)


@dataclass
class ScanResult:
    """What one scan found; also stored in the ledger under ``scan_id``."""

    scan_id: int
    installations: list[InstallationRecord] = field(default_factory=list)
    errors: list[ScanError] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` object of DESIGN.md (stable keys)."""
        return scan_json(self.scan_id, self.installations, self.errors)


def scan_json(
    scan_id: int, installations: Iterable[InstallationRecord], errors: Iterable[Any]
) -> dict[str, Any]:
    """DESIGN.md's scan JSON for stored or fresh results."""
    return {
        "scan": scan_id,
        "installations": [
            {
                "account": i.account,
                "host": i.host,
                "path": i.path,
                "cms": i.cms,
                "version": i.version,
                "version_error": i.version_error,
                "extensions": [e.model_dump() for e in i.extensions],
                "php": i.php,
                "php_source": i.php_source,
                "modified_files": list(i.modified_files),
                "patched_files": [{"path": p.path, "bundle": p.bundle} for p in i.patched_files],
                "facts": dict(i.facts),
            }
            for i in installations
        ],
        "errors": [
            {"host": e.host, "account": e.account, "message": e.message, "kind": e.kind}
            for e in errors
        ],
    }


def _account_request(account: Account, max_depth: int) -> dict[str, Any]:
    return {
        "id": account.id,
        "root": str(account.root),
        "docroots": list(account.docroots),
        "max_depth": max_depth,
        "php": account.php,
        "php_binary": account.php_binary,
    }


def _release_key(cms: str, version: str) -> str:
    return f"{cms}@{version}"


#: Where a host's work hands each batch's records and errors (the ledger, at once):
#: ``sink(host, records, errors)``.
Sink = Callable[[str, list[InstallationRecord], list["ScanError"]], None]


#: (account, installation path) -> file (relative to the installation) -> the post-images
#: of bundles patchd applied there, ``[(sha256, bundle id), ...]``.
PostImages = dict[tuple[str, str], dict[str, list[tuple[str, str]]]]


def _scan_host(
    host: str,
    accounts: Sequence[Account],
    max_depth: int,
    checksums: dict[str, dict[str, str]],
    post_images: PostImages,
    on_account: Callable[[], None],
    sink: Sink,
    batch: int = BATCH,
) -> Callable[[AgentSession], int]:
    """The work for one host: scan its accounts batch by batch, verify each batch's core
    files, and hand the batch's records to ``sink``; returns the accounts scanned.

    NOTE: batch by batch, so the controller never holds a whole host's scan (50,000
    installations as raw items plus records were most of its peak memory).
    """
    by_id = {a.id: a for a in accounts}

    def work(session: AgentSession) -> int:
        done = 0
        for start in range(0, len(accounts), batch):
            asked = [_account_request(a, max_depth) for a in accounts[start : start + batch]]
            items: list[dict[str, Any]] = []
            for item in session.call("scan", {"accounts": asked}):
                items.append(item)
                on_account()
            verified = _verify_batch(session, items, by_id, checksums, post_images)
            sink(host, *_records(host, by_id, items, verified))
            done += len(asked)
        return done

    return work


def _verify_batch(
    session: AgentSession,
    items: list[dict[str, Any]],
    accounts: dict[str, Account],
    checksums: dict[str, dict[str, str]],
    post_images: PostImages,
) -> dict[tuple[str, str], dict[str, Any]]:
    """Verify the core files of one batch's installations against registered releases
    (and the post-images of the bundles patchd applied to them)."""
    verified: dict[tuple[str, str], dict[str, Any]] = {}
    wanted: list[dict[str, Any]] = []
    known_of: dict[tuple[str, str], dict[str, list[tuple[str, str]]]] = {}
    by_folder: dict[tuple[str, str], list[str]] = defaultdict(list)
    sums: dict[str, dict[str, str]] = {}
    for it in items:
        for inst in it.get("installations", []):
            target = _verify_target(inst, checksums)
            if target is None:
                continue
            folder, key = target
            if key not in sums:
                sums[key] = _checksums_for(key, checksums)
            if (it["account"], folder) not in by_folder:
                account = it["account"]
                known_of[(account, folder)] = {}
                wanted.append(
                    {
                        "account": account,
                        "root": str(accounts[account].root),
                        "path": folder,
                        "key": key,
                        "known": known_of[(account, folder)],
                    }
                )
            by_folder[(it["account"], folder)].append(inst["path"])
            # NOTE: a rollout records a classic TYPO3 site's files under the source folder
            # it patched (patchd.rollout.match.source_folder), others under the site.
            for where in {inst["path"], folder}:
                _add_known(
                    known_of[(it["account"], folder)],
                    post_images.get((it["account"], where), {}),
                    where,
                    folder,
                )
    for start in range(0, len(wanted), BATCH):
        chunk = wanted[start : start + BATCH]
        for v in session.call("verify", {"checksums": sums, "installations": chunk}):
            # NOTE: several sites may share one TYPO3 source folder; each gets its result.
            for inst_path in by_folder.get((v["account"], v["path"]), []):
                verified[(v["account"], inst_path)] = v
    return verified


def _add_known(
    known: dict[str, list[tuple[str, str]]],
    images: dict[str, list[tuple[str, str]]],
    inst_path: str,
    folder: str,
) -> None:
    """Add an installation's post-images to ``known``, keyed relative to ``folder`` (the
    folder verified: the installation, or a TYPO3 site's shared source inside the account)."""
    for rel, pairs in images.items():
        full = posixpath.normpath(posixpath.join(inst_path, rel)) if inst_path else rel
        inside = posixpath.relpath(full, folder) if folder else full
        if inside == ".." or inside.startswith("../"):
            continue
        known.setdefault(inside, []).extend(p for p in pairs if p not in known[inside])


#: Suffix of a checksum key whose paths are mapped to the TYPO3 composer layout.
_COMPOSER = "#composer"


def _verify_target(
    inst: dict[str, Any], checksums: dict[str, dict[str, str]]
) -> tuple[str, str] | None:
    """(folder holding the core files, checksum key) for one installation, or None.

    NOTE: a classic TYPO3 site holds its core in the ``typo3_src`` target, not in its own
    folder, and a composer project holds it in ``vendor/typo3/cms-*``; verifying the site
    folder against the release tree would report every core file as missing.
    """
    if not inst.get("version"):
        return None
    key = _release_key(inst["cms"], inst["version"])
    if key not in checksums:
        return None
    facts = inst.get("facts") or {}
    if inst["cms"] != "typo3":
        return inst["path"], key
    if facts.get("layout") == "composer":
        return inst["path"], key + _COMPOSER
    target = facts.get("typo3_src_target")
    if target is None:
        return inst["path"], key
    if facts.get("typo3_src_outside") != "no" or target.startswith("/"):
        # NOTE: the hoster's shared source is outside the account: never read through it.
        return None
    folder = posixpath.normpath(posixpath.join(inst["path"], target))
    if folder == ".." or folder.startswith("../"):
        return None
    return ("" if folder == "." else folder), key


def _checksums_for(key: str, checksums: dict[str, dict[str, str]]) -> dict[str, str]:
    """The release checksums under ``key``; composer keys map ``typo3/sysext/X/...``."""
    if not key.endswith(_COMPOSER):
        return checksums[key]
    mapped: dict[str, str] = {}
    for rel, digest in checksums[key[: -len(_COMPOSER)]].items():
        parts = rel.split("/", 3)
        if len(parts) == 4 and parts[:2] == ["typo3", "sysext"]:
            mapped[f"vendor/typo3/cms-{parts[2]}/{parts[3]}"] = digest
    return mapped


def _records(
    host: str,
    accounts: dict[str, Account],
    items: list[dict[str, Any]],
    verified: dict[tuple[str, str], dict[str, Any]],
) -> tuple[list[InstallationRecord], list[ScanError]]:
    records: list[InstallationRecord] = []
    errors: list[ScanError] = []
    for item in items:
        account_id = item["account"]
        if item.get("error"):
            errors.append(ScanError(host, account_id, item["error"]))
            continue
        for problem in item.get("problems", []):
            errors.append(
                ScanError(
                    host, account_id, f"{problem.get('path', '')}: {problem.get('message', '')}"
                )
            )
        account = accounts[account_id]
        for inst in item.get("installations", []):
            v = verified.get((account_id, inst["path"]))
            modified: list[str] = []
            patched: list[PatchedFile] = []
            if v is not None:
                if v.get("error"):
                    errors.append(ScanError(host, account_id, f"verify: {v['error']}", "folder"))
                modified = sorted(v.get("modified", []) + v.get("missing", []))
                patched = sorted(
                    (PatchedFile(path=p["path"], bundle=p["bundle"]) for p in v.get("patched", [])),
                    key=lambda p: p.path,
                )
            records.append(
                InstallationRecord(
                    account=account_id,
                    host=host,
                    path=inst["path"],
                    cms=inst["cms"],
                    version=inst.get("version"),
                    version_error=inst.get("version_error"),
                    extensions=tuple(Extension(**e) for e in inst.get("extensions", [])),
                    php=item.get("php") or account.php,
                    php_source=item.get("php_source"),
                    modified_files=tuple(modified),
                    patched_files=tuple(patched),
                    facts=inst.get("facts", {}),
                )
            )
    return records, errors


def run_scan(
    inventory: Inventory,
    ledger: Ledger,
    *,
    inventory_path: Path,
    max_depth: int = 4,
    parallel: int = 8,
    integrity: bool = True,
    only_accounts: set[str] | None = None,
    progress: Progress | None = None,
    transports: dict[str, Transport] | None = None,
    keep_installations: bool = True,
    on_batch: Sink | None = None,
    on_host_done: Callable[[str], None] | None = None,
    batch: int = BATCH,
) -> ScanResult:
    """Scan the inventory's accounts on all hosts; store and return the result.

    Each host's records are stored batch by batch (``batch`` accounts per ``scan``
    request) as they come. ``keep_installations`` (for the ``scan`` command's output)
    reads them back into the result at the end; a rollout passes False and needs only the
    scan's id. A streamed rollout passes ``on_batch(host, records, errors)``, called from
    the host's thread right after each batch is stored, and ``on_host_done(host)``, called
    when a host's scan has ended (finished or failed).
    """
    progress = progress or SilentProgress()
    accounts = [a for a in inventory.accounts if only_accounts is None or a.id in only_accounts]
    by_host: dict[str, list[Account]] = defaultdict(list)
    for account in accounts:
        by_host[account.host].append(account)
    checksums = _registered_checksums(ledger) if integrity else {}
    post_images = applied_post_images(ledger) if checksums else {}
    digest = hashlib.sha256(inventory_path.read_bytes()).hexdigest()
    scan_id = ledger_scans.start_scan(
        ledger, inventory_path=str(inventory_path), inventory_sha256=digest, accounts=len(accounts)
    )
    if transports is None:
        transports = {name: transport_for(name, inventory.hosts[name]) for name in by_host}
    # NOTE: build the agent package here, once, before the host threads start: the first
    # concurrent calls of the (cached) builder run ast.parse in parallel, which CPython
    # 3.11 can fail with "AST constructor recursion depth mismatch".
    build_package()
    result = ScanResult(scan_id)

    def sink(host: str, records: list[InstallationRecord], errors: list[ScanError]) -> None:
        # NOTE: called from the host threads; the ledger serialises the writes.
        with ledger.transaction():
            ledger_scans.add_installations(ledger, scan_id, records)
            _store_errors(ledger, scan_id, errors)
        result.errors.extend(errors)
        if on_batch is not None:
            on_batch(host, records, errors)

    progress.start(len(accounts), "scan")
    try:
        outcome = _run(
            by_host,
            transports,
            max_depth,
            checksums,
            post_images,
            parallel,
            progress,
            sink,
            batch,
            on_host_done,
        )
    except BaseException:
        ledger_scans.finish_scan(ledger, scan_id, ScanStatus.FAILED)
        raise
    finally:
        progress.finish()
    for host, done in outcome.items():
        if isinstance(done, TransportError):
            # NOTE: batches stored before the connection dropped stay; the host's error
            # covers its accounts (the rollout records them unreachable).
            host_error = ScanError(host, None, done.message, "host")
            _store_errors(ledger, scan_id, [host_error])
            result.errors.append(host_error)
    ledger_scans.finish_scan(ledger, scan_id, ScanStatus.FINISHED)
    if keep_installations:
        result.installations = ledger_scans.scan_installations(ledger, scan_id)
    return result


def _store_errors(ledger: Ledger, scan_id: int, errors: Iterable[ScanError]) -> None:
    for e in errors:
        ledger_scans.add_scan_error(
            ledger, scan_id, host=e.host, account=e.account, message=e.message, kind=e.kind
        )


def _run(
    by_host: dict[str, list[Account]],
    transports: dict[str, Transport],
    max_depth: int,
    checksums: dict[str, dict[str, str]],
    post_images: PostImages,
    parallel: int,
    progress: Progress,
    sink: Sink,
    batch: int = BATCH,
    on_host_done: Callable[[str], None] | None = None,
) -> dict[str, int | TransportError]:
    # NOTE: run_per_host passes only the session; the session names its host.
    works = {
        h: _scan_host(h, accs, max_depth, checksums, post_images, progress.advance, sink, batch)
        for h, accs in by_host.items()
    }

    def dispatch(session: AgentSession) -> int:
        try:
            return works[session.host](session)
        finally:
            if on_host_done is not None:
                on_host_done(session.host)

    return run_per_host({h: transports[h] for h in by_host}, dispatch, parallel=parallel)


def _registered_checksums(ledger: Ledger) -> dict[str, dict[str, str]]:
    sums: dict[str, dict[str, str]] = {}
    for release in ledger_releases.list_releases(ledger):
        files = ledger_releases.release_checksums(ledger, release.cms, release.version)
        if files:
            sums[_release_key(release.cms, release.version)] = files
    return sums


def applied_post_images(ledger: Ledger) -> PostImages:
    """The post-image of every file patchd patched and has not rolled back, by
    installation: from the ledger's touched files of results that are ``patched`` now
    (a rolled-back or restored file is no longer patchd's)."""
    out: PostImages = {}
    for r in ledger.query(
        "SELECT t.account, t.path, t.file, t.post_sha256, r.bundle_id FROM touched_files t "
        "JOIN results x ON x.run_id = t.run_id AND x.account = t.account AND x.path = t.path "
        "JOIN runs r ON r.id = t.run_id "
        "WHERE x.outcome = ? AND t.state IN (?, ?) AND t.post_sha256 IS NOT NULL",
        (Outcome.PATCHED.value, FileState.VERIFIED.value, FileState.REPLACED.value),
    ):
        pairs = out.setdefault((r["account"], r["path"]), {}).setdefault(r["file"], [])
        pair = (r["post_sha256"], r["bundle_id"])
        if pair not in pairs:
            pairs.append(pair)
    return out
