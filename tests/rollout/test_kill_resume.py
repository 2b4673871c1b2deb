"""Kill ``patchd rollout`` at random points and at every fault point, resume, check the disk.

After every kill and resume each installation must be fully patched or byte-identical to
its original, none may be patched twice, and the ledger's results must agree with the
disk. Two rollouts of one bundle at once: the second is refused naming the first.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import sqlite3
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest

from patchd.ledger import runs as ledger_runs
from patchd.ledger.db import open_ledger
from patchd.patcher import journal as jr
from patchd.patcher.faults import FAULT_POINTS
from patchd_fixtures.fleet import generate_fleet
from tests.e2e import kit

ACCOUNTS = 40
BUNDLE_ID = "wp-2024-comment-xss"


class Fleet:
    """One generated fleet with its bundle, ledger, backup store and ground truth."""

    def __init__(self, base: Path, bundle: Path) -> None:
        self.base = base
        generate_fleet(base / "fleet", ACCOUNTS, hosts=["web01", "web02"])
        self.inventory = base / "fleet" / "accounts.yaml"
        self.bundle = bundle
        self.ledger = base / "ledger.db"
        self.backups = base / "backups"
        self.backups.mkdir(mode=0o700)
        self.expected = kit.expected_verdicts(base / "fleet" / "expected.json")
        self.roots = {
            a["id"]: Path(a["root"])
            for a in json.loads(
                json.dumps(__import__("yaml").safe_load(self.inventory.read_text()))
            )["accounts"]
        }
        self.before = kit.snapshot(base / "fleet" / "accounts")

    def args(self, *extra: str) -> list[str]:
        return [
            "rollout", str(self.bundle), "--accounts", str(self.inventory),
            "--backup-dir", str(self.backups), "--yes", "--json", "--batch", "1", *extra,
        ]  # fmt: skip

    def last_run(self) -> int | None:
        if not self.ledger.exists():
            return None
        with open_ledger(self.ledger) as ledger:
            runs = ledger_runs.list_runs(ledger, bundle_id=BUNDLE_ID)
        return max((r.id for r in runs), default=None)

    def history(self, acct: str, path: str) -> list[str]:
        """What the ledger and the backup store say about one installation (for messages)."""
        lines = []
        with open_ledger(self.ledger) as ledger:
            for run in ledger_runs.list_runs(ledger, bundle_id=BUNDLE_ID):
                for r in ledger_runs.results(ledger, run.id, account=acct):
                    if r.path == path:
                        lines.append(f"run {run.id} ({run.status}): {r.outcome} {r.detail}")
        for entry in jr.find_journals(str(self.backups)):
            j = jr.load_journal(entry)
            if j.root == str(self.roots[acct]) and j.inst == path:
                lines.append(f"journal {entry}: {j.state}")
        return lines

    def check(self) -> None:
        """Every installation fully patched or original; ledger agrees; none patched twice."""
        after = kit.snapshot(self.base / "fleet" / "accounts")
        assert set(after) == set(self.before)
        patched_keys = {k for k, v in self.expected.items() if v[0] == "patched"}
        for (acct, path), verdict in self.expected.items():
            inst = f"{acct}/{path}/" if path else f"{acct}/"
            files = [f"{inst}{rel}" for rel in kit.WP_FILES]
            changed = [f for f in files if f in after and after[f] != self.before[f]]
            if (acct, path) in patched_keys:
                for rel in kit.WP_FILES:
                    assert (self.roots[acct] / path / rel).read_bytes() == kit.post_image(rel), (
                        acct, path, rel, verdict, self.history(acct, path))  # fmt: skip
            else:
                assert changed == [], (acct, path, verdict)
        allowed = {
            f"{a}/{p}/{r}" if p else f"{a}/{r}" for a, p in patched_keys for r in kit.WP_FILES
        }
        assert {k for k in self.before if after[k] != self.before[k]} <= allowed
        with open_ledger(self.ledger) as ledger:
            runs = ledger_runs.list_runs(ledger, bundle_id=BUNDLE_ID)
            last = ledger_runs.results(ledger, max(r.id for r in runs))
            patched_count = Counter(
                (r.account, r.path)
                for run in runs
                for r in ledger_runs.results(ledger, run.id, outcome="patched")
            )
        final = {(r.account, r.path): (r.outcome.value, r.reason and r.reason.value) for r in last}
        for key, verdict in self.expected.items():
            got = final[key]
            if verdict[0] == "patched":
                assert got[0] in ("patched", "already-patched"), (key, got)
            else:
                assert got == verdict, (key, got)
        assert all(n == 1 for n in patched_count.values()), patched_count
        assert set(patched_count) <= patched_keys
        done = Counter()
        for entry in jr.find_journals(str(self.backups)):
            j = jr.load_journal(entry)
            if j.state == "done":
                done[(j.root, j.inst)] += 1
            else:
                assert j.state in jr.FINAL_STATES, (entry, j.state)
        assert all(n == 1 for n in done.values()), done


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return kit.build_bundle(tmp_path_factory.mktemp("bundle") / "b", bundle_id=BUNDLE_ID)


def _kill_group_and_wait(proc: subprocess.Popen[str]) -> None:
    # NOTE: a fast machine may finish the rollout before the kill lands; resume then
    # has nothing to do, which the checks afterwards accept as well.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.02)
    raise AssertionError("processes of the killed rollout are still running")


def _wait_for_patched(ledger: Path, n: int, proc: subprocess.Popen[str]) -> None:
    """Wait until the ledger holds ``n`` more patched results (or the process ended)."""
    start = _patched_rows(ledger)
    deadline = time.monotonic() + 30
    while proc.poll() is None and time.monotonic() < deadline:
        if _patched_rows(ledger) >= start + n:
            return
        time.sleep(0.005)


def _patched_rows(ledger: Path) -> int:
    if not ledger.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{ledger}?mode=ro", uri=True, timeout=5) as db:
            return int(
                db.execute("SELECT COUNT(*) FROM results WHERE outcome = 'patched'").fetchone()[0]
            )
    except sqlite3.OperationalError:  # not migrated yet
        return 0


def _resume(fleet: Fleet, how: str) -> kit.CliResult:
    run = fleet.last_run()
    if how == "resume" and run is not None:
        with open_ledger(fleet.ledger) as ledger:
            status = ledger_runs.get_run(ledger, run).status.value
        if status != "finished":
            res = kit.patchd_process(fleet.ledger, *fleet.args("--resume", str(run)))
            assert res.code in (0, 1), res.err
            return res
    res = kit.patchd_process(fleet.ledger, *fleet.args())
    assert res.code in (0, 1), res.err
    return res


@pytest.mark.slow
@pytest.mark.parametrize("iteration", range(4))
def test_sigkill_at_random_points_then_resume(iteration: int, bundle: Path, tmp_path: Path) -> None:
    fleet = Fleet(tmp_path, bundle)
    rng = random.Random(1000 + iteration)
    # NOTE: the controller needs ~0.4 s to start and scan; the rollout of 40 accounts
    # with --batch 1 takes ~1 s more, so these delays land before, in and after applying.
    # The first kill after a random delay, the second once the ledger holds a random number
    # of patched results (so at least one kill lands in the middle of applying).
    for kill_after in (rng.uniform(0.3, 1.8), rng.randint(1, 8)):
        proc = subprocess.Popen(
            kit.patchd_argv(fleet.ledger, *fleet.args()),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            text=True,
        )
        if isinstance(kill_after, float):
            time.sleep(kill_after)
        else:
            _wait_for_patched(fleet.ledger, kill_after, proc)
        _kill_group_and_wait(proc)
    res = _resume(fleet, "resume" if iteration % 2 == 0 else "again")
    assert res.out.startswith("{"), res.err
    assert json.loads(res.out)["status"] == "finished"
    fleet.check()
    # A second rollout afterwards changes nothing.
    snap = kit.snapshot(tmp_path / "fleet" / "accounts")
    again = kit.patchd_process(fleet.ledger, *fleet.args())
    assert "patched" not in json.loads(again.out)["summary"]
    assert kit.snapshot(tmp_path / "fleet" / "accounts") == snap


@pytest.mark.slow
@pytest.mark.parametrize("point", FAULT_POINTS)
def test_agent_dies_at_fault_point_then_resume(point: str, bundle: Path, tmp_path: Path) -> None:
    fleet = Fleet(tmp_path, bundle)
    crashed = kit.patchd_process(fleet.ledger, *fleet.args(), env={"PATCHD_FAULT": point})
    data = json.loads(crashed.out)
    assert data["summary"].get("unreachable", 0) > 0, data["summary"]
    assert "agent exited with status 137" in json.dumps(data["results"])
    _resume(fleet, "again")
    fleet.check()


def test_second_rollout_of_the_same_bundle_is_refused(bundle: Path, tmp_path: Path) -> None:
    fleet = Fleet(tmp_path, bundle)
    # NOTE: a php_binary that takes its time keeps the first rollout in its dry runs.
    slow_php = tmp_path / "slow-php"
    slow_php.write_text('#!/bin/sh\nsleep 2\nexec /usr/bin/php "$@"\n')
    slow_php.chmod(0o755)
    inv = __import__("yaml").safe_load(fleet.inventory.read_text())
    for a in inv["accounts"]:
        a["php_binary"] = str(slow_php)
    kit.write_inventory(fleet.inventory, inv["hosts"], inv["accounts"])
    first = subprocess.Popen(
        kit.patchd_argv(fleet.ledger, *fleet.args()),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while fleet.last_run() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        run = fleet.last_run()
        assert run is not None
        time.sleep(0.2)
        second = kit.patchd(fleet.ledger, *fleet.args())
        assert first.poll() is None, "the first rollout finished too early for this test"
        assert second.code == 2
        assert f"already being rolled out by run {run}" in second.err
        assert f"pid {first.pid}" in second.err
    finally:
        _kill_group_and_wait(first)
