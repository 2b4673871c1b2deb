"""The session's worker (patchd.patcher.batch.session_pool): inside an agent session the
thread mode keeps one worker for every batch instead of forking one per batch; the
guarantees of the per-batch worker hold for every job of every batch."""

from __future__ import annotations

import functools
import os
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from patchd.patcher import batch
from patchd.patcher.batch import Job
from patchd.patcher.privdrop import Account, Channel, StoreServer, WorkerError
from tests.patcher.trees import INST
from tests.privdrop.kit import UID_A, UID_B, Accounts, make_accounts, searchable_base

A = Account(UID_A, UID_A)
B = Account(UID_B, UID_B)


@pytest.fixture
def acc() -> Iterator[Accounts]:
    with searchable_base() as base:
        yield make_accounts(base)


# NOTE: module-level work functions: the session's worker gets its jobs pickled.


def who(_ch: Channel) -> dict[str, Any]:
    return {"pid": os.getpid(), "uid": os.geteuid(), "gid": os.getegid()}


def append_to(path: str, _ch: Channel) -> dict[str, Any]:
    """Open ``path`` for appending: ok, or the error the kernel gave."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    except OSError as exc:
        return {"pid": os.getpid(), "result": type(exc).__name__}
    os.close(fd)
    return {"pid": os.getpid(), "result": "ok"}


def killed(_ch: Channel) -> dict[str, Any]:
    signal.pthread_kill(threading.get_ident(), signal.SIGKILL)
    return {}


def stalls(_ch: Channel) -> dict[str, Any]:
    time.sleep(60)
    return {}


def begins(run_id: str, root: str, _ch: Channel) -> dict[str, Any]:
    from patchd.patcher.journal import Journal
    from patchd.patcher.privdrop import ProxyStore

    journal = Journal(root, INST, run_id, "applying")
    entry = ProxyStore(_ch).begin(run_id, root, INST, [("0000.orig", b"original")], journal)
    return {"pid": os.getpid(), "entry": entry}


def _run(jobs: list[Job], timeout: float = 30.0) -> list[Any]:
    got = dict(batch.run_batch(jobs, mode="thread", timeout=timeout))
    assert sorted(got) == list(range(len(jobs)))
    return [got[i] for i in range(len(jobs))]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_batches_of_a_session_share_one_worker_and_each_job_is_its_account(
    acc: Accounts,
) -> None:
    """Three batches, one worker process (not the agent); every job has its account's ids,
    and the kernel refuses A's job B's file and B's job A's file, in that same process."""
    with batch.session_pool():
        first = _run([Job(A, str(acc.a), who), Job(B, str(acc.b), who)])
        second = _run([Job(B, str(acc.b), who), Job(A, str(acc.a), who)])
        crossed = _run(
            [
                Job(A, str(acc.a), functools.partial(append_to, str(acc.inst("b") / "index.php"))),
                Job(A, str(acc.a), functools.partial(append_to, str(acc.inst("a") / "index.php"))),
                Job(B, str(acc.b), functools.partial(append_to, str(acc.inst("a") / "index.php"))),
                Job(B, str(acc.b), functools.partial(append_to, str(acc.system))),
            ]
        )
        pids = {r["pid"] for r in [*first, *second, *crossed]}
        assert len(pids) == 1 and os.getpid() not in pids
        worker = pids.pop()
        assert _alive(worker)
    assert [(r["uid"], r["gid"]) for r in first] == [(UID_A, UID_A), (UID_B, UID_B)]
    assert [(r["uid"], r["gid"]) for r in second] == [(UID_B, UID_B), (UID_A, UID_A)]
    denied = "PermissionError"
    assert [r["result"] for r in crossed] == [denied, "ok", denied, denied]
    # NOTE: the session's end ends its worker (end of input, then reaped).
    assert not _alive(worker)
    assert os.getresuid() == (0, 0, 0)


def test_outside_a_session_every_batch_gets_its_own_worker(acc: Accounts) -> None:
    first = _run([Job(A, str(acc.a), who)])
    second = _run([Job(A, str(acc.a), who)])
    assert first[0]["pid"] != second[0]["pid"]
    assert not _alive(first[0]["pid"]) and not _alive(second[0]["pid"])


def test_a_lost_or_stalled_worker_is_replaced_for_the_rest_and_the_next_batch(
    acc: Accounts,
) -> None:
    """The customer kills the worker through their thread, or a job stalls: that job is an
    error, the jobs after it and the next batch run in a new worker."""
    with batch.session_pool():
        got = _run([Job(A, str(acc.a), who), Job(B, str(acc.b), killed), Job(A, str(acc.a), who)])
        assert "killed by signal 9" in str(got[1])
        assert got[0]["pid"] != got[2]["pid"] and not _alive(got[0]["pid"])
        later = _run([Job(B, str(acc.b), who)])
        assert later[0]["pid"] == got[2]["pid"]
        slow = _run([Job(A, str(acc.a), stalls), Job(B, str(acc.b), who)], timeout=1.0)
        assert isinstance(slow[0], WorkerError) and "timed out after 1 s" in str(slow[0])
        assert slow[1]["uid"] == UID_B and slow[1]["pid"] != got[2]["pid"]
        assert not _alive(got[2]["pid"])


def test_a_worker_killed_between_batches_is_replaced(acc: Accounts) -> None:
    with batch.session_pool():
        first = _run([Job(A, str(acc.a), who)])
        os.kill(first[0]["pid"], signal.SIGKILL)
        time.sleep(0.1)
        second = _run([Job(A, str(acc.a), who)])
    assert second[0]["uid"] == UID_A and second[0]["pid"] != first[0]["pid"]


def test_work_that_cannot_be_pickled_gets_a_worker_per_batch(acc: Accounts) -> None:
    with batch.session_pool():
        pooled = _run([Job(A, str(acc.a), who)])
        local = _run([Job(A, str(acc.a), lambda _ch: {"pid": os.getpid(), "uid": os.geteuid()})])
        again = _run([Job(A, str(acc.a), who)])
    assert local[0]["uid"] == UID_A
    assert local[0]["pid"] != pooled[0]["pid"] == again[0]["pid"]


def test_store_requests_of_the_session_worker_are_served_per_job(acc: Accounts) -> None:
    """A job's begin goes to its own job's StoreServer: A's job may not begin B's entry."""
    server_a = StoreServer(str(acc.store), root=str(acc.a), inst=INST, run_id="r1")
    server_b = StoreServer(str(acc.store), root=str(acc.b), inst=INST, run_id="r1")
    with batch.session_pool():
        got = _run(
            [
                Job(A, str(acc.a), functools.partial(begins, "r1", str(acc.b)), serve=server_a),
                Job(B, str(acc.b), functools.partial(begins, "r1", str(acc.b)), serve=server_b),
            ]
        )
    assert isinstance(got[0], WorkerError) and "another installation" in str(got[0])
    assert server_a.created == [] and server_b.created == [got[1]["entry"]]
    assert (acc.store.joinpath(got[1]["entry"]) / "0000.orig").read_bytes() == b"original"
