"""Apply, rollback and recover on real account trees, including injected faults and kill -9."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from patchd.engine.model import FilePatch, Hunk, HunkLine
from patchd.outcomes import Outcome, Reason
from patchd.patcher import ApplyResult, apply, recover, rollback
from patchd.patcher.faults import FAULT_POINTS
from patchd.patcher.journal import BackupStoreError, find_journals, load_journal
from patchd.patcher.safewrite import sha256
from tests.patcher.trees import (
    INST,
    MAX,
    ORIGINAL,
    UID,
    Fleet,
    make_diff,
    make_fleet,
    patched,
    snapshot,
)

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def fleet(tmp_path: Path) -> Fleet:
    return make_fleet(tmp_path)


@pytest.fixture
def patch(fleet: Fleet) -> list[FilePatch]:
    return make_diff(fleet.base, patched())


def do_apply(fleet: Fleet, files: list[FilePatch], run_id: str = "run-1") -> ApplyResult:
    return apply(
        str(fleet.root),
        INST,
        files,
        expected_uid=UID,
        min_php=None,
        account_php=None,
        php_binary="/usr/bin/php",
        max_file_size=MAX,
        backup_dir=str(fleet.store),
        run_id=run_id,
    )


def outside(fleet: Fleet) -> dict[str, object]:
    """Everything that is not account p1: the other account and the system file."""
    return {
        "other": snapshot(fleet.other),
        "system": fleet.system.read_bytes(),
        "system_stat": os.stat(fleet.system)[:7],
    }


def test_apply_patches_and_keeps_mode_and_owner(fleet: Fleet, patch: list[FilePatch]) -> None:
    before, others = snapshot(fleet.root), outside(fleet)
    result = do_apply(fleet, patch)
    assert (result.outcome, result.reason) == (Outcome.PATCHED, None), result.detail
    for rel, data in patched().items():
        path = fleet.inst / rel
        assert path.read_bytes() == data
        st = path.stat()
        assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, st.st_nlink) == (
            ORIGINAL[rel][1],
            UID,
            UID,
            1,
        )
    after = snapshot(fleet.root)
    assert set(after) == set(before), "no temp files left, nothing else created"
    unchanged = {k: v for k, v in before.items() if not k.endswith(("x.php", "y.php"))}
    assert all(after[k] == v for k, v in unchanged.items())
    assert outside(fleet) == others
    # Backups: 0600, root-owned, byte-identical to the originals; journal marked done.
    assert result.journal is not None
    journal = load_journal(result.journal)
    assert journal.state == "done"
    for jf in journal.files:
        backup = Path(result.journal) / str(jf.backup)
        st = backup.stat()
        assert (stat.S_IMODE(st.st_mode), st.st_uid) == (0o600, 0)
        assert backup.read_bytes() == ORIGINAL[jf.rel][0]
        assert sha256(backup.read_bytes()) == jf.pre
    json.dumps(result.to_json())
    # A second apply finds the fix present.
    assert do_apply(fleet, patch, "run-2").outcome is Outcome.ALREADY_PATCHED


def test_dry_run_failure_writes_nothing(fleet: Fleet, patch: list[FilePatch]) -> None:
    target = fleet.inst / "wp-includes/x.php"
    target.unlink()
    target.symlink_to(fleet.system)
    before, others = snapshot(fleet.root), outside(fleet)
    result = do_apply(fleet, patch)
    assert (result.outcome, result.reason) == (Outcome.DRY_RUN_FAILED, Reason.UNSAFE_PATH)
    assert result.journal is None
    assert snapshot(fleet.root) == before and outside(fleet) == others
    assert list(fleet.store.iterdir()) == []


@pytest.mark.parametrize("point", FAULT_POINTS)
def test_oserror_at_fault_point_restores_everything(
    fleet: Fleet, patch: list[FilePatch], point: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    before, others = snapshot(fleet.root), outside(fleet)
    monkeypatch.setenv("PATCHD_FAULT", f"{point}:oserror")
    result = do_apply(fleet, patch)
    assert result.outcome is Outcome.APPLY_FAILED
    assert result.detail.startswith(f"apply-failed: injected fault at {point}")
    assert "restored to its prior state" in result.detail
    assert snapshot(fleet.root) == before, "every file byte-identical, same mode and owner"
    assert outside(fleet) == others
    monkeypatch.delenv("PATCHD_FAULT")
    assert recover(str(fleet.store)) == [], "nothing left for recovery"
    assert do_apply(fleet, patch, "run-2").outcome is Outcome.PATCHED


_CHILD = """
import json, sys
from patchd.engine.model import FilePatch
from patchd.patcher import apply
a = json.load(open(sys.argv[1]))
files = [FilePatch.from_json(f) for f in a.pop("files")]
r = apply(a.pop("root"), a.pop("inst"), files, **a)
print(json.dumps(r.to_json()))
"""


def apply_in_child(
    fleet: Fleet, files: list[FilePatch], fault: str
) -> subprocess.CompletedProcess[str]:
    args = fleet.base / "args.json"
    args.write_text(
        json.dumps(
            {
                "root": str(fleet.root),
                "inst": INST,
                "files": [f.to_json() for f in files],
                "expected_uid": UID,
                "min_php": None,
                "account_php": None,
                "php_binary": None,
                "max_file_size": MAX,
                "backup_dir": str(fleet.store),
                "run_id": "run-k",
            }
        )
    )
    env = {**os.environ, "PATCHD_FAULT": fault, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-c", _CHILD, str(args)],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("point", FAULT_POINTS)
def test_kill_9_then_recover_restores_everything(
    fleet: Fleet, patch: list[FilePatch], point: str
) -> None:
    before, others = snapshot(fleet.root), outside(fleet)
    proc = apply_in_child(fleet, patch, point)
    assert proc.returncode == 137, proc.stderr
    assert proc.stdout == ""
    if point in ("after_first_replace", "before_verify"):
        assert snapshot(fleet.root) != before, "the kill really left a half-done state"
    results = recover(str(fleet.store))
    if point == "after_backup":
        assert results == []  # no journal yet: nothing was replaced
    else:
        assert len(results) == 1 and results[0].ok, results
        assert load_journal(results[0].journal).state == "recovered"
        json.dumps(results[0].to_json())
    assert snapshot(fleet.root) == before
    assert outside(fleet) == others
    assert recover(str(fleet.store)) == [], "recovery is done once"
    assert do_apply(fleet, patch, "run-2").outcome is Outcome.PATCHED


def test_rollback_restores_exactly(fleet: Fleet, patch: list[FilePatch]) -> None:
    before, others = snapshot(fleet.root), outside(fleet)
    result = do_apply(fleet, patch)
    assert result.journal is not None
    rb = rollback(str(fleet.root), INST, result.journal)
    assert rb.ok, rb.detail
    assert {f.status for f in rb.files} == {"restored"}
    assert snapshot(fleet.root) == before
    assert outside(fleet) == others
    assert load_journal(result.journal).state == "rolled-back"
    json.dumps(rb.to_json())
    again = rollback(str(fleet.root), INST, result.journal)
    assert again.ok and {f.status for f in again.files} == {"unchanged"}


def test_rollback_refuses_file_changed_since_patch(fleet: Fleet, patch: list[FilePatch]) -> None:
    result = do_apply(fleet, patch)
    assert result.journal is not None
    x = fleet.inst / "wp-includes/x.php"
    customer = x.read_bytes() + b"// customer edit\n"
    x.write_bytes(customer)
    rb = rollback(str(fleet.root), INST, os.path.join(result.journal, "journal.json"))
    assert not rb.ok
    status = {f.rel: (f.status, f.detail) for f in rb.files}
    assert status["wp-includes/x.php"] == ("conflict", "conflict: changed since patch")
    assert status["wp-admin/y.php"][0] == "restored"
    assert x.read_bytes() == customer
    assert (fleet.inst / "wp-admin/y.php").read_bytes() == ORIGINAL["wp-admin/y.php"][0]
    assert "wp-includes/x.php: conflict: changed since patch" in rb.detail


def test_rollback_refuses_a_symlink_swapped_in_after_patch(
    fleet: Fleet, patch: list[FilePatch]
) -> None:
    result = do_apply(fleet, patch)
    assert result.journal is not None
    others = outside(fleet)
    x = fleet.inst / "wp-includes/x.php"
    x.unlink()
    x.symlink_to(fleet.system)
    rb = rollback(str(fleet.root), INST, result.journal)
    assert not rb.ok
    assert "wp-includes/x.php is a symlink" in rb.detail
    assert outside(fleet) == others
    assert x.is_symlink()


def test_rollback_refuses_journal_of_other_installation(
    fleet: Fleet, patch: list[FilePatch]
) -> None:
    result = do_apply(fleet, patch)
    assert result.journal is not None
    rb = rollback(str(fleet.other), INST, result.journal)
    assert not rb.ok and "another installation" in rb.detail


def _new_file_patch(rel: str, lines: list[bytes]) -> FilePatch:
    hunk = Hunk(0, 0, 1, len(lines), tuple(HunkLine("+", ln) for ln in lines))
    return FilePatch(None, rel, (hunk,))


def test_create_and_delete_files_then_roll_back(fleet: Fleet, patch: list[FilePatch]) -> None:
    before = snapshot(fleet.root)
    index = ORIGINAL["index.php"][0]
    deletion = FilePatch(
        "index.php",
        None,
        (Hunk(1, 2, 0, 0, tuple(HunkLine("-", ln) for ln in index.splitlines(keepends=True))),),
    )
    creation = _new_file_patch("wp-includes/guard.php", [b"<?php\n", b"// guard\n"])
    result = do_apply(fleet, [*patch, creation, deletion])
    assert result.outcome is Outcome.PATCHED, result.detail
    guard = fleet.inst / "wp-includes/guard.php"
    assert guard.read_bytes() == b"<?php\n// guard\n"
    st = guard.stat()
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0o644, UID, UID)
    assert not (fleet.inst / "index.php").exists()
    assert result.journal is not None
    rb = rollback(str(fleet.root), INST, result.journal)
    assert rb.ok, rb.detail
    assert snapshot(fleet.root) == before


def test_creation_onto_planted_symlink_is_refused(fleet: Fleet) -> None:
    others = outside(fleet)
    (fleet.inst / "wp-includes/guard.php").symlink_to(fleet.system)
    result = do_apply(fleet, [_new_file_patch("wp-includes/guard.php", [b"<?php\n"])])
    assert (result.outcome, result.reason) == (Outcome.DRY_RUN_FAILED, Reason.UNSAFE_PATH)
    assert outside(fleet) == others


def test_unsafe_backup_store_is_refused(fleet: Fleet, patch: list[FilePatch]) -> None:
    before = snapshot(fleet.root)
    fleet.store.chmod(0o777)
    with pytest.raises(BackupStoreError):
        do_apply(fleet, patch)
    assert snapshot(fleet.root) == before
    assert find_journals(str(fleet.store)) == []


def test_immutable_file_mid_apply_restores_the_first(fleet: Fleet, patch: list[FilePatch]) -> None:
    """A real I/O failure on the second file (EPERM: immutable) undoes the first replace."""
    assert [fp.path for fp in patch] == ["wp-admin/y.php", "wp-includes/x.php"]
    x = fleet.inst / "wp-includes/x.php"
    subprocess.run(["chattr", "+i", str(x)], check=True)
    try:
        before, others = snapshot(fleet.root), outside(fleet)
        result = do_apply(fleet, patch)
        assert result.outcome is Outcome.APPLY_FAILED
        assert "Operation not permitted" in result.detail
        assert "restored to its prior state" in result.detail
        assert snapshot(fleet.root) == before
        assert outside(fleet) == others
        assert result.journal is not None
        assert load_journal(result.journal).state == "restored"
    finally:
        subprocess.run(["chattr", "-i", str(x)], check=True)


def test_non_utf8_name_through_journal_and_rollback(fleet: Fleet) -> None:
    name = os.fsdecode(b"wp-includes/caf\xe9\n.php")
    old, new = b"<?php\n$a = 1;\n$b = 2;\n", b"<?php\n$a = 1;\n$b = 3;\n"
    (fleet.inst / name).write_bytes(old)
    os.chown(fleet.inst / name, UID, UID)
    hunk = Hunk(
        1,
        3,
        1,
        3,
        (
            HunkLine(" ", b"<?php\n"),
            HunkLine(" ", b"$a = 1;\n"),
            HunkLine("-", b"$b = 2;\n"),
            HunkLine("+", b"$b = 3;\n"),
        ),
    )
    before = snapshot(fleet.root)
    result = do_apply(fleet, [FilePatch(name, name, (hunk,))])
    assert result.outcome is Outcome.PATCHED, result.detail
    assert (fleet.inst / name).read_bytes() == new
    as_json = json.dumps(result.to_json())
    assert "caf\\\\xe9\\\\n.php" in as_json  # escaped display form, raw bytes in base64
    assert result.journal is not None
    assert load_journal(result.journal).files[0].rel == name
    assert rollback(str(fleet.root), INST, result.journal).ok
    assert snapshot(fleet.root) == before
