"""The rollout lock across processes: one holder, clear refusal, dead holders taken over."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from patchd.errors import LedgerError
from patchd.ledger import Ledger
from patchd.ledger.locks import acquire_rollout_lock, lock_path

REPO = Path(__file__).resolve().parents[2]

# A holder: takes the lock for run 17, says "locked", then waits for a line on stdin.
HOLDER = """
import sys
from pathlib import Path
from patchd.ledger import open_ledger
from patchd.ledger.locks import acquire_rollout_lock
from patchd.errors import LedgerError
led = open_ledger(Path(sys.argv[1]))
try:
    lock = acquire_rollout_lock(led, sys.argv[2], run_id=17)
except LedgerError as exc:
    print("refused", exc, flush=True)
    sys.exit(3)
print("locked", flush=True)
sys.stdin.readline()
lock.release()
print("released", flush=True)
"""


def _holder(ledger: Ledger, bundle: str = "wp-2024-001") -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(ledger.path), bundle],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    return proc


def test_second_process_is_refused_naming_run_and_pid(ledger: Ledger) -> None:
    proc = _holder(ledger)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
        with pytest.raises(LedgerError) as info:
            acquire_rollout_lock(ledger, "wp-2024-001")
        message = str(info.value)
        assert "already being rolled out by run 17" in message
        assert f"pid {proc.pid}" in message
        # another bundle is independent
        with acquire_rollout_lock(ledger, "t3-2024-002") as other:
            assert other.held
        proc.stdin.write("\n")
        proc.stdin.flush()
        assert proc.stdout.readline().strip() == "released"
        assert proc.wait(timeout=30) == 0
        with acquire_rollout_lock(ledger, "wp-2024-001") as lock:
            assert lock.held
    finally:
        proc.kill()
        proc.wait()


def test_lock_of_killed_process_is_taken_over(ledger: Ledger) -> None:
    proc = _holder(ledger)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert "17" in lock_path(ledger, "wp-2024-001").read_text()  # stale note left behind
    with acquire_rollout_lock(ledger, "wp-2024-001") as lock:
        assert lock.held
        lock.set_run(23)
        assert '"run_id": 23' in lock.path.read_text()
        assert f'"pid": {os.getpid()}' in lock.path.read_text()


def test_concurrent_acquisition_exactly_one_wins(ledger: Ledger) -> None:
    procs = [_holder(ledger, "race") for _ in range(3)]
    try:
        first = [p.stdout.readline().split()[0] for p in procs]  # type: ignore[union-attr]
        assert sorted(first) == ["locked", "refused", "refused"]
        for p in procs:
            if p.stdin and p.poll() is None:
                p.stdin.write("\n")
                p.stdin.flush()
        assert sorted(p.wait(timeout=30) for p in procs) == [0, 3, 3]
    finally:
        for p in procs:
            p.kill()
            p.wait()


def test_same_process_cannot_take_it_twice(ledger: Ledger) -> None:
    lock = acquire_rollout_lock(ledger, "wp-2024-001", run_id=5)
    with pytest.raises(LedgerError, match=f"run 5 pid {os.getpid()}"):
        acquire_rollout_lock(ledger, "wp-2024-001")
    lock.release()
    lock.release()  # idempotent
    assert not lock.held
    acquire_rollout_lock(ledger, "wp-2024-001").release()


def test_lock_file_is_private_and_name_is_safe(ledger: Ledger) -> None:
    path = lock_path(ledger, "../../etc/passwd")
    assert path.parent == ledger.path.parent / "locks"
    assert ".." not in path.name and "/" not in path.name
    assert lock_path(ledger, "a/b") != lock_path(ledger, "a_b")
    with acquire_rollout_lock(ledger, "../../etc/passwd") as lock:
        assert lock.path == path
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700


def test_symlinked_lock_file_is_refused(ledger: Ledger, tmp_path: Path) -> None:
    path = lock_path(ledger, "wp-2024-001")
    path.parent.mkdir(mode=0o700, exist_ok=True)
    target = tmp_path / "victim"
    target.write_text("keep me")
    path.symlink_to(target)
    with pytest.raises(LedgerError, match="cannot open lock file"):
        acquire_rollout_lock(ledger, "wp-2024-001")
    assert target.read_text() == "keep me"
