"""The agent's rollout, recover and rollback ops through the privileged path (run as root)."""

from __future__ import annotations

import errno
import os
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from patchd.agent import ops_rollout
from patchd.patcher import installation, privdrop
from patchd.patcher.faults import FAULT_POINTS
from patchd.patcher.journal import DirectStore, Journal, load_journal
from patchd.patcher.privdrop import Account, Channel, ProxyStore, StoreServer, WorkerError
from tests.patcher.trees import INST, ORIGINAL, patched, snapshot
from tests.privdrop.kit import (
    MAX,
    UID_A,
    UID_B,
    Accounts,
    chown_tree,
    lint_spy,
    make_accounts,
    rollout_args,
    run_op,
    spied_uids,
    the_patch,
)


@pytest.fixture
def acc(tmp_path: Path) -> Accounts:
    # NOTE: below pytest's root-only tmp folder: the worker reaches its account only
    # through the root descriptor the agent opens for it.
    return make_accounts(tmp_path)


@pytest.fixture
def spy() -> Iterator[Path]:
    folder = lint_spy()
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def _installs(acc: Accounts, php: str | None = None) -> list[dict[str, Any]]:
    """Account a with its uid in the inventory, account b without (its root's owner)."""
    return [
        {"account": "a", "root": str(acc.a), "uid": UID_A, "php_binary": php},
        {"account": "b", "root": str(acc.b), "php_binary": php},
    ]


def _rollout(acc: Accounts, **kw: Any) -> list[dict[str, Any]]:
    installs = kw.pop("installs", None) or _installs(acc, kw.pop("php", None))
    items, done = run_op(
        ops_rollout.rollout, rollout_args(acc, the_patch(acc.base), installs, **kw)
    )
    assert done == {"installations": len(installs)}
    return items


def test_apply_and_rollback_run_as_the_account(acc: Accounts, spy: Path) -> None:
    before = {w: snapshot(getattr(acc, w)) for w in "ab"}
    items = _rollout(acc, php=str(spy / "php"))
    assert [(i["account"], i["outcome"]) for i in items] == [("a", "patched"), ("b", "patched")]
    assert spied_uids(spy) == {UID_A, UID_B}, "php -l ran as each account, never as root"
    for which, uid in (("a", UID_A), ("b", UID_B)):
        for rel, data in patched().items():
            st = (acc.inst(which) / rel).stat()
            assert (acc.inst(which) / rel).read_bytes() == data
            assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, st.st_nlink) == (
                ORIGINAL[rel][1],
                uid,
                uid,
                1,
            )
    for item in items:
        entry = Path(item["journal"])
        assert load_journal(str(entry)).state == "done"
        for f in entry.iterdir():
            st = f.stat()
            assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0o600, 0, 0), f
        assert (entry.stat().st_uid, stat.S_IMODE(entry.stat().st_mode)) == (0, 0o700)
    # A dry run now finds the fix present.
    again = _rollout(acc, dry_run=True)
    assert [i["outcome"] for i in again] == ["already-patched", "already-patched"]
    # Rollback (also as the accounts) puts back the exact originals with owners and modes.
    back, _ = run_op(
        ops_rollout.rollback,
        {
            "installations": [
                {"account": i["account"], "root": str(getattr(acc, i["account"])), "path": INST}
                | {"journal": i["journal"]}
                for i in items
            ]
        },
    )
    assert [b["ok"] for b in back] == [True, True], back
    assert {w: snapshot(getattr(acc, w)) for w in "ab"} == before
    assert load_journal(items[0]["journal"]).state == "rolled-back"


def test_the_work_really_lacks_root(acc: Accounts) -> None:
    """A folder the account may not write (root could): apply fails there and restores,
    for the account with its uid in the inventory and for the one without."""
    for which in "ab":
        os.chmod(acc.inst(which) / "wp-admin", 0o555)
    before = {w: snapshot(getattr(acc, w)) for w in "ab"}
    items = _rollout(acc)
    for item in items:
        assert item["outcome"] == "apply-failed", item
        assert "Permission denied" in item["detail"]
        assert "installation restored to its prior state" in item["detail"]
    assert {w: snapshot(getattr(acc, w)) for w in "ab"} == before


#: The fault points the worker passes (``after_backup`` is inside the store's ``begin``,
#: which the agent performs: tests/patcher/test_apply.py kills there in-process).
WORKER_POINTS = [p for p in FAULT_POINTS if p != "after_backup"]


@pytest.mark.parametrize("point", WORKER_POINTS)
def test_kill_9_inside_the_worker_is_put_back_at_once(
    acc: Accounts, point: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker dies at a fault point (like kill -9): that installation is an error, the
    agent recovers it at once (as the account) and goes on with the next one."""
    before = {w: snapshot(getattr(acc, w)) for w in "ab"}
    monkeypatch.setenv("PATCHD_FAULT", point)
    items = _rollout(acc, run_id="run-k")
    monkeypatch.delenv("PATCHD_FAULT")
    for item in items:
        assert item["outcome"] == "error", item
        assert "exit status 137" in item["detail"]
        assert "; recovered: restored" in item["detail"], item
    assert {w: snapshot(getattr(acc, w)) for w in "ab"} == before
    _, done = run_op(ops_rollout.recover, {"backup_dir": str(acc.store), "runs": ["run-k"]})
    assert done == {"recovered": 0}
    assert [i["outcome"] for i in _rollout(acc, run_id="run-k2")] == ["patched", "patched"]


def test_a_done_journal_the_store_cannot_save_puts_the_apply_back(
    acc: Accounts, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker sends its done journal with its result; when the agent cannot save it
    (a full backup disk, say) the installation is not reported patched: the apply is put
    back at once and the item is an error."""
    before = {w: snapshot(getattr(acc, w)) for w in "ab"}
    real = DirectStore.save_journal

    def full_disk(self: DirectStore, entry: str, journal: Journal) -> None:
        if journal.state == "done":
            raise OSError(errno.ENOSPC, "No space left on device")
        real(self, entry, journal)

    monkeypatch.setattr(DirectStore, "save_journal", full_disk)
    items = _rollout(acc, run_id="run-f")
    monkeypatch.undo()
    for item in items:
        assert item["outcome"] == "error", item
        assert "finished, but its store could not save_journal" in item["detail"], item
        assert "No space left on device" in item["detail"], item
        assert "; recovered: restored" in item["detail"], item
    assert {w: snapshot(getattr(acc, w)) for w in "ab"} == before
    assert [i["outcome"] for i in _rollout(acc, run_id="run-f2")] == ["patched", "patched"]


@pytest.mark.parametrize("point", ["after_journal", "after_first_replace", "before_verify"])
def test_recover_op_after_the_whole_agent_died(
    acc: Accounts, point: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker killed while no agent was left to put it back (the agent died too): the
    next ``recover`` op restores the exact originals, working as the account."""
    before = snapshot(acc.a)
    server = StoreServer(str(acc.store), root=str(acc.a), inst=INST, run_id="run-d")
    files = the_patch(acc.base)

    def work(ch: Channel) -> dict[str, Any]:
        res = installation.apply(
            str(acc.a), INST, files, expected_uid=UID_A, min_php=None, account_php=None,
            php_binary=None, max_file_size=MAX, backup_dir=str(acc.store), run_id="run-d",
            store=ProxyStore(ch),
        )  # fmt: skip
        return res.to_json()

    monkeypatch.setenv("PATCHD_FAULT", point)
    with pytest.raises(WorkerError, match="exit status 137"):
        privdrop.run_as(Account(UID_A, UID_A), str(acc.a), work, serve=server)
    monkeypatch.delenv("PATCHD_FAULT")
    assert load_journal(server.created[0]).state == "applying"
    items, done = run_op(ops_rollout.recover, {"backup_dir": str(acc.store), "roots": [str(acc.a)]})
    assert done == {"recovered": 1} and items[0]["ok"], items
    assert snapshot(acc.a) == before
    assert load_journal(server.created[0]).state == "recovered"


def test_injected_oserror_in_the_worker_restores(
    acc: Accounts, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = snapshot(acc.a)
    monkeypatch.setenv("PATCHD_FAULT", "before_verify:oserror")
    items = _rollout(acc, installs=_installs(acc)[:1])
    assert items[0]["outcome"] == "apply-failed"
    assert "installation restored" in items[0]["detail"]
    assert snapshot(acc.a) == before
    assert load_journal(items[0]["journal"]).state == "restored"


def test_root_owned_account_works_as_root_on_root_owned_files_only(acc: Accounts) -> None:
    """uid 0 (said, or the root's owner when uid is missing) runs in the agent itself, with
    the owner check at root: one customer-owned file is refused, not written as root."""
    chown_tree(acc.a, 0)
    chown_tree(acc.b, 0)
    os.chown(acc.inst("b") / "wp-admin" / "y.php", UID_B, UID_B)
    installs = [
        {"account": "a", "root": str(acc.a), "uid": 0},
        {"account": "b", "root": str(acc.b)},
    ]
    items = _rollout(acc, installs=installs)
    assert items[0]["outcome"] == "patched"
    assert (acc.inst("a") / "wp-admin/y.php").stat().st_uid == 0
    assert (items[1]["outcome"], items[1]["reason"]) == ("dry-run-failed", "unsafe-path")
    assert f"owned by uid {UID_B}, expected 0" in items[1]["detail"]


def test_an_account_whose_group_is_root_is_refused(acc: Accounts) -> None:
    os.chown(acc.b, UID_B, 0)
    items = _rollout(acc, installs=_installs(acc)[1:])
    assert items[0]["outcome"] == "error"
    assert "PrivilegeError" in items[0]["detail"] and "gid 0" in items[0]["detail"]
    assert snapshot(acc.b / INST)  # untouched tree still there


def test_an_unusable_store_stops_every_apply_before_anything_is_touched(acc: Accounts) -> None:
    """The agent checks the store once for the batch (the workers send no check of their
    own); a group-writable store makes each installation's apply raise the store error, as
    a check per apply did, and no file or entry is made."""
    before = {w: snapshot(getattr(acc, w)) for w in "ab"}
    acc.store.chmod(0o770)
    items = _rollout(acc)
    assert [i["outcome"] for i in items] == ["error", "error"], items
    assert all("group- or world-writable" in i["detail"] for i in items), items
    assert {w: snapshot(getattr(acc, w)) for w in "ab"} == before
    assert list(acc.store.iterdir()) == []
    acc.store.chmod(0o700)
    assert [i["outcome"] for i in _rollout(acc)] == ["patched", "patched"]
