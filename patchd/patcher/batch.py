"""Run a batch of installations' file work in one worker process, each job as its account.

:func:`privdrop.run_as <patchd.patcher.privdrop.run_as>` forks one worker per
installation: ~4 ms each, most of it the fork of the agent. :func:`run_batch` forks one
worker for a whole batch of jobs; inside it each job becomes its account in one of two
ways (``mode``, measured in ``docs/benchmarks.md``):

* ``thread`` (the default where :func:`threadcreds.supported
  <patchd.patcher.threadcreds.supported>`): the worker's main thread stays root, opens the
  job's account root, and starts a thread that takes a private descriptor table keeping
  only that root and the pipe, drops groups, gid and uid with the raw system calls (this
  thread only), proves root is gone, does the work and ends. ~0.2 ms per job.
* ``fork``: one grandchild per account of the batch, dropped like ``run_as`` does
  (process-wide), doing that account's jobs one after the other.

Both keep what the per-installation worker guaranteed: the kernel refuses whatever the
account could not do; the work cannot get root back; the agent's descriptors are not
reachable; the backup store stays with the agent (``serve`` per job, as in ``run_as``). A
customer can signal the thread (same uid) and so stop or kill the whole worker, not the
agent: the job being worked on gets :class:`~patchd.patcher.privdrop.WorkerError` (its
apply is recovered by the caller, as before), the jobs not yet started run in a fresh
worker. A job that takes longer than ``timeout`` kills the worker's process group.

Each job's result arrives as soon as it is done: :func:`run_batch` yields ``(index,
result or WorkerError)`` in job order.

Inside :func:`session_pool` (the agent's whole session) the ``thread`` mode keeps its
worker: the first batch forks it, later batches are sent to it (the jobs pickled: their
work must be a module-level function or a ``functools.partial`` of one) instead of forking
one per batch. A fork per batch cost ~0.15 ms per job of the 25 in a batch (the fork
itself plus the copy-on-write faults of every page the jobs touch, again in every new
worker; ``docs/benchmarks.md``). A worker that is lost, stalls or sends garbage is killed
and the next batch forks a new one; jobs whose work cannot be pickled get a worker of
their own as before. At the end of the session the worker reads end of input and exits.

NOTE: stdlib-only and Python 3.8 compatible; runs on the hosts inside the agent.
"""

from __future__ import annotations

import base64
import contextlib
import gc
import json
import os
import pickle
import posixpath
import signal
import sys
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass
from typing import (  # noqa: UP035
    Any,
    Callable,
    Dict,
    Iterable,
    Iterator,
    List,
    NoReturn,
    Optional,
    Sequence,
    Tuple,
    Union,
)

from patchd.patcher import privdrop, threadcreds
from patchd.patcher.privdrop import (
    Account,
    Channel,
    JSONDict,
    PrivilegeError,
    Serve,
    Work,
    WorkerError,
)

#: ``PATCHD_PRIVDROP=thread|fork`` picks the mode (for measuring both); unset: ``thread``
#: where supported, else ``fork``.
ENV_VAR = "PATCHD_PRIVDROP"
MODES = ("thread", "fork")

Outcome = Tuple[int, Union[JSONDict, WorkerError]]  # noqa: UP006, UP007


@dataclass(frozen=True)
class Job:
    """One installation's work: run ``work(channel)`` as ``account`` on ``root_path``;
    ``serve`` answers its backup store requests (see ``run_as``)."""

    account: Account
    root_path: str
    work: Work
    serve: Optional[Serve] = None  # noqa: UP045


def default_mode() -> str:
    """The mode :func:`run_batch` uses when not told (see :data:`ENV_VAR`)."""
    wanted = os.environ.get(ENV_VAR, "")
    if wanted not in ("", *MODES):
        raise PrivilegeError(f"{ENV_VAR}={wanted!r}: expected one of {', '.join(MODES)}")
    if wanted == "fork" or not threadcreds.supported():
        return "fork"
    return "thread"


def run_batch(
    jobs: Sequence[Job],
    *,
    timeout: float = privdrop.DEFAULT_WORKER_TIMEOUT,
    mode: Optional[str] = None,  # noqa: UP045
) -> Iterator[Outcome]:
    """Run every job as its account in one worker (a new one after a worker is lost);
    yield ``(index, result)`` as each job ends, ``result`` a :class:`WorkerError` when the
    job raised, died, stalled past ``timeout`` or sent garbage."""
    mode = mode or default_mode()
    if mode not in MODES:
        raise PrivilegeError(f"unknown privilege drop mode {mode!r}")
    if mode == "thread" and not threadcreds.supported():
        raise PrivilegeError("per-thread credentials are not supported on this machine")
    for job in jobs:
        if job.account.uid == 0 or job.account.gid == 0:
            raise PrivilegeError("refusing to 'drop' to uid or gid 0")
    privdrop.preload()
    start = 0
    while start < len(jobs):
        sent = _pooled(jobs, start) if mode == "thread" else None
        if sent is None:
            start = yield from _one_worker(jobs, start, mode, timeout)
        else:
            start = yield from _serve(sent, jobs, start, timeout, keep=True)


# -- the worker -----------------------------------------------------------------------------


def _worker(
    jobs: Sequence[Job], start: int, mode: str, err_fd: int, read_fd: int, write_fd: int
) -> None:
    """The batch worker: isolate, then run jobs ``start..`` as their accounts; never
    returns."""

    def body() -> None:
        channel = _isolate(err_fd, read_fd, write_fd)
        if mode == "thread":
            threadcreds.no_dump()
            pairs = ((index, jobs[index]) for index in range(start, len(jobs)))
            _thread_jobs(pairs, channel, (0, 1, 2, read_fd, write_fd))
        else:
            _fork_jobs(jobs, start, channel)

    _exit_after(body)


def _exit_after(body: Callable[[], None]) -> NoReturn:
    """Run a forked child's ``body`` and leave through ``os._exit``: 0 when it returned,
    70 after printing (to the worker's stderr file) what it raised."""
    code = 70
    try:
        body()
        code = 0
    except BaseException:
        with contextlib.suppress(BaseException):
            traceback.print_exc()
            sys.stderr.flush()
    finally:
        os._exit(code)


def _isolate(err_fd: int, read_fd: int, write_fd: int) -> Channel:
    """Cut a freshly forked worker off the agent; its channel to the agent."""
    with contextlib.suppress(OSError):
        os.setpgid(0, 0)  # NOTE: so a timeout kills its php -l and grandchildren too
    privdrop.cut_off(err_fd, read_fd, write_fd)
    os.environ.pop("TMPDIR", None)
    # NOTE: the agent's objects are never collected here (a collection would touch, and
    # so copy, every page of the forked heap); a job's collection at its end then looks
    # at the job's own objects only (cheap).
    gc.freeze()
    return Channel(read_fd, write_fd)


def _pool_worker(err_fd: int, read_fd: int, write_fd: int) -> None:
    """The session's worker: run each batch the agent sends, until end of input; never
    returns."""

    def body() -> None:
        channel = _isolate(err_fd, read_fd, write_fd)
        threadcreds.no_dump()
        keep = (0, 1, 2, read_fd, write_fd)
        while True:
            message = channel.receive()
            if message is None:
                return
            # NOTE: pickle from the agent that forked us (root, the same code), over a
            # pipe only the two of us hold; a job's thread never reads this message.
            pairs = pickle.loads(base64.b64decode(message["batch"]))
            _thread_jobs(pairs, channel, keep)
            # NOTE: what the batch left behind is collected by root, not by a job thread,
            # and what lives on (caches) is frozen: a job's collection stays its own.
            del pairs
            gc.collect()
            gc.freeze()

    _exit_after(body)


def _open_root(path: str) -> int:
    return os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)


def _thread_jobs(
    pairs: Iterable[Tuple[int, Job]],  # noqa: UP006
    channel: Channel,
    keep: Tuple[int, ...],  # noqa: UP006
) -> None:
    for index, job in pairs:
        try:
            root_fd = _open_root(job.root_path)
        except OSError as exc:
            channel.send(_raised(index, exc))
            continue
        privdrop._PREOPENED.clear()
        privdrop._PREOPENED[posixpath.normpath(job.root_path)] = root_fd
        thread = threading.Thread(
            target=_as_account_thread,
            args=(index, job, channel, (*keep, root_fd)),
            name=f"patchd-uid-{job.account.uid}",
        )
        thread.start()
        thread.join()
        os.close(root_fd)


def _as_account_thread(index: int, job: Job, channel: Channel, keep: Tuple[int, ...]) -> None:  # noqa: UP006
    """One job in a thread that becomes the account for good, then ends."""
    try:
        threadcreds.private_files(keep)
        threadcreds.become(job.account.uid, job.account.gid)
        os.chdir("/")  # NOTE: this thread's own cwd (CLONE_FS)
        tempfile.tempdir = None  # NOTE: chosen again, as the account
        message = {"result": job.work(channel), "job": index}
    except BaseException as exc:
        message = _raised(index, exc)
    try:
        channel.send_result(message)
    finally:
        # NOTE: objects the job made (open files) are finalised while this thread's own
        # descriptor table is in use, not later in the root thread's.
        message = {}
        gc.collect()


def _fork_jobs(jobs: Sequence[Job], start: int, channel: Channel) -> None:
    """One grandchild per account (its consecutive jobs: a host's installations come
    account by account), dropped process-wide; stops after a grandchild is lost (the
    agent starts a new worker for the jobs left)."""
    groups: List[Tuple[Account, List[int]]] = []  # noqa: UP006
    for index in range(start, len(jobs)):
        if groups and groups[-1][0] == jobs[index].account:
            groups[-1][1].append(index)
        else:
            groups.append((jobs[index].account, [index]))
    for account, indexes in groups:
        roots: Dict[str, int] = {}  # noqa: UP006
        for index in indexes:
            path = posixpath.normpath(jobs[index].root_path)
            if path not in roots:
                with contextlib.suppress(OSError):  # NOTE: the job reports it below
                    roots[path] = _open_root(path)
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - leaves through os._exit
            _account_child(jobs, indexes, account, roots, channel)
        for fd in roots.values():
            os.close(fd)
        status = privdrop._reap(pid)
        if status != 0:
            channel.send({"lost": privdrop._status_text(status)})
            return


def _account_child(
    jobs: Sequence[Job],
    indexes: List[int],  # noqa: UP006
    account: Account,
    roots: Dict[str, int],  # noqa: UP006
    channel: Channel,
) -> None:
    def body() -> None:
        privdrop._PREOPENED.clear()
        privdrop._PREOPENED.update(roots)
        privdrop.drop_privileges(account)
        tempfile.tempdir = None
        os.chdir("/")
        for index in indexes:
            path = posixpath.normpath(jobs[index].root_path)
            try:
                if path not in roots:
                    _open_root(path)  # NOTE: raises root's error, as run_as would
                message = {"result": jobs[index].work(channel), "job": index}
            except BaseException as exc:
                message = _raised(index, exc)
            channel.send_result(message)

    _exit_after(body)


def _raised(index: int, exc: BaseException) -> JSONDict:
    error = {**privdrop._error_json(exc), "traceback": traceback.format_exc()}
    return {"raise": error, "job": index}


# -- the agent's side -------------------------------------------------------------------------


class _WorkerEnd:
    """The agent's end of one forked worker: its pid, pipes and stderr file."""

    def __init__(self, child: Any, *child_args: Any) -> None:
        """Fork ``child(err_fd, read_fd, write_fd, *child_args)`` (it never returns)."""
        self.err = tempfile.TemporaryFile(prefix="patchd-worker-")  # noqa: SIM115
        to_child = os.pipe()
        to_parent = os.pipe()
        os.set_blocking(to_child[1], False)  # NOTE: a stopped worker must not block our writes
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child always leaves through os._exit
            child(self.err.fileno(), to_child[0], to_parent[1], *child_args)
        with contextlib.suppress(OSError):
            os.setpgid(pid, pid)  # NOTE: the child does it too; whoever runs first wins
        os.close(to_child[0])
        os.close(to_parent[1])
        self.pid = pid
        self.owner = os.getpid()
        self.read_fd = to_parent[0]
        self.write_fd = to_child[1]
        self.reader = privdrop._LineReader(self.read_fd)
        self.ended = False

    def end(self, *, kill: bool) -> int:
        """Kill the worker (``kill``) or let it read end of input; reap it and close our
        ends; its exit status (0 when it had been ended already)."""
        if self.ended:
            return 0
        self.ended = True
        if kill:
            _kill(self.pid)
        with contextlib.suppress(OSError):
            os.close(self.write_fd)  # NOTE: end of input: a pooled worker exits
        if not kill and not _exited(self.pid, POOL_EXIT_SECONDS):
            _kill(self.pid)
        status = privdrop._reap(self.pid)
        with contextlib.suppress(OSError):
            os.close(self.read_fd)
        self.err.close()
        return status


def _exited(pid: int, seconds: float) -> bool:
    """Whether ``pid`` ends within ``seconds`` (not reaped)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
                return True
        except ChildProcessError:
            return True
        time.sleep(0.01)
    return False


def _one_worker(jobs: Sequence[Job], start: int, mode: str, timeout: float) -> Iterator[Outcome]:
    """Fork one worker for ``jobs[start:]``, serve it, yield what it finishes; return the
    index of the first job it did not finish (a new worker takes it on)."""
    worker = _WorkerEnd(_batch_child, jobs, start, mode)
    return (yield from _serve(worker, jobs, start, timeout, keep=False))


def _batch_child(
    err_fd: int, read_fd: int, write_fd: int, jobs: Any, start: int, mode: str
) -> None:
    _worker(jobs, start, mode, err_fd, read_fd, write_fd)  # pragma: no cover - forked


# -- the session's worker (thread mode) ------------------------------------------------------

#: Seconds a pooled worker gets to exit after end of input before it is killed.
POOL_EXIT_SECONDS = 2.0

_POOLING = False
_POOL: Optional[_WorkerEnd] = None  # noqa: UP045


@contextlib.contextmanager
def session_pool() -> Iterator[None]:
    """Keep one thread-mode worker for the batches run inside (the agent's session); end
    it on the way out."""
    global _POOLING
    _POOLING = True
    try:
        yield
    finally:
        _POOLING = False
        _drop_pool(kill=False)


def _drop_pool(*, kill: bool) -> None:
    global _POOL
    worker, _POOL = _POOL, None
    if worker is not None and worker.owner == os.getpid():
        worker.end(kill=kill)


def _pooled(jobs: Sequence[Job], start: int) -> Optional[_WorkerEnd]:  # noqa: UP045
    """The session's worker with ``jobs[start:]`` sent to it; None outside a session or
    when a job's work cannot be pickled (the caller forks a worker for the batch)."""
    global _POOL
    if not _POOLING or os.environ.get("PATCHD_NOPOOL"):
        return None
    pairs = [
        (index, Job(jobs[index].account, jobs[index].root_path, jobs[index].work))
        for index in range(start, len(jobs))
    ]
    try:
        payload = pickle.dumps(pairs, protocol=pickle.HIGHEST_PROTOCOL)
    except (pickle.PicklingError, AttributeError, TypeError):
        return None
    if _POOL is not None and (_POOL.ended or _POOL.owner != os.getpid()):
        _drop_pool(kill=True)
    if _POOL is None:
        _POOL = _WorkerEnd(_pool_worker)
    message = privdrop._encode({"batch": base64.b64encode(payload).decode("ascii")})
    try:
        privdrop._write_all(_POOL.write_fd, message, time.monotonic() + 30.0)
    except (OSError, privdrop._Timeout):
        # NOTE: it died between batches (a customer's signal, say): a new one takes them.
        _drop_pool(kill=True)
        _POOL = _WorkerEnd(_pool_worker)
        privdrop._write_all(_POOL.write_fd, message, time.monotonic() + 30.0)
    return _POOL


def _serve(
    worker: _WorkerEnd,
    jobs: Sequence[Job],
    start: int,
    timeout: float,
    *,
    keep: bool,
) -> Iterator[Outcome]:
    """Answer the worker's store requests and yield its results for ``jobs[start:]``;
    return the index of the first job it did not finish. ``keep``: the worker stays for
    the next batch when it finished them all.

    NOTE: the worker runs the jobs in order and says nothing when one starts (a message
    less per job): the job running is always the first one without a result, ``done``.
    """
    deadline = time.monotonic() + timeout
    reader = worker.reader
    err = worker.err
    done = start  # the first job not finished: the one running
    mark = _size(err)  # where the running job's stderr starts
    failure = ""
    lost = False
    try:
        while done < len(jobs) and not lost:
            line = reader.readline(deadline)
            if line is None:
                break
            message = json.loads(line)
            if not isinstance(message, dict):
                raise ValueError("worker message is not an object")
            if "call" in message:
                reply = privdrop.answer(jobs[done].serve, message)
                privdrop._write_all(worker.write_fd, privdrop._encode(reply), deadline)
                continue
            if "result" in message or "raise" in message:
                if message.get("job") != done:
                    raise ValueError(f"a result for job {message.get('job')!r}, not {done}")
                unsaved = privdrop.serve_deferred(jobs[done].serve, message)
                outcome = _outcome(jobs[done], message, err, mark)
                if unsaved:
                    who = f"worker (uid {jobs[done].account.uid})"
                    outcome = WorkerError(f"{who} finished, but {unsaved}")
            elif "lost" in message:
                # NOTE: fork mode: the account's grandchild died; the worker stops there
                # and a new one takes the jobs after this one.
                who = f"worker (uid {jobs[done].account.uid})"
                outcome = WorkerError(f"{who} {message['lost']}", details=_tail_from(err, mark))
                lost = True
            else:
                raise ValueError("worker message of unknown shape")
            done += 1
            deadline = time.monotonic() + timeout
            mark = _size(err)
            yield done - 1, outcome
    except privdrop._Timeout:
        failure = f"timed out after {timeout:g} s"
    except (ValueError, OSError, RecursionError) as exc:
        failure = f"sent a bad message ({type(exc).__name__}: {exc})"
    except BaseException:
        worker.end(kill=True)  # NOTE: never leave a worker behind, whatever stops us
        raise
    if keep and not failure and done >= len(jobs):
        return done
    tail = _tail_from(err, mark)
    status = worker.end(kill=bool(failure) or done < len(jobs))
    if done >= len(jobs) or (lost and not failure):
        return done
    who = f"worker (uid {jobs[done].account.uid})"
    how = failure or privdrop._status_text(status)
    yield done, WorkerError(f"{who} {how}", details=tail)
    return done + 1


def _outcome(job: Job, message: JSONDict, err: Any, mark: int) -> Union[JSONDict, WorkerError]:  # noqa: UP007
    who = f"worker (uid {job.account.uid})"
    if "result" in message:
        result = message["result"]
        if isinstance(result, dict):
            return result
        return WorkerError(f"{who} returned a {type(result).__name__}, not an object")
    r = message["raise"]
    if not isinstance(r, dict):
        return WorkerError(f"{who} sent a bad message (raise is not an object)")
    details = str(r.get("traceback") or "") or _tail_from(err, mark)
    return WorkerError(f"{who} failed: {r.get('type')}: {r.get('message')}", details=details)


def _size(err: Any) -> int:
    try:
        return os.fstat(err.fileno()).st_size
    except OSError:
        return 0


def _tail_from(err: Any, mark: int) -> str:
    """The stderr tail the running job wrote (since ``mark``)."""
    written = _size(err) - mark
    if written <= 0:
        return ""
    tail = privdrop._tail(err)
    return tail if written >= len(tail) else tail[-written:]


def _kill(pid: int) -> None:
    """Kill the worker and everything in its process group (grandchildren, php -l)."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except OSError:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
