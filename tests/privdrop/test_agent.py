"""End to end: the shipped agent (LocalTransport: same bootstrap as SSH, running as root
here) rolls out to accounts owned by distinct uids through its workers."""

from __future__ import annotations

import shutil
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from patchd.transport import LocalTransport
from tests.patcher.trees import ORIGINAL, patched, snapshot
from tests.privdrop.kit import (
    UID_A,
    UID_B,
    Accounts,
    lint_spy,
    make_accounts,
    rollout_args,
    spied_uids,
    the_patch,
    worker_status_uids,
)


@pytest.fixture
def spy() -> Iterator[Path]:
    folder = lint_spy()
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_rollout_through_the_agent_works_as_each_account(
    tmp_path: Path, spy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    acc: Accounts = make_accounts(tmp_path)
    php = str(spy / "php")
    installs = [
        {"account": "a", "root": str(acc.a), "uid": UID_A, "php_binary": php},
        {"account": "b", "root": str(acc.b), "php_binary": php},
    ]
    args = rollout_args(acc, the_patch(tmp_path), installs)
    system = acc.system.read_bytes()
    before = snapshot(acc.a)
    # A worker killed mid-apply (fault point = kill -9) is an error item; the agent puts
    # the account back at once (as the account) and goes on.
    monkeypatch.setenv("PATCHD_FAULT", "after_first_replace")
    with LocalTransport("web01").open() as session:
        assert session.info["euid"] == 0, "the agent runs as root"
        died = session.run("rollout", {**args, "installations": args["installations"][:1]})
        assert died.items[0]["outcome"] == "error", died.items
        assert "exit status 137" in died.items[0]["detail"]
        assert "; recovered: restored 1 file(s)" in died.items[0]["detail"]
        assert snapshot(acc.a) == before
        rec = session.run("recover", {"backup_dir": str(acc.store), "runs": ["run-1"]})
        assert rec.done == {"recovered": 0}
    monkeypatch.delenv("PATCHD_FAULT")
    with LocalTransport("web01").open() as session:
        result = session.run("rollout", args)
    assert [(i["account"], i["outcome"]) for i in result.items] == [
        ("a", "patched"),
        ("b", "patched"),
    ], result.items
    for which, uid in (("a", UID_A), ("b", UID_B)):
        for rel, data in patched().items():
            path = acc.inst(which) / rel
            st = path.stat()
            assert path.read_bytes() == data
            assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (ORIGINAL[rel][1], uid, uid)
        assert not [k for k in snapshot(getattr(acc, which)) if ".patchd-" in k]
    assert acc.system.read_bytes() == system
    assert spied_uids(spy) == {UID_A, UID_B}
    # /proc/<worker>/status, read by the linter it started: real, effective, saved, fs uid.
    assert worker_status_uids(spy) == {(str(UID_A),) * 4, (str(UID_B),) * 4}
