"""The worker itself: who it becomes, what the kernel then refuses, how it fails."""

from __future__ import annotations

import json
import os
import pwd
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from patchd.patcher import privdrop
from patchd.patcher.journal import Journal, load_journal
from patchd.patcher.privdrop import Account, Channel, ProxyStore, StoreServer, WorkerError
from tests.patcher.trees import INST
from tests.privdrop.kit import UID_A, UID_B, Accounts, make_accounts, searchable_base

A = Account(UID_A, UID_A)


@pytest.fixture
def acc() -> Iterator[Accounts]:
    # NOTE: below a folder every uid may search, so a refusal is the file's, not the path's.
    with searchable_base() as base:
        yield make_accounts(base)


def _try(func: Any) -> str:
    """Run ``func``; ``"ok"`` or the exception's class name."""
    try:
        func()
    except OSError as exc:
        return type(exc).__name__
    return "ok"


def _open_for_write(path: Path) -> None:
    with open(path, "r+b") as fh:
        fh.write(b"X")


def test_the_worker_holds_only_the_account_ids_and_cannot_regain_root(acc: Accounts) -> None:
    def work(_ch: Channel) -> dict[str, Any]:
        try:
            os.setuid(0)
            regained = True
        except PermissionError:
            regained = False
        status = Path("/proc/self/status").read_text().splitlines()
        return {
            "resuid": list(os.getresuid()),
            "resgid": list(os.getresgid()),
            "groups": os.getgroups(),
            "regained": regained,
            "status": [ln for ln in status if ln.startswith(("Uid:", "Gid:", "Groups:"))],
            "pid": os.getpid(),
        }

    got = privdrop.run_as(A, str(acc.a), work)
    assert got["resuid"] == [UID_A] * 3 and got["resgid"] == [UID_A] * 3
    assert got["groups"] == [] and got["regained"] is False
    assert got["status"][0].split()[1:] == [str(UID_A)] * 4  # real, effective, saved, fs
    assert got["status"][2].split()[1:] == []
    assert got["pid"] != os.getpid()


def test_the_kernel_refuses_what_the_account_may_not_write(acc: Accounts) -> None:
    """(a) a root-owned 0644 file outside the account, (b) the other account's 0644 file:
    PermissionError; (c) the account's own file: written."""
    foreign = acc.inst("b") / "index.php"
    own = acc.inst("a") / "index.php"
    for path in (foreign, own):
        assert stat.S_IMODE(path.stat().st_mode) == 0o644

    def work(_ch: Channel) -> dict[str, Any]:
        root = privdrop.open_root(str(acc.a))
        own_fd = os.open(f"{INST}/index.php", os.O_WRONLY | os.O_APPEND, dir_fd=root.fd)
        os.write(own_fd, b"\n")
        os.close(own_fd)
        return {
            "system": _try(lambda: os.open(acc.system, os.O_WRONLY)),
            "other": _try(lambda: os.open(foreign, os.O_RDWR)),
            "own": "ok",
        }

    got = privdrop.run_as(A, str(acc.a), work)
    assert got == {"system": "PermissionError", "other": "PermissionError", "own": "ok"}


def test_a_planted_link_is_stopped_by_the_uid_even_without_any_check(acc: Accounts) -> None:
    """The write primitive without its checks (a plain ``open(path, "r+b")``) run as the
    account cannot modify another account's or root's 0644 file reached through a symlink
    or a hardlink planted in the account's own tree."""
    foreign = acc.inst("b") / "wp-includes" / "version.php"
    links = acc.inst("a") / "wp-includes"
    (links / "sym-foreign.php").symlink_to(foreign)
    (links / "sym-system.php").symlink_to(acc.system)
    # NOTE: the customer cannot make these hardlinks (protected_hardlinks); a file already
    # shared (e.g. restored from an old backup) is what the test plants as root.
    os.link(foreign, links / "hard-foreign.php")
    os.link(acc.system, links / "hard-system.php")
    before = {p: p.read_bytes() for p in (foreign, acc.system)}
    names = ("sym-foreign.php", "sym-system.php", "hard-foreign.php", "hard-system.php")

    def work(_ch: Channel) -> dict[str, Any]:
        out = {}
        for name in names:
            path = acc.inst("a") / "wp-includes" / name
            out[name] = _try(lambda p=path: _open_for_write(p))
        return out

    got = privdrop.run_as(A, str(acc.a), work)
    assert got == dict.fromkeys(names, "PermissionError")
    assert {p: p.read_bytes() for p in before} == before
    # The same plain open as root would have written: that is what the uid drop stops.
    with open(links / "hard-foreign.php", "r+b"):
        pass


def test_identity_decisions(acc: Accounts, tmp_path: Path) -> None:
    # uid from the inventory; no passwd entry: the root folder's group.
    who = privdrop.identity(str(acc.a), UID_A)
    assert (who.expected_uid, who.account) == (UID_A, Account(UID_A, UID_A))
    # missing uid: the account root's owner is used as if the inventory said it.
    who = privdrop.identity(str(acc.b), None)
    assert (who.expected_uid, who.account) == (UID_B, Account(UID_B, UID_B))
    # a passwd entry wins for the group.
    nobody = pwd.getpwnam("nobody")
    who = privdrop.identity(str(acc.a), nobody.pw_uid)
    assert who.account == Account(nobody.pw_uid, nobody.pw_gid)
    # uid 0, said or found: work stays in this process, owner check forced to root.
    root_owned = tmp_path / "rootacct"
    root_owned.mkdir()
    for uid in (0, None):
        who = privdrop.identity(str(root_owned), uid)
        assert (who.expected_uid, who.account) == (0, None), who
    # a group of root is refused.
    os.chown(root_owned, UID_A, 0)
    with pytest.raises(privdrop.PrivilegeError, match="gid 0"):
        privdrop.identity(str(root_owned), None)
    with pytest.raises(privdrop.PrivilegeError):
        privdrop.drop_privileges(Account(UID_A, 0))


def test_a_dying_raising_or_stalled_worker_is_an_error_not_the_end(acc: Accounts) -> None:
    def dies(_ch: Channel) -> dict[str, Any]:
        os.write(2, b"last words\n")
        os._exit(137)

    def raises(_ch: Channel) -> dict[str, Any]:
        raise RuntimeError("bug in the work")

    def stalls(_ch: Channel) -> dict[str, Any]:
        os.kill(os.getpid(), 19)  # SIGSTOP, as the customer (same uid) could send
        return {}

    with pytest.raises(WorkerError, match="exit status 137") as caught:
        privdrop.run_as(A, str(acc.a), dies)
    assert "last words" in caught.value.details
    with pytest.raises(WorkerError, match="RuntimeError: bug in the work") as caught:
        privdrop.run_as(A, str(acc.a), raises)
    assert "Traceback" in caught.value.details
    with pytest.raises(WorkerError, match=r"timed out after 0\.5 s"):
        privdrop.run_as(A, str(acc.a), stalls, timeout=0.5)
    assert privdrop.run_as(A, str(acc.a), lambda _ch: {"still": "fine"}) == {"still": "fine"}


def test_the_store_server_only_serves_the_workers_own_installation(acc: Accounts) -> None:
    """A worker runs as the customer: its store requests are checked by root."""
    server = StoreServer(str(acc.store), root=str(acc.a), inst=INST, run_id="r1")
    foreign = Journal(str(acc.b), INST, "r1", "applying")
    own = Journal(str(acc.a), INST, "r1", "applying")

    def work(ch: Channel) -> dict[str, Any]:
        store = ProxyStore(ch)
        out: dict[str, Any] = {}

        def attempt(key: str, func: Any) -> None:
            try:
                out[key] = ["ok", func()]
            except Exception as exc:
                out[key] = [type(exc).__name__, str(exc)]

        attempt("foreign_entry", lambda: store.make_entry("r1", str(acc.b), INST))
        attempt("other_run", lambda: store.make_entry("r2", str(acc.a), INST))
        root_a, root_b = str(acc.a), str(acc.b)
        attempt("foreign_begin", lambda: store.begin("r1", root_b, INST, [("0000.orig", b"")], own))
        # NOTE: every name and the journal are checked before anything is made: no entry
        # is left behind.
        attempt("begin_bad_name", lambda: store.begin("r1", root_a, INST, [("../x", b"")], own))
        attempt("begin_foreign_journal", lambda: store.begin("r1", root_a, INST, [], foreign))
        attempt("guess", lambda: store.load_journal(str(acc.store / "r1" / "x")))
        two = [("0000.orig", b"one"), ("0001.orig", b"two")]
        begun = store.begin("r1", root_a, INST, two, own)
        out["begun"] = begun
        entry = store.make_entry("r1", str(acc.a), INST)
        out["entry"] = entry
        attempt("own_backup", lambda: store.write_backup(entry, "0000.orig", b"orig"))
        attempt("read_back", lambda: store.read_backup(entry, "0000.orig").decode())
        attempt("bad_name", lambda: store.write_backup(entry, "../../evil", b"x"))
        attempt("journal_name", lambda: store.write_backup(entry, "journal.json", b"{}"))
        attempt("foreign_journal", lambda: store.save_journal(entry, foreign))
        attempt("parent", lambda: store.entry_of(os.path.dirname(entry)))
        return out

    got = privdrop.run_as(A, str(acc.a), work, serve=server)
    refused = [k for k, v in got.items() if isinstance(v, list) and v[0] == "BackupStoreError"]
    expected = ["foreign_entry", "other_run", "guess", "bad_name", "journal_name"]
    expected += ["foreign_begin", "begin_bad_name", "begin_foreign_journal"]
    assert sorted(refused) == sorted([*expected, "foreign_journal", "parent"]), got
    assert got["own_backup"][0] == "ok" and got["read_back"] == ["ok", "orig"]
    begun = Path(got["begun"])
    assert sorted((p.name, p.read_bytes()) for p in begun.iterdir() if p.suffix == ".orig") == [
        ("0000.orig", b"one"),
        ("0001.orig", b"two"),
    ]
    assert load_journal(str(begun)) == own  # begin saved the journal after the originals
    # NOTE: the refused begins left nothing: the two entries are the begun one and entry.
    assert sorted(p.name for p in begun.parent.iterdir()) == sorted(
        [begun.name, Path(got["entry"]).name]
    )
    backup = Path(got["entry"]) / "0000.orig"
    st = backup.stat()
    assert (stat.S_IMODE(st.st_mode), st.st_uid, backup.read_bytes()) == (0o600, 0, b"orig")
    assert sorted(p.name for p in Path(got["entry"]).iterdir()) == ["0000.orig"]


def test_the_done_journal_travels_with_the_result(acc: Accounts) -> None:
    """``finish`` sends nothing on its own: the agent saves the done journal when the
    result arrives, before the result counts; a refused one makes the result an error
    (the apply is then put back by the caller); a malformed list is a bad message."""
    server = StoreServer(str(acc.store), root=str(acc.a), inst=INST, run_id="r1")
    own = Journal(str(acc.a), INST, "r1", "applying")

    def finishes(ch: Channel) -> dict[str, Any]:
        store = ProxyStore(ch)
        entry = store.begin("r1", str(acc.a), INST, [], own)
        store.finish(entry, own.with_state("done"))
        # NOTE: nothing was sent for finish: it waits on the channel for the result.
        return {"entry": entry, "waiting": [d["call"] for d in ch._deferred]}

    got = privdrop.run_as(A, str(acc.a), finishes, serve=server)
    assert got["waiting"] == ["save_journal"]
    assert load_journal(got["entry"]).state == "done"

    def finish_then_ask(ch: Channel) -> dict[str, Any]:
        store = ProxyStore(ch)
        entry = store.begin("r1", str(acc.a), INST, [], own)
        store.finish(entry, own.with_state("done"))
        return {"state": store.load_journal(entry).state}  # NOTE: the deferred one goes first

    assert privdrop.run_as(A, str(acc.a), finish_then_ask, serve=server) == {"state": "done"}

    def finishes_foreign(ch: Channel) -> dict[str, Any]:
        store = ProxyStore(ch)
        entry = store.begin("r1", str(acc.a), INST, [], own)
        store.finish(entry, Journal(str(acc.b), INST, "r1", "done"))
        return {"entry": entry}

    with pytest.raises(WorkerError, match="finished, but its store could not save_journal"):
        privdrop.run_as(A, str(acc.a), finishes_foreign, serve=server)
    states = sorted(load_journal(str(e)).state for e in server.created)
    assert states == ["applying", "done", "done"]

    def floods(ch: Channel) -> dict[str, Any]:
        for _ in range(privdrop.MAX_DEFERRED + 1):
            ch.defer("check")
        return {}

    with pytest.raises(WorkerError, match=r"bad message.*deferred requests"):
        privdrop.run_as(A, str(acc.a), floods, serve=server)


def test_garbage_from_a_worker_is_an_error(acc: Accounts) -> None:
    """A worker (the customer's uid) writing nonsense or hostile requests to the pipe."""

    def garbage(ch: Channel) -> dict[str, Any]:
        # NOTE: bypasses the API on purpose: 100,000 nested brackets.
        ch._w.write(b"[" * 100000 + b"\n")
        ch._w.flush()
        return {}

    def odd_request(ch: Channel) -> dict[str, Any]:
        ch.send({"call": "write_backup", "args": ["not", "an", "object"]})
        return {"reply": json.loads(ch._r.readline())}

    server = StoreServer(str(acc.store), root=str(acc.a), inst=INST, run_id="r1")
    with pytest.raises(WorkerError, match="bad message"):
        privdrop.run_as(A, str(acc.a), garbage, serve=server)
    got = privdrop.run_as(A, str(acc.a), odd_request, serve=server)
    assert "error" in got["reply"], got
    assert list(acc.store.iterdir()) == []
