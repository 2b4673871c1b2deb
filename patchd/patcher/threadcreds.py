"""Per-thread credentials: make one thread of a root process an account, for good.

Linux keeps credentials per thread (task); POSIX wants them per process, so glibc's
``setresuid``/``setresgid``/``setgroups`` (and Python's ``os.setresuid`` ...) signal every
thread of the process to make the same call. The raw system calls change only the
calling thread. :func:`become` uses them: the thread first gets its own descriptor table
and file-system attributes (``unshare(CLONE_FILES | CLONE_FS)``), keeps only the
descriptors it is given, then drops groups, gid and uid (real, effective and saved) and
proves that root is gone: raw ``setresuid(0, 0, 0)``/``setresgid``/``setgroups`` fail,
no capability is left, ``no_new_privs`` is set (a set-uid program cannot give root back).

A thread made an account must end when its work ends: it can never be root again.

NOTE: stdlib-only (ctypes) and Python 3.8 compatible; runs on the hosts inside the agent.
Supported where the system call numbers are known (:data:`SYSCALLS`); elsewhere
:func:`supported` is False and callers fork a worker per account instead.
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
import threading
from typing import Any, Iterable, Optional  # noqa: UP035

#: setgroups, setresuid, setresgid system call numbers per machine (``uname -m``).
SYSCALLS = {
    "x86_64": (116, 117, 119),
    "aarch64": (159, 147, 149),
}

#: close_range system call number per machine (the same on both, Linux >= 5.9).
CLOSE_RANGE = {"x86_64": 436, "aarch64": 436}
#: capget system call number per machine.
CAPGET = {"x86_64": 125, "aarch64": 90}
#: ``_LINUX_CAPABILITY_VERSION_3``: 64-bit capability sets, two 32-bit words each.
CAPABILITY_VERSION_3 = 0x20080522
#: The highest descriptor number close_range is asked to close (its ``unsigned int``).
MAX_FD = 0xFFFFFFFF

CLONE_FS = 0x00000200
CLONE_FILES = 0x00000400
PR_SET_NO_NEW_PRIVS = 38
PR_SET_DUMPABLE = 4

_LIBC: Optional[Any] = None  # noqa: UP045


class CredentialError(OSError):
    """The thread could not become the account, or root was not gone afterwards."""


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    ]


def _libc() -> Any:
    global _LIBC
    if _LIBC is None:
        _LIBC = ctypes.CDLL(None, use_errno=True)
    return _LIBC


def supported() -> bool:
    """Whether :func:`become` can work here (Linux on a machine of :data:`SYSCALLS`)."""
    if platform.system() != "Linux" or platform.machine() not in SYSCALLS:
        return False
    try:
        _libc()
    except OSError:
        return False
    return True


def _call(name: str, result: int) -> None:
    if result != 0:
        code = ctypes.get_errno()
        raise CredentialError(code, f"{name}: {os.strerror(code)}")


def _syscall(nr: int, *args: int) -> int:
    return int(_libc().syscall(ctypes.c_long(nr), *(ctypes.c_long(a) for a in args)))


def no_dump() -> None:
    """Make the whole process non-dumpable (no ptrace, /proc files owned by root) before
    any of its threads becomes an account. NOTE: the kernel does this too when a thread's
    effective uid changes (``fs.suid_dumpable`` 0 or 2); this does not rely on it."""
    _call("prctl(PR_SET_DUMPABLE)", _libc().prctl(PR_SET_DUMPABLE, 0, 0, 0, 0))


def private_files(keep: Iterable[int]) -> None:
    """Give the calling thread its own descriptor table and file-system attributes (cwd,
    umask, root), then close in it every descriptor but ``keep``.

    NOTE: the other threads' tables are untouched; the descriptors closed here stay open
    for them. Must run while the thread is still root: the listing of its own
    ``/proc/.../fd`` is root's once the process is non-dumpable.
    """
    _call("unshare(CLONE_FILES|CLONE_FS)", _libc().unshare(CLONE_FILES | CLONE_FS))
    wanted = set(keep)
    if _close_gaps(sorted(wanted)):
        return
    listing = f"/proc/self/task/{threading.get_native_id()}/fd"
    for name in os.listdir(listing):
        fd = int(name)
        if fd not in wanted:
            try:
                os.close(fd)
            except OSError as exc:  # NOTE: the listing's own descriptor is gone already
                if exc.errno != errno.EBADF:
                    raise


def _close_gaps(keep: list[int]) -> bool:
    """Close every descriptor but ``keep`` (sorted) with ``close_range`` (Linux 5.9);
    False where the kernel does not have it (nothing closed then)."""
    nr = CLOSE_RANGE.get(platform.machine())
    if nr is None:
        return False
    low, first = 0, True
    for fd in [*keep, MAX_FD + 1]:
        if fd > low:
            if _syscall(nr, low, fd - 1, 0) != 0:
                code = ctypes.get_errno()
                if code == errno.ENOSYS and first:
                    return False
                raise CredentialError(code, f"close_range: {os.strerror(code)}")
            first = False
        low = fd + 1
    return True


def become(uid: int, gid: int) -> None:
    """Make the calling thread ``uid``/``gid`` with no supplementary groups, for good.

    Raises :class:`CredentialError` when a step fails or root is still reachable.
    """
    if uid == 0 or gid == 0:
        raise CredentialError(errno.EPERM, "refusing to 'drop' to uid or gid 0")
    setgroups, setresuid, setresgid = SYSCALLS[platform.machine()]
    _call("setgroups([])", _syscall(setgroups, 0, 0))
    _call("setresgid", _syscall(setresgid, gid, gid, gid))
    _call("setresuid", _syscall(setresuid, uid, uid, uid))
    no_new_privs()
    check(uid, gid)


def no_new_privs() -> None:
    """Set ``no_new_privs`` for the calling thread (and what it starts): executing a
    set-uid or file-capability program does not give anything back."""
    _call("prctl(PR_SET_NO_NEW_PRIVS)", _libc().prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))


def check(uid: int, gid: int) -> None:
    """Prove the calling thread is ``uid``/``gid`` and cannot get root back."""
    setgroups, setresuid, setresgid = SYSCALLS[platform.machine()]
    if os.getresuid() != (uid, uid, uid) or os.getresgid() != (gid, gid, gid):
        raise CredentialError(errno.EPERM, "ids after the drop are not the account's")
    if os.getgroups() not in ([], [gid]):
        raise CredentialError(errno.EPERM, f"supplementary groups kept: {os.getgroups()}")
    root = ctypes.c_uint32(0)
    regained = [
        name
        for name, result in (
            ("setresuid(0, 0, 0)", _syscall(setresuid, 0, 0, 0)),
            ("setresgid(0, 0, 0)", _syscall(setresgid, 0, 0, 0)),
            ("setgroups([0])", _syscall(setgroups, 1, ctypes.addressof(root))),
        )
        if result == 0
    ]
    if regained:
        raise CredentialError(errno.EPERM, f"root is back after the drop: {regained} succeeded")
    permitted, effective = capabilities()
    if permitted or effective:
        raise CredentialError(
            errno.EPERM,
            f"capabilities kept after the drop: permitted {permitted:#x}, effective {effective:#x}",
        )


def capabilities() -> tuple[int, int]:
    """The calling thread's permitted and effective capability sets (``capget`` of this
    thread: pid 0), as 64-bit masks.

    NOTE: the system call, not ``/proc/.../status``: the same sets from the kernel at a
    fraction of the cost (the status file formats every field of the task), once per job.
    """
    header = _CapHeader(CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    nr = CAPGET[platform.machine()]
    if _syscall(nr, ctypes.addressof(header), ctypes.addressof(data)) != 0:
        code = ctypes.get_errno()
        raise CredentialError(code, f"capget: {os.strerror(code)}")
    permitted = data[0].permitted | data[1].permitted << 32
    effective = data[0].effective | data[1].effective << 32
    return permitted, effective
