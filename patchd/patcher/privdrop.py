"""Run one account's file work in a forked worker holding only that account's uid and gid.

The agent usually runs as root. Its checks (:mod:`patchd.patcher.safewrite`) refuse links,
foreign owners and swaps, but a missed check would run with root's rights. So when the agent
is root, each installation's file work runs in a child process that first drops to the
account (``setgroups([])``, ``setresgid``, ``setresuid``) and proves it cannot get root
back; the kernel then refuses whatever the customer could not do themselves.

Only the backup store stays with root: the worker gets a :class:`ProxyStore` that sends
each store step (one JSON line, bytes in base64) to the root parent, where a
:class:`StoreServer` checks it belongs to the worker's installation and performs it.

Who the work runs as (:func:`identity`):

* agent not root: in this process, as today (it can only do what its user may);
* ``uid`` from the inventory, else the owner of the account root folder (``stat`` of the
  trusted root path): a uid other than 0 is dropped to, with gid = the inventory's
  ``gid``, else the passwd entry's primary group, else the account root folder's group;
  gid 0 is refused;
* uid 0 (said, or the root folder's owner): in this process as root, with the owner check
  set to 0, so every folder and file touched must be root-owned: nothing a customer could
  have planted is followed or written.

NOTE: stdlib-only and Python 3.8 compatible; runs on the hosts inside the agent.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import importlib
import json
import os
import posixpath
import pwd
import select
import signal
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterable, Optional, Sequence, Tuple  # noqa: UP035

from patchd.errors import PatchdError
from patchd.patcher import journal as jr
from patchd.safefs import SafeRoot, join_rel

JSONDict = Dict[str, Any]  # noqa: UP006

#: Seconds a worker may take for one installation before it is killed (a customer can
#: SIGSTOP a process running as their uid; the agent must not hang on it).
DEFAULT_WORKER_TIMEOUT = 600.0

#: Longest message line accepted from a worker (a backup is at most the size limit, in
#: base64, plus a little).
MAX_MESSAGE = 128 * 1024 * 1024
#: Bytes asked of the worker's pipe per read. NOTE: below glibc's mmap threshold (128
#: KiB): a 1 MiB buffer per read was an mmap, an mremap and a munmap for every message.
READ_CHUNK = 1 << 16

#: Modules the worker may need, imported before forking. NOTE: after the drop the worker
#: can no longer read the agent's zip (a root-owned 0600 file) nor, often, the Python
#: installation (e.g. below /root), so a lazy import there would fail.
PRELOAD = (
    "patchd.engine.apply",
    "patchd.patcher.installation",
    "patchd.patcher.php",
    "patchd.patcher.results",
    "base64",
    "hashlib",
    "json",
    "secrets",
    "shutil",
    "subprocess",
    "tempfile",
    "traceback",
    "patchd.patcher.threadcreds",
    "ctypes",
)


class PrivilegeError(PatchdError):
    """The work cannot run as the account (gid 0, privileges not dropped, root kept)."""


class WorkerError(PatchdError):
    """A worker died, timed out or failed outside the work; ``details`` holds its stderr
    tail or traceback."""

    def __init__(self, message: str, *, details: str = "", where: str | None = None) -> None:
        super().__init__(message, where=where)
        self.details = details


@dataclass(frozen=True)
class Account:
    """The ids a worker drops to."""

    uid: int
    gid: int


@dataclass(frozen=True)
class Identity:
    """Who one account's work runs as: ``account`` None = in this process, unchanged.

    ``expected_uid`` is the owner check the patcher applies to every folder and file.
    """

    expected_uid: Optional[int]  # noqa: UP045
    account: Optional[Account]  # noqa: UP045
    why: str


def identity(root_path: str, uid: int | None, gid: int | None = None) -> Identity:
    """Decide who the work on the account at ``root_path`` runs as (module docstring).

    NOTE: ``gid`` from the inventory saves a user database lookup per installation (with
    NSS modules such as systemd's userdb or LDAP, a lookup of a uid costs ~0.1 ms or more).

    Raises ``OSError`` when the root cannot be stat-ed and :class:`PrivilegeError` for an
    account whose group would be root.
    """
    if os.geteuid() != 0:
        return Identity(uid, None, f"agent runs as uid {os.geteuid()}, not root: no drop")
    st = os.stat(root_path)  # NOTE: the operator's root path is trusted (links followed)
    if uid is None:
        uid = st.st_uid
    if uid == 0:
        return Identity(0, None, "account owned by root: work as root, root-owned files only")
    if gid is None:
        try:
            gid = pwd.getpwuid(uid).pw_gid
        except KeyError:
            gid = st.st_gid
    if gid == 0:
        raise PrivilegeError(
            f"account uid {uid} would work with group root (gid 0); refusing", where=root_path
        )
    return Identity(uid, Account(uid, gid), f"worker as uid {uid} gid {gid}")


def drop_privileges(account: Account) -> None:
    """Become ``account`` for good (groups, real/effective/saved ids); verify root is gone.

    NOTE: order matters: groups and gid first (both need root), uid last. The process
    becomes non-dumpable, so the customer (same uid) cannot ptrace it or read its memory.
    """
    if account.uid == 0 or account.gid == 0:
        raise PrivilegeError("refusing to 'drop' to uid or gid 0")
    os.setgroups([])
    os.setresgid(account.gid, account.gid, account.gid)
    os.setresuid(account.uid, account.uid, account.uid)
    if sys.platform.startswith("linux"):
        from patchd.patcher import threadcreds

        threadcreds.no_new_privs()
    try:
        os.setuid(0)
    except PermissionError:
        pass
    else:
        raise PrivilegeError("setuid(0) succeeded after dropping privileges")
    if os.getresuid() != (account.uid,) * 3 or os.getresgid() != (account.gid,) * 3:
        raise PrivilegeError("ids after the drop are not the account's")
    if os.getgroups() not in ([], [account.gid]):
        raise PrivilegeError(f"supplementary groups kept: {os.getgroups()}")


# -- the account root, opened by root before the drop -----------------------------------

_PREOPENED: dict[str, int] = {}


def open_root(root_path: str) -> SafeRoot:
    """The :class:`SafeRoot` of ``root_path``: the worker's pre-opened descriptor if any."""
    fd = _PREOPENED.get(posixpath.normpath(root_path))
    # NOTE: the path to an account root may pass folders the account cannot search (and
    # the root itself may be 0711); root opens it before the drop, the worker keeps it.
    return SafeRoot(root_path) if fd is None else SafeRoot.from_fd(root_path, fd)


# -- the pipe between worker and parent ------------------------------------------------


def _encode(message: JSONDict) -> bytes:
    # NOTE: ensure_ascii keeps surrogate-escaped (non-UTF-8) names as \udcXX escapes.
    return json.dumps(message, ensure_ascii=True, separators=(",", ":")).encode("ascii") + b"\n"


class Channel:
    """The worker's end: blocking JSON lines to and from the root parent."""

    def __init__(self, read_fd: int, write_fd: int) -> None:
        self._r = os.fdopen(read_fd, "rb")
        self._w = os.fdopen(write_fd, "wb")
        self._deferred: list[JSONDict] = []

    def send(self, message: JSONDict) -> None:
        """Send one message."""
        self._w.write(_encode(message))
        self._w.flush()

    def defer(self, request: str, /, **args: Any) -> None:
        """Have the parent perform ``request`` with the job's result (see
        :meth:`send_result`), not now: one round trip less. Only for a request whose
        answer the job does not need (see ``BackupStore.finish``)."""
        self._deferred.append({"call": request, "args": args})

    def send_result(self, message: JSONDict) -> None:
        """Send the job's ``result`` (or ``raise``) message with the requests it deferred;
        the parent performs them before it takes the result."""
        if self._deferred:
            message = {**message, "deferred": self._deferred}
            self._deferred = []
        self.send(message)

    def receive(self) -> JSONDict | None:
        """The next message from the parent; None at end of input."""
        line = self._r.readline()
        if not line:
            return None
        message = json.loads(line)
        if not isinstance(message, dict):
            raise ValueError("agent message is not an object")
        return message

    def call(self, request: str, /, **args: Any) -> Any:
        """Ask the parent to perform ``request``; its answer, or its error raised here.
        Requests deferred before are sent first, each on its own (their order is kept)."""
        while self._deferred:
            earlier = self._deferred.pop(0)
            self._call(earlier["call"], earlier["args"])
        return self._call(request, args)

    def _call(self, request: str, args: JSONDict) -> Any:
        self.send({"call": request, "args": args})
        line = self._r.readline()
        if not line:
            raise WorkerError("the agent closed the store channel")
        reply = json.loads(line)
        if "error" in reply:
            raise _rebuild(reply["error"])
        return reply.get("ok")


def _error_json(exc: BaseException) -> JSONDict:
    return {
        "type": type(exc).__name__,
        "message": str(getattr(exc, "message", None) or getattr(exc, "strerror", None) or exc),
        "where": getattr(exc, "where", None) if isinstance(exc, PatchdError) else None,
        "errno": getattr(exc, "errno", None) if isinstance(exc, OSError) else None,
    }


def _rebuild(err: JSONDict) -> Exception:
    """The exception to raise in the worker for the parent's error ``err``."""
    if err.get("errno") is not None:
        return OSError(int(err["errno"]), str(err["message"]))
    if err.get("type") == "BackupStoreError":
        return jr.BackupStoreError(str(err["message"]), where=err.get("where"))
    return WorkerError(f"{err.get('type')}: {err.get('message')}", where=err.get("where"))


class ProxyStore:
    """A :class:`~patchd.patcher.journal.BackupStore` that forwards every step to the root
    parent over ``channel`` (used inside a worker)."""

    def __init__(self, channel: Channel, checked: JSONDict | None = None) -> None:
        self.channel = channel
        self.checked = checked

    def check(self) -> None:
        """See :meth:`~patchd.patcher.journal.BackupStore.check`.

        NOTE: with ``checked`` (``{"ok": true}`` or ``{"error": ...}``, what the agent's
        check of the store gave when the batch arrived, see ``store_checked``) no message
        is sent: one round trip less per apply. ``begin`` checks the store again when it
        makes the entry.
        """
        if self.checked is None:
            self.channel.call("check")
        elif "error" in self.checked:
            raise _rebuild(self.checked["error"])

    def make_entry(self, run_id: str, root: str, inst: str) -> str:
        """See :meth:`~patchd.patcher.journal.BackupStore.make_entry`."""
        return str(self.channel.call("make_entry", run_id=run_id, root=root, inst=inst))

    def write_backup(self, entry: str, name: str, data: bytes) -> None:
        """See :meth:`~patchd.patcher.journal.BackupStore.write_backup`."""
        b64 = base64.b64encode(data).decode("ascii")
        self.channel.call("write_backup", entry=entry, name=name, data_b64=b64)

    def begin(
        self,
        run_id: str,
        root: str,
        inst: str,
        backups: Sequence[Tuple[str, bytes]],  # noqa: UP006
        journal: jr.Journal,
    ) -> str:
        """See :meth:`~patchd.patcher.journal.BackupStore.begin`."""
        sent = [
            {"name": name, "data_b64": base64.b64encode(data).decode()} for name, data in backups
        ]
        args = {"run_id": run_id, "root": root, "inst": inst, "backups": sent}
        return str(self.channel.call("begin", **args, journal=journal.to_json()))

    def finish(self, entry: str, journal: jr.Journal) -> None:
        """See :meth:`~patchd.patcher.journal.BackupStore.finish`: deferred to the job's
        result (:meth:`Channel.defer`)."""
        self.channel.defer("save_journal", entry=entry, journal=journal.to_json())

    def read_backup(self, entry: str, name: str) -> bytes:
        """See :meth:`~patchd.patcher.journal.BackupStore.read_backup`."""
        return base64.b64decode(self.channel.call("read_backup", entry=entry, name=name))

    def save_journal(self, entry: str, journal: jr.Journal) -> None:
        """See :meth:`~patchd.patcher.journal.BackupStore.save_journal`."""
        self.channel.call("save_journal", entry=entry, journal=journal.to_json())

    def load_journal(self, entry: str) -> jr.Journal:
        """See :meth:`~patchd.patcher.journal.BackupStore.load_journal`."""
        return jr.Journal.from_json(self.channel.call("load_journal", entry=entry))

    def entry_of(self, path: str) -> str:
        """See :meth:`~patchd.patcher.journal.BackupStore.entry_of`."""
        return str(self.channel.call("entry_of", path=path))


def store_checked(backup_dir: str | None) -> JSONDict | None:
    """The agent's check of the store for a batch's :class:`ProxyStore` (``checked``);
    None without a store."""
    if not backup_dir:
        return None
    try:
        jr.check_store(backup_dir)
    except (jr.BackupStoreError, OSError) as exc:
        return {"error": _error_json(exc)}
    return {"ok": True}


class StoreServer:
    """The root parent's side of :class:`ProxyStore`: performs a worker's store steps on
    ``backup_dir``, but only for the worker's own installation.

    NOTE: the worker runs as the customer; treat its requests as hostile. It may create one
    entry per apply of ``(run_id, root, inst)``, touch only entries it created or that the
    op gave it (``entries``), write only backup names like ``0000.orig``, and save only
    journals of its installation.
    """

    def __init__(
        self,
        backup_dir: str | None,
        *,
        root: str,
        inst: str,
        run_id: str | None = None,
        entries: Iterable[str] = (),
    ) -> None:
        self.store = None if backup_dir is None else jr.DirectStore(backup_dir)
        self.root = posixpath.normpath(root)
        self.inst = join_rel(inst)
        self.run_id = run_id
        self.entries = {posixpath.normpath(e) for e in entries}
        self.created: list[str] = []  # entries the worker made, in order

    def __call__(self, name: str, args: JSONDict) -> Any:
        """Perform request ``name`` with ``args``; the JSON answer."""
        store = self.store
        if store is None:
            raise jr.BackupStoreError("no backup store for this work")
        if name == "check":
            store.check()
            return None
        if name == "make_entry":
            return self._make_entry(store, args)
        if name == "begin":
            backups = args.get("backups")
            if not isinstance(backups, list) or not all(isinstance(b, dict) for b in backups):
                raise self._refuse("a begin without a list of backups")
            named = [(self._backup_name(b), str(b.get("data_b64"))) for b in backups]
            journal = self._own_journal(args)
            # NOTE: everything checked before the entry is made; then the store's order:
            # originals first, the journal last (see BackupStore.begin).
            entry = self._make_entry(store, args)
            for backup_name, data_b64 in named:
                store.write_backup(entry, backup_name, base64.b64decode(data_b64, validate=True))
            store.save_journal(entry, journal)
            return entry
        if name == "entry_of":
            return self._entry(jr.entry_of(str(args.get("path"))))
        entry = self._entry(str(args.get("entry")))
        if name == "write_backup":
            data = base64.b64decode(str(args.get("data_b64")), validate=True)
            store.write_backup(entry, self._backup_name(args), data)
            return None
        if name == "read_backup":
            return base64.b64encode(store.read_backup(entry, self._backup_name(args))).decode()
        if name == "load_journal":
            return store.load_journal(entry).to_json()
        if name == "save_journal":
            store.save_journal(entry, self._own_journal(args))
            return None
        raise self._refuse(f"unknown request {name!r}")

    def _own_journal(self, args: JSONDict) -> jr.Journal:
        journal = jr.Journal.from_json(args.get("journal") or {})
        if (posixpath.normpath(journal.root), join_rel(journal.inst)) != (self.root, self.inst):
            raise self._refuse("a journal of another installation")
        return journal

    def _make_entry(self, store: jr.DirectStore, args: JSONDict) -> str:
        asked = (args.get("run_id"), posixpath.normpath(str(args.get("root"))))
        if (
            self.run_id is None
            or asked != (self.run_id, self.root)
            or (join_rel(str(args.get("inst"))) != self.inst)
        ):
            raise self._refuse("an entry for another installation")
        entry = store.make_entry(self.run_id, self.root, self.inst)
        self.entries.add(posixpath.normpath(entry))
        self.created.append(entry)
        return entry

    def _entry(self, entry: str) -> str:
        if posixpath.normpath(entry) not in self.entries:
            raise self._refuse("an entry that is not its own")
        return entry

    def _backup_name(self, args: JSONDict) -> str:
        name = str(args.get("name"))
        if not jr.BACKUP_NAME.match(name):
            raise self._refuse("a backup name that apply does not write")
        return name

    def _refuse(self, what: str) -> jr.BackupStoreError:
        return jr.BackupStoreError(f"worker asked for {what}; refused", where=self.root)


# -- running a worker -------------------------------------------------------------------

Work = Callable[[Channel], JSONDict]
Serve = Callable[[str, JSONDict], Any]


def preload() -> None:
    """Import every module of :data:`PRELOAD` (see there)."""
    for name in PRELOAD:
        importlib.import_module(name)


#: Requests a worker may defer to its result message (:meth:`Channel.defer`); more is a
#: bad message.
MAX_DEFERRED = 8


def answer(serve: Serve | None, message: JSONDict) -> JSONDict:
    """The reply to a worker's store request ``message`` (``{"call", "args"}``): ``{"ok":
    answer}`` or ``{"error": ...}``."""
    try:
        if serve is None:
            raise jr.BackupStoreError("no store requests expected from this worker")
        args = message.get("args")
        return {"ok": serve(str(message.get("call")), args if isinstance(args, dict) else {})}
    except Exception as exc:  # NOTE: a hostile request must not end the agent
        return {"error": _error_json(exc)}


def serve_deferred(serve: Serve | None, message: JSONDict) -> str:
    """Perform the store requests a worker sent with its result (``deferred``, see
    :meth:`Channel.defer`), in order, before the result counts; "" or what could not be
    done (the caller then reports the job as failed: its apply is put back).

    Raises ValueError for a malformed list (a bad message).
    """
    deferred = message.get("deferred", [])
    if not isinstance(deferred, list) or len(deferred) > MAX_DEFERRED:
        raise ValueError(f"deferred requests are not a list of at most {MAX_DEFERRED}")
    for request in deferred:
        if not isinstance(request, dict):
            raise ValueError("a deferred request is not an object")
        reply = answer(serve, request)
        if "error" in reply:
            err = reply["error"]
            return (
                f"its store could not {request.get('call')} "
                f"({err.get('type')}: {err.get('message')})"
            )
    return ""


def run_as(
    account: Account,
    root_path: str,
    work: Work,
    *,
    serve: Serve | None = None,
    timeout: float = DEFAULT_WORKER_TIMEOUT,
) -> JSONDict:
    """Run ``work(channel)`` in a forked child dropped to ``account``; its JSON result.

    The account root is opened (by root) before the drop and used through
    :func:`open_root`. ``serve(name, args)`` answers the worker's store requests. A worker
    that raises, dies (``kill -9``, a fault point), stalls past ``timeout`` or sends
    garbage raises :class:`WorkerError` here, with its traceback or stderr tail; the
    calling agent goes on.
    """
    preload()
    root_fd = os.open(root_path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    # NOTE: not a with-block: the forked child must leave through os._exit, not __exit__.
    err = tempfile.TemporaryFile(prefix="patchd-worker-")  # noqa: SIM115
    to_child = os.pipe()
    to_parent = os.pipe()
    os.set_blocking(to_child[1], False)  # NOTE: a stopped worker must not block our writes
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child always leaves through os._exit
        _child(account, root_path, root_fd, err.fileno(), to_child[0], to_parent[1], work)
    os.close(root_fd)
    os.close(to_child[0])
    os.close(to_parent[1])
    try:
        return _parent(pid, account, to_parent[0], to_child[1], err, serve, timeout)
    finally:
        os.close(to_parent[0])
        os.close(to_child[1])
        err.close()


def cut_off(err_fd: int, *kept: int) -> None:
    """In a freshly forked worker: stdin from /dev/null, stdout and stderr to ``err_fd``,
    every other inherited descriptor but ``kept`` cut off, ``kept`` not inherited by the
    programs it starts (``php -l``), SIGINT back to its default.

    NOTE: cut off (the agent's protocol stream, its zip, sockets) by pointing those
    descriptors at /dev/null rather than closing them: a Python object still owning one
    may close it later, which must not hit a reused number.
    """
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(err_fd, 1)
    os.dup2(err_fd, 2)
    keep = {0, 1, 2, null, *kept}
    fds = os.listdir("/proc/self/fd") if os.path.isdir("/proc/self/fd") else []
    for fd in sorted(int(name) for name in fds):
        if fd not in keep:
            with contextlib.suppress(OSError):
                os.dup2(null, fd, inheritable=False)
    for fd in kept:
        os.set_inheritable(fd, False)
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _child(
    account: Account,
    root_path: str,
    root_fd: int,
    err_fd: int,
    read_fd: int,
    write_fd: int,
    work: Work,
) -> None:
    """The worker: isolate, drop, work, answer; never returns."""
    code = 70
    try:
        cut_off(err_fd, root_fd, read_fd, write_fd)
        _PREOPENED.clear()
        _PREOPENED[posixpath.normpath(root_path)] = root_fd
        channel = Channel(read_fd, write_fd)
        drop_privileges(account)
        os.environ.pop("TMPDIR", None)
        tempfile.tempdir = None  # NOTE: chosen again, now writable by the account
        os.chdir("/")
        try:
            result = work(channel)
        except BaseException as exc:
            error = {**_error_json(exc), "traceback": traceback.format_exc()}
            channel.send_result({"raise": error})
        else:
            channel.send_result({"result": result})
            code = 0
    except BaseException:
        try:
            traceback.print_exc()
            sys.stderr.flush()
        except BaseException:
            pass
    finally:
        os._exit(code)


def _parent(
    pid: int,
    account: Account,
    read_fd: int,
    write_fd: int,
    err: Any,
    serve: Serve | None,
    timeout: float,
) -> JSONDict:
    """Serve the worker's requests until it answers; reap it; its result."""
    deadline = time.monotonic() + timeout
    reader = _LineReader(read_fd)
    outcome: JSONDict | None = None
    failure = unsaved = ""
    try:
        while outcome is None:
            line = reader.readline(deadline)
            if line is None:
                break
            message = json.loads(line)
            if not isinstance(message, dict):
                raise ValueError("worker message is not an object")
            if "call" in message:
                _write_all(write_fd, _encode(answer(serve, message)), deadline)
            elif "result" in message or "raise" in message:
                unsaved = serve_deferred(serve, message)
                outcome = message
            else:
                raise ValueError("worker message of unknown shape")
    except _Timeout:
        failure = f"timed out after {timeout:g} s"
    except (ValueError, OSError, RecursionError) as exc:
        failure = f"sent a bad message ({type(exc).__name__}: {exc})"
    except BaseException:
        _kill(pid)  # NOTE: never leave a worker behind, whatever stops us
        _reap(pid)
        raise
    if outcome is None or failure:
        _kill(pid)
    status = _reap(pid)
    who = f"worker (uid {account.uid})"
    if unsaved:
        raise WorkerError(f"{who} finished, but {unsaved}")
    if outcome is not None and not failure:
        if "result" in outcome and status == 0:
            result = outcome["result"]
            if isinstance(result, dict):
                return result
            raise WorkerError(f"{who} returned a {type(result).__name__}, not an object")
        if "raise" in outcome:
            r = outcome["raise"]
            raise WorkerError(
                f"{who} failed: {r.get('type')}: {r.get('message')}",
                details=str(r.get("traceback") or ""),
            )
    how = failure or _status_text(status)
    raise WorkerError(f"{who} {how}", details=_tail(err))


def _status_text(status: int) -> str:
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = str(sig)
        return f"was killed by signal {sig} ({name})"
    if os.WIFEXITED(status):
        return f"died with exit status {os.WEXITSTATUS(status)} before answering"
    return f"ended with wait status {status}"


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def _reap(pid: int) -> int:
    while True:
        try:
            return os.waitpid(pid, 0)[1]
        except ChildProcessError:
            return 0
        except InterruptedError:
            continue


def _tail(err: Any, limit: int = 4000) -> str:
    """The last ``limit`` bytes the worker wrote to stderr."""
    try:
        size = os.fstat(err.fileno()).st_size
        data = os.pread(err.fileno(), limit, max(0, size - limit))
    except OSError:
        return ""
    return data.decode("utf-8", "backslashreplace")


class _Timeout(Exception):
    """The worker did not answer before the deadline."""


class _LineReader:
    """Reads lines from a pipe with a deadline (a stopped worker must not hang us)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.buf = bytearray()

    def readline(self, deadline: float) -> bytes | None:
        """The next line (without its newline), or None at end of input."""
        while True:
            nl = self.buf.find(b"\n")
            if nl >= 0:
                line = bytes(self.buf[:nl])
                del self.buf[: nl + 1]
                return line
            if len(self.buf) > MAX_MESSAGE:
                raise ValueError(f"message longer than {MAX_MESSAGE} bytes")
            _wait(self.fd, deadline, readable=True)
            chunk = os.read(self.fd, READ_CHUNK)
            if not chunk:
                return None
            self.buf += chunk


def _wait(fd: int, deadline: float, *, readable: bool) -> None:
    left = deadline - time.monotonic()
    if left <= 0:
        raise _Timeout
    r, w, _x = select.select([fd] if readable else [], [] if readable else [fd], [], left)
    if not r and not w:
        raise _Timeout


def _write_all(fd: int, data: bytes, deadline: float) -> None:
    view = memoryview(data)
    while view:
        _wait(fd, deadline, readable=False)
        try:
            n = os.write(fd, view[: 1 << 16])
        except BlockingIOError:
            continue
        except BrokenPipeError:
            raise OSError(errno.EPIPE, "worker closed its end") from None
        view = view[n:]
