"""One worker per batch (patchd.patcher.batch): every job runs as its account, in a thread
with per-thread credentials (raw system calls) or in a forked grandchild per account; the
kernel refuses what the account may not do, and root does not come back."""

from __future__ import annotations

import os
import signal
import stat
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from patchd.patcher import batch, privdrop, threadcreds
from patchd.patcher.batch import Job
from patchd.patcher.privdrop import Account, Channel, StoreServer, WorkerError
from tests.patcher.trees import INST
from tests.privdrop.kit import UID_A, UID_B, Accounts, make_accounts, searchable_base

A = Account(UID_A, UID_A)
B = Account(UID_B, UID_B)
MODES = ["thread", "fork"]


@pytest.fixture
def acc() -> Iterator[Accounts]:
    with searchable_base() as base:
        yield make_accounts(base)


def _run(jobs: list[Job], mode: str, timeout: float = 30.0) -> list[Any]:
    """Every job's result (or WorkerError), by job index."""
    got: dict[int, Any] = {}
    for index, res in batch.run_batch(jobs, mode=mode, timeout=timeout):
        assert index not in got
        got[index] = res
    assert sorted(got) == list(range(len(jobs)))
    return [got[i] for i in range(len(jobs))]


def _try(func: Any) -> str:
    try:
        func()
    except OSError as exc:
        return type(exc).__name__
    return "ok"


def _status(path: str) -> dict[str, list[str]]:
    lines = Path(path).read_text().splitlines()
    return {ln.split(":")[0]: ln.split()[1:] for ln in lines if ":" in ln}


def _thread_status() -> dict[str, list[str]]:
    return _status(f"/proc/self/task/{threading.get_native_id()}/status")


def test_per_thread_credentials_are_supported_here() -> None:
    """The CI machine (x86_64 Linux) runs the thread mode; it is the default."""
    assert threadcreds.supported()
    assert batch.default_mode() == "thread"


@pytest.mark.parametrize("mode", MODES)
def test_the_kernel_refuses_writes_outside_the_account_and_into_another_account(
    acc: Accounts, mode: str
) -> None:
    """As account A: a root-owned 0644 file outside the account and B's 0644 file cannot be
    opened for writing; A's own file can. Then the same for B in the same worker."""
    for path in (acc.system, acc.inst("a") / "index.php", acc.inst("b") / "index.php"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o644

    def work_as(own: str, other: str) -> Any:
        def work(_ch: Channel) -> dict[str, Any]:
            root = privdrop.open_root(str(getattr(acc, own)))
            fd = os.open(f"{INST}/index.php", os.O_WRONLY | os.O_APPEND, dir_fd=root.fd)
            os.write(fd, b"\n")
            os.close(fd)
            return {
                "system": _try(lambda: os.open(acc.system, os.O_WRONLY)),
                "other": _try(lambda: os.open(acc.inst(other) / "index.php", os.O_RDWR)),
                "other_new": _try(lambda: os.open(acc.inst(other) / "x.php", os.O_CREAT)),
                "etc_new": _try(lambda: os.open(acc.system.parent / "new", os.O_CREAT)),
                "own": "ok",
            }

        return work

    got = _run([Job(A, str(acc.a), work_as("a", "b")), Job(B, str(acc.b), work_as("b", "a"))], mode)
    refused = dict.fromkeys(("system", "other", "other_new", "etc_new"), "PermissionError")
    assert got == [{**refused, "own": "ok"}] * 2
    assert not (acc.inst("a") / "x.php").exists() and not (acc.inst("b") / "x.php").exists()
    assert acc.system.read_bytes() == b"root-owned configuration\n"


@pytest.mark.parametrize("mode", MODES)
def test_a_planted_link_is_stopped_by_the_uid_even_without_any_check(
    acc: Accounts, mode: str
) -> None:
    """A plain ``open(path, "r+b")`` through links planted in A's tree to B's and root's
    files fails in the worker (and would succeed as root)."""
    foreign = acc.inst("b") / "wp-includes" / "version.php"
    links = acc.inst("a") / "wp-includes"
    (links / "sym-foreign.php").symlink_to(foreign)
    (links / "sym-system.php").symlink_to(acc.system)
    os.link(foreign, links / "hard-foreign.php")
    os.link(acc.system, links / "hard-system.php")
    names = ("sym-foreign.php", "sym-system.php", "hard-foreign.php", "hard-system.php")
    before = {p: p.read_bytes() for p in (foreign, acc.system)}

    def work(_ch: Channel) -> dict[str, Any]:
        out = {}
        for name in names:
            path = links / name
            out[name] = _try(lambda p=path: open(p, "r+b").close())
        return out

    assert _run([Job(A, str(acc.a), work)], mode) == [dict.fromkeys(names, "PermissionError")]
    assert {p: p.read_bytes() for p in before} == before


@pytest.mark.parametrize("mode", MODES)
def test_the_worker_cannot_regain_root(acc: Accounts, mode: str) -> None:
    """In the job: only the account's ids (real, effective, saved, fs), no groups, no
    capabilities, no_new_privs; the raw setresuid/setresgid/setgroups to root fail (glibc's
    wrappers would only ask the same of every thread)."""

    def work(_ch: Channel) -> dict[str, Any]:
        setgroups, setresuid, setresgid = threadcreds.SYSCALLS[os.uname().machine]
        root = __import__("ctypes").c_uint32(0)
        attempts = {
            "setresuid": threadcreds._syscall(setresuid, 0, 0, 0),
            "setresgid": threadcreds._syscall(setresgid, 0, 0, 0),
            "setgroups": threadcreds._syscall(setgroups, 1, __import__("ctypes").addressof(root)),
            "setreuid_euid_only": threadcreds._syscall(setresuid, -1, 0, -1),
        }
        status = _thread_status()
        return {
            "attempts": attempts,
            "resuid": list(os.getresuid()),
            "resgid": list(os.getresgid()),
            "status": {k: status[k] for k in ("Uid", "Gid", "Groups", "CapPrm", "CapEff")},
            "no_new_privs": status["NoNewPrivs"],
            "capget": list(threadcreds.capabilities()),
            "etc_shadow": _try(lambda: open("/etc/shadow", "rb").close()),
            "pid": os.getpid(),
        }

    (got,) = _run([Job(A, str(acc.a), work)], mode)
    assert got["attempts"] == dict.fromkeys(got["attempts"], -1), got
    assert got["resuid"] == [UID_A] * 3 and got["resgid"] == [UID_A] * 3
    assert got["status"] == {
        "Uid": [str(UID_A)] * 4,
        "Gid": [str(UID_A)] * 4,
        "Groups": [],
        "CapPrm": ["0000000000000000"],
        "CapEff": ["0000000000000000"],
    }
    assert got["no_new_privs"] == ["1"]
    assert got["capget"] == [0, 0]
    # NOTE: the check's own reading (capget) agrees with /proc where root has them all.
    mine = _thread_status()
    assert threadcreds.capabilities() == (int(mine["CapPrm"][0], 16), int(mine["CapEff"][0], 16))
    assert threadcreds.capabilities()[0] != 0
    assert got["etc_shadow"] == "PermissionError"
    assert got["pid"] != os.getpid()
    assert os.getresuid() == (0, 0, 0), "the agent itself stays root"


def test_only_the_jobs_thread_is_the_account(acc: Accounts) -> None:
    """Per-thread, not per process: while the job's thread is A, the worker's main thread
    is still root (it starts the next job as B), and the job's descriptor table holds
    nothing of the agent's: a root-opened file of the agent is not reachable."""
    agent_fd = os.open(acc.system, os.O_RDWR)
    try:

        def work(_ch: Channel) -> dict[str, Any]:
            main = _status(f"/proc/{os.getpid()}/status")["Uid"]
            return {
                "main": main,
                "mine": _thread_status()["Uid"],
                "agent_fd": _try(lambda: os.write(agent_fd, b"X")),
                "fds": [fd for fd in range(1024) if _try(lambda f=fd: os.fstat(f)) == "ok"],
            }

        got = _run([Job(A, str(acc.a), work), Job(B, str(acc.b), work)], "thread")
    finally:
        os.close(agent_fd)
    assert got[0]["main"] == ["0"] * 4 and got[0]["mine"] == [str(UID_A)] * 4
    assert got[1]["main"] == ["0"] * 4 and got[1]["mine"] == [str(UID_B)] * 4
    assert got[0]["agent_fd"] == "OSError" and got[1]["agent_fd"] == "OSError"
    # stdin/stdout/stderr, the pipe to the agent (2 descriptors) and the account root
    assert len(got[0]["fds"]) == 6 and agent_fd not in got[0]["fds"], got[0]["fds"]
    assert acc.system.read_bytes() == b"root-owned configuration\n"


@pytest.mark.parametrize("mode", MODES)
def test_a_signalled_dying_or_raising_job_fails_alone(acc: Accounts, mode: str) -> None:
    """The customer may signal the thread (same uid): SIGKILL or SIGSTOP stops the whole
    worker, never the agent; that job is an error, the jobs after it run in a new worker."""

    def ok(_ch: Channel) -> dict[str, Any]:
        return {"uid": os.geteuid()}

    def killed(_ch: Channel) -> dict[str, Any]:
        signal.pthread_kill(threading.get_ident(), signal.SIGKILL)
        return {}

    def stopped(_ch: Channel) -> dict[str, Any]:
        signal.pthread_kill(threading.get_ident(), signal.SIGSTOP)
        return {}

    def dies(_ch: Channel) -> dict[str, Any]:
        os.write(2, b"last words\n")
        os._exit(137)

    def raises(_ch: Channel) -> dict[str, Any]:
        raise RuntimeError("bug in the work")

    def a_list(_ch: Channel) -> Any:
        return [1]

    works = [ok, killed, ok, stopped, ok, dies, raises, a_list, ok]
    jobs = [Job(B if n % 2 else A, str(acc.b if n % 2 else acc.a), w) for n, w in enumerate(works)]
    got = _run(jobs, mode, timeout=2.0)
    assert got[0] == {"uid": UID_A} and got[2] == {"uid": UID_A} and got[4] == {"uid": UID_A}
    assert got[8] == {"uid": UID_A}
    errors = {n: str(r) for n, r in enumerate(got) if isinstance(r, WorkerError)}
    assert sorted(errors) == [1, 3, 5, 6, 7], got
    assert "killed by signal 9" in errors[1]
    assert "timed out after 2 s" in errors[3]
    assert "exit status 137" in errors[5] and "last words" in got[5].details
    assert "RuntimeError: bug in the work" in errors[6] and "Traceback" in got[6].details
    assert "returned a list" in errors[7]
    assert os.getresuid() == (0, 0, 0)


@pytest.mark.parametrize("mode", MODES)
def test_store_requests_are_served_per_job(acc: Accounts, mode: str) -> None:
    """Each job's store requests go to its own StoreServer: A may not make B's entry."""
    servers = [
        StoreServer(str(acc.store), root=str(acc.a), inst=INST, run_id="r1"),
        StoreServer(str(acc.store), root=str(acc.b), inst=INST, run_id="r1"),
    ]

    def work_for(root: Path, other: Path) -> Any:
        def work(ch: Channel) -> dict[str, Any]:
            store = privdrop.ProxyStore(ch)
            try:
                store.make_entry("r1", str(other), INST)
                foreign = "ok"
            except Exception as exc:
                foreign = type(exc).__name__
            entry = store.make_entry("r1", str(root), INST)
            store.write_backup(entry, "0000.orig", b"orig")
            return {"foreign": foreign, "entry": entry}

        return work

    got = _run(
        [
            Job(A, str(acc.a), work_for(acc.a, acc.b), serve=servers[0]),
            Job(B, str(acc.b), work_for(acc.b, acc.a), serve=servers[1]),
        ],
        mode,
    )
    assert [g["foreign"] for g in got] == ["BackupStoreError"] * 2
    assert [s.created for s in servers] == [[got[0]["entry"]], [got[1]["entry"]]]
    for g in got:
        backup = Path(g["entry"]) / "0000.orig"
        assert (backup.read_bytes(), backup.stat().st_uid) == (b"orig", 0)


def test_a_missing_account_root_fails_that_job_only(acc: Accounts) -> None:
    for mode in MODES:
        jobs = [
            Job(A, str(acc.base / "gone"), lambda _ch: {"ran": True}),
            Job(A, str(acc.a), lambda _ch: {"ran": True}),
        ]
        got = _run(jobs, mode)
        assert isinstance(got[0], WorkerError) and "FileNotFoundError" in str(got[0]), got
        assert got[1] == {"ran": True}


def test_the_mode_is_chosen_by_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(batch.ENV_VAR, "fork")
    assert batch.default_mode() == "fork"
    monkeypatch.setenv(batch.ENV_VAR, "setuid")
    with pytest.raises(privdrop.PrivilegeError, match="PATCHD_PRIVDROP='setuid'"):
        batch.default_mode()
    with pytest.raises(privdrop.PrivilegeError, match="uid or gid 0"):
        list(batch.run_batch([Job(Account(0, 5), "/", lambda _ch: {})], mode="thread"))
