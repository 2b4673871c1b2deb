"""The write primitives: re-checks before replace, no-replace creation, races with swaps."""

from __future__ import annotations

import os
import stat
import threading
import time
from pathlib import Path

import pytest

from patchd.errors import UnsafePathError
from patchd.outcomes import Outcome
from patchd.patcher import apply
from patchd.patcher.names import show
from patchd.patcher.safewrite import (
    FileChangedError,
    create_new,
    open_checked,
    remove_checked,
    replace_checked,
    sha256,
)
from patchd.safefs import SafeRoot
from tests.patcher.trees import INST, MAX, UID, make_diff, make_fleet, patched, snapshot


@pytest.fixture
def root(tmp_path: Path) -> Path:
    acct = tmp_path / "acct"
    (acct / "d").mkdir(parents=True)
    f = acct / "d" / "f.php"
    f.write_bytes(b"one\n")
    f.chmod(0o604)
    os.chown(f, UID, UID + 5)
    os.chown(acct / "d", UID, UID)
    (tmp_path / "outside").write_bytes(b"outside\n")
    return acct


def leftovers(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if p.name.startswith(".patchd-")]


def test_replace_keeps_owner_group_mode(root: Path) -> None:
    with SafeRoot(root) as sr, open_checked(sr, "d/f.php", expected_uid=UID, max_size=MAX) as cf:
        assert cf is not None and cf.data == b"one\n"
        replace_checked(cf, b"two\n", expected_sha=sha256(b"one\n"))
    st = (root / "d" / "f.php").stat()
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0o604, UID, UID + 5)
    assert (root / "d" / "f.php").read_bytes() == b"two\n"
    assert leftovers(root / "d") == []


def test_replace_refuses_content_changed_after_check(root: Path) -> None:
    with SafeRoot(root) as sr, open_checked(sr, "d/f.php", expected_uid=UID, max_size=MAX) as cf:
        assert cf is not None
        (root / "d" / "f.php").write_bytes(b"customer\n")  # same inode, new content
        with pytest.raises(FileChangedError, match="hash differs"):
            replace_checked(cf, b"two\n", expected_sha=cf.facts.sha256)
    assert (root / "d" / "f.php").read_bytes() == b"customer\n"
    assert leftovers(root / "d") == []


def test_replace_refuses_name_swapped_after_check(root: Path, tmp_path: Path) -> None:
    with SafeRoot(root) as sr, open_checked(sr, "d/f.php", expected_uid=UID, max_size=MAX) as cf:
        assert cf is not None
        (root / "d" / "f.php").unlink()
        (root / "d" / "f.php").symlink_to(tmp_path / "outside")
        with pytest.raises(FileChangedError):
            replace_checked(cf, b"two\n", expected_sha=cf.facts.sha256)
    assert (tmp_path / "outside").read_bytes() == b"outside\n"
    assert (root / "d" / "f.php").is_symlink()


def test_replace_refuses_hardlink_added_after_check(root: Path, tmp_path: Path) -> None:
    with SafeRoot(root) as sr, open_checked(sr, "d/f.php", expected_uid=UID, max_size=MAX) as cf:
        assert cf is not None
        os.link(root / "d" / "f.php", tmp_path / "grabbed")
        with pytest.raises(FileChangedError, match="hard link"):
            replace_checked(cf, b"two\n", expected_sha=cf.facts.sha256)


def test_create_never_replaces(root: Path) -> None:
    with SafeRoot(root) as sr:
        create_new(sr, "d/new.php", b"new\n", expected_uid=UID)
        with pytest.raises(FileChangedError, match="exists already"):
            create_new(sr, "d/new.php", b"other\n", expected_uid=UID)
    assert (root / "d" / "new.php").read_bytes() == b"new\n"
    st = (root / "d" / "new.php").stat()
    assert (stat.S_IMODE(st.st_mode), st.st_nlink) == (0o644, 1)
    assert leftovers(root / "d") == []


def test_create_through_symlinked_folder_is_refused(root: Path, tmp_path: Path) -> None:
    (root / "link").symlink_to(tmp_path)
    with SafeRoot(root) as sr, pytest.raises(UnsafePathError, match="symlink"):
        create_new(sr, "link/evil.php", b"x", expected_uid=None)
    assert not (tmp_path / "evil.php").exists()


def test_remove_checks_identity(root: Path) -> None:
    with SafeRoot(root) as sr, open_checked(sr, "d/f.php", expected_uid=UID, max_size=MAX) as cf:
        assert cf is not None
        remove_checked(cf, expected_sha=cf.facts.sha256)
    assert not (root / "d" / "f.php").exists()
    assert leftovers(root / "d") == []


def test_show_escapes_bytes_and_controls() -> None:
    assert show(os.fsdecode(b"a\xffb")) == "a\\xffb"
    assert show("a\nb") == "a\\nb"
    assert show("wp-includes/ü.php") == "wp-includes/ü.php"


def test_swapping_file_and_symlink_during_apply_never_writes_outside(tmp_path: Path) -> None:
    """A customer loop swaps x.php with a symlink to a system file while applies run."""
    fleet = make_fleet(tmp_path)
    patch = make_diff(fleet.base, patched())
    system_before = fleet.system.read_bytes()
    other_before = snapshot(fleet.other)
    target = fleet.inst / "wp-includes" / "x.php"
    original = target.read_bytes()
    stop = threading.Event()

    def swapper() -> None:
        link = fleet.inst / "wp-includes" / ".swap-link"
        keep = fleet.inst / "wp-includes" / ".swap-keep"
        while not stop.is_set():
            try:
                os.symlink(fleet.system, link)
                os.rename(target, keep)
                os.rename(link, target)
                time.sleep(0.0005)
                os.rename(keep, target)  # put the real file back over the link
            except OSError:
                pass

    thread = threading.Thread(target=swapper)
    thread.start()
    outcomes = set()
    try:
        deadline = time.monotonic() + 1.5
        n = 0
        while time.monotonic() < deadline:
            n += 1
            result = apply(
                str(fleet.root),
                INST,
                patch,
                expected_uid=UID,
                min_php=None,
                account_php=None,
                php_binary=None,
                max_file_size=MAX,
                backup_dir=str(fleet.store),
                run_id=f"r{n}",
            )
            outcomes.add(result.outcome)
            if result.outcome is Outcome.PATCHED:
                break
    finally:
        stop.set()
        thread.join()
    assert fleet.system.read_bytes() == system_before
    assert os.stat(fleet.system).st_mode & 0o777 == 0o600
    assert snapshot(fleet.other) == other_before
    assert outcomes <= {Outcome.PATCHED, Outcome.DRY_RUN_FAILED, Outcome.APPLY_FAILED}
    now = target.read_bytes() if not target.is_symlink() else None
    assert now in (original, patched()["wp-includes/x.php"], None)
