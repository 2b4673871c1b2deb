"""A rollout with its own scan is one stream per host (issue 18, item 2): an account's
installations are matched and dry-run while the rest of the host is still being scanned;
verdicts and resulting bytes equal those of a rollout against a stored scan of the same
fleet; the ledger holds the full scan. Locally and over a loopback sshd."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest
import yaml

from patchd.bundle.manifest import load_bundle
from patchd.inventory import load_inventory
from patchd.ledger import runs as ledger_runs
from patchd.ledger import scans as ledger_scans
from patchd.ledger.db import open_ledger
from patchd.rollout.run import STREAM_SCAN_BATCH, RolloutOptions, run_rollout
from patchd.scanner import run_scan
from patchd.transport import transport_for
from patchd.transport.interface import AgentSession, Transport
from tests.e2e import kit

ACCOUNTS = 4 * STREAM_SCAN_BATCH


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return kit.build_bundle(tmp_path_factory.mktemp("bundle") / "b", bundle_id="wp-stream")


def _fleet(base: Path, host: dict[str, Any] | None, max_sessions: int | None = None) -> Path:
    """The fixture fleet (seed 5, one host ``web01``); ``host``: its inventory entry."""
    subprocess.run(
        [sys.executable, "-m", "patchd_fixtures.fleet", "--accounts", str(ACCOUNTS), "--out",
         str(base), "--hosts", "web01", "--seed", "5"],
        check=True, capture_output=True,
    )  # fmt: skip
    inv = yaml.safe_load((base / "accounts.yaml").read_text())
    if host is not None:
        inv["hosts"]["web01"] = dict(host)
    if max_sessions is not None:
        inv["hosts"]["web01"]["max_sessions"] = max_sessions
    (base / "accounts.yaml").write_text(yaml.safe_dump(inv, sort_keys=False))
    return base


class Watched(Transport):
    """A transport whose sessions log every op. The scan request holding the host's last
    account waits for a ``rollout`` request to have started (``wait``; bounded by 60 s
    only so that a broken stream fails instead of hanging), or just notes whether one has."""

    def __init__(self, inner: Transport, last_account: str, *, wait: bool) -> None:
        self.inner = inner
        self.host = "web01"
        self.last_account = last_account
        self.wait = wait
        self.log: list[str] = []
        self.rolled = threading.Event()
        self.rolled_before_last_scan: bool | None = None
        self.lock = threading.Lock()

    def open(self) -> AgentSession:
        session = self.inner.open()
        real = session.call

        def call(op: str, args: dict[str, Any] | None = None) -> Generator[Any, None, Any]:
            ids = [a["id"] for a in (args or {}).get("accounts", [])]
            if op == "scan" and self.last_account in ids:
                if self.wait:
                    self.rolled_before_last_scan = self.rolled.wait(60)
                else:
                    self.rolled_before_last_scan = self.rolled.is_set()
            if op == "rollout":
                self.rolled.set()
            with self.lock:
                self.log.append(op)
            return (yield from real(op, args))

        session.call = call  # type: ignore[method-assign]
        return session


Results = dict[tuple[str, str], tuple[str, Any, Any, str]]


def _results(ledger: Any, run_id: int) -> Results:
    return {
        (r.account, r.path): (r.outcome.value, r.reason, r.variant, r.detail)
        for r in ledger_runs.results(ledger, run_id)
    }


def _stored_rollout(fleet: Path, bundle: Path, ledger_path: Path) -> Results:
    """The same rollout against a stored scan (scan first, then ``--scan ID``)."""
    inventory = load_inventory(fleet / "accounts.yaml")
    with open_ledger(ledger_path) as ledger:
        scan = run_scan(inventory, ledger, inventory_path=fleet / "accounts.yaml")
        report = run_rollout(
            load_bundle(bundle),
            inventory,
            ledger,
            inventory_path=fleet / "accounts.yaml",
            options=RolloutOptions(backup_dir=str(fleet / "backups")),
            scan_id=scan.scan_id,
        )
        return _results(ledger, report.run_id)


def _check_stream(
    bundle: Path, tmp_path: Path, host: dict[str, Any] | None, max_sessions: int | None
) -> None:
    fleet = _fleet(tmp_path / "fleet", host, max_sessions)
    inventory = load_inventory(fleet / "accounts.yaml")
    last = inventory.accounts[-1].id
    streams = max_sessions is None or max_sessions > 1
    # with a single session allowed, the scan keeps it: no rollout before the scan ends
    watched = Watched(transport_for("web01", inventory.hosts["web01"]), last, wait=streams)
    with open_ledger(tmp_path / "ledger.db") as ledger:
        report = run_rollout(
            load_bundle(bundle),
            inventory,
            ledger,
            inventory_path=fleet / "accounts.yaml",
            options=RolloutOptions(backup_dir=str(fleet / "backups")),
            transports={"web01": watched},
        )
        run = ledger_runs.get_run(ledger, report.run_id)
        assert run.scan_id is not None
        scan = ledger_scans.get_scan(ledger, run.scan_id)
        stored = ledger_scans.scan_installations(ledger, run.scan_id)
        got = _results(ledger, report.run_id)
    scans = watched.log.count("scan")
    last_scan = len(watched.log) - 1 - watched.log[::-1].index("scan")
    if streams:
        assert scans == ACCOUNTS // STREAM_SCAN_BATCH
        assert watched.rolled_before_last_scan is True, watched.log
        assert watched.log.index("rollout") < last_scan
    else:
        assert watched.rolled_before_last_scan is False
        assert watched.log.index("rollout") > last_scan
    # the ledger holds the full scan: every installation of the fleet, scan finished
    truth = kit.expected_verdicts(fleet / "expected.json")
    assert scan.status.value == "finished"
    assert {(i.account, i.path) for i in stored} == set(truth)
    assert {k: v[:2] for k, v in got.items()} == truth
    # exactly what a rollout against a stored scan of an identical fleet gives, to the byte
    other = _fleet(tmp_path / "fleet2", host, max_sessions)
    assert got == _stored_rollout(other, bundle, tmp_path / "ledger2.db")
    assert kit.snapshot(fleet / "accounts") == kit.snapshot(other / "accounts")
    patched = [k for k, v in got.items() if v[0] == "patched"]
    assert patched
    for acct, path in patched:
        assert kit.wp_state(fleet / "accounts" / acct / path) == "post"


@pytest.mark.parametrize("max_sessions", [None, 1])
def test_local_host_scans_and_rolls_out_as_one_stream(
    bundle: Path, tmp_path: Path, max_sessions: int | None
) -> None:
    _check_stream(bundle, tmp_path, None, max_sessions)


def test_ssh_host_scans_and_rolls_out_as_one_stream(
    bundle: Path, tmp_path: Path, sshd_hosts: list[Any]
) -> None:
    _check_stream(bundle, tmp_path, kit.ssh_host_entry(sshd_hosts[0]), None)
