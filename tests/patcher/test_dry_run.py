"""Dry run on real account trees: every verdict, in the documented order, nothing written."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from patchd.engine.model import FilePatch
from patchd.outcomes import Outcome, Reason
from patchd.patcher import DryRunResult, dry_run
from patchd.patcher.safewrite import sha256
from tests.patcher.trees import (
    INST,
    MAX,
    ORIGINAL,
    OTHER_UID,
    UID,
    Fleet,
    make_diff,
    make_fleet,
    patched,
    snapshot,
)


@pytest.fixture
def fleet(tmp_path: Path) -> Fleet:
    return make_fleet(tmp_path)


@pytest.fixture
def patch(fleet: Fleet) -> list[FilePatch]:
    return make_diff(fleet.base, patched())


def run(fleet: Fleet, files: list[FilePatch], **kw: object) -> DryRunResult:
    args: dict[str, object] = {
        "expected_uid": UID,
        "min_php": None,
        "account_php": None,
        "php_binary": None,
        "max_file_size": MAX,
    }
    args.update(kw)
    before = snapshot(fleet.base)
    result = dry_run(str(fleet.root), INST, files, **args)  # type: ignore[arg-type]
    assert snapshot(fleet.base) == before, "a dry run must not change anything"
    return result


def test_applicable_plans_every_file(fleet: Fleet, patch: list[FilePatch]) -> None:
    result = run(fleet, patch)
    assert result.status == "applicable"
    assert result.outcome is None and result.reason is None
    plans = {p.rel: p for p in result.files}
    assert set(plans) == {"wp-includes/x.php", "wp-admin/y.php"}
    x = plans["wp-includes/x.php"]
    assert x.pre_sha256 == sha256(ORIGINAL["wp-includes/x.php"][0])
    assert x.new_bytes == patched()["wp-includes/x.php"]
    assert x.post_sha256 == sha256(patched()["wp-includes/x.php"])
    assert (x.mode, x.uid, x.gid) == (0o640, UID, UID)
    assert result.to_json()["files"][0]["path"] in plans


def test_already_patched(fleet: Fleet, patch: list[FilePatch]) -> None:
    for rel, data in patched().items():
        (fleet.inst / rel).write_bytes(data)
    result = run(fleet, patch)
    assert (result.status, result.outcome, result.reason) == (
        "already-patched",
        Outcome.ALREADY_PATCHED,
        None,
    )


def test_half_patched_is_modified(fleet: Fleet, patch: list[FilePatch]) -> None:
    (fleet.inst / "wp-admin/y.php").write_bytes(patched()["wp-admin/y.php"])
    result = run(fleet, patch)
    assert result.reason is Reason.MODIFIED
    assert result.detail.startswith("modified: wp-admin/y.php hunk 1 ")


def test_modified_names_file_and_hunk(fleet: Fleet, patch: list[FilePatch]) -> None:
    x = fleet.inst / "wp-includes/x.php"
    x.write_bytes(x.read_bytes().replace(b"return $value . '-10';", b"return $value . 'X';"))
    result = run(fleet, patch)
    assert (result.status, result.outcome, result.reason) == (
        "failed",
        Outcome.DRY_RUN_FAILED,
        Reason.MODIFIED,
    )
    assert result.detail.startswith("modified: wp-includes/x.php hunk 2 (context differs at line")
    assert result.files == ()


def test_missing_file(fleet: Fleet, patch: list[FilePatch]) -> None:
    (fleet.inst / "wp-admin/y.php").unlink()
    result = run(fleet, patch)
    assert result.reason is Reason.MISSING_FILE
    assert result.detail == "missing-file: wp-admin/y.php"


def test_missing_folder(fleet: Fleet, patch: list[FilePatch]) -> None:
    shutil.rmtree(fleet.inst / "wp-admin")
    result = run(fleet, patch)
    assert result.reason is Reason.MISSING_FILE
    assert "wp-admin/y.php" in result.detail and "folder wp-admin is missing" in result.detail


def test_symlinked_target_to_other_account(fleet: Fleet, patch: list[FilePatch]) -> None:
    target = fleet.inst / "wp-includes/x.php"
    target.unlink()
    target.symlink_to(fleet.other / INST / "wp-includes/x.php")
    result = run(fleet, patch)
    assert result.reason is Reason.UNSAFE_PATH
    assert result.detail == "unsafe-path: wp-includes/x.php is a symlink"


def test_symlinked_parent_folder(fleet: Fleet, patch: list[FilePatch]) -> None:
    shutil.rmtree(fleet.inst / "wp-includes")
    (fleet.inst / "wp-includes").symlink_to(fleet.other / INST / "wp-includes")
    result = run(fleet, patch)
    assert result.reason is Reason.UNSAFE_PATH
    assert result.detail == "unsafe-path: wp-includes is a symlink, not a folder"


def test_symlinked_folder_above_installation(fleet: Fleet, patch: list[FilePatch]) -> None:
    shutil.rmtree(fleet.inst)
    fleet.inst.symlink_to(fleet.other / INST)
    result = run(fleet, patch)
    assert result.reason is Reason.UNSAFE_PATH
    assert "html is a symlink" in result.detail


def test_hardlinked_target(fleet: Fleet, patch: list[FilePatch]) -> None:
    target = fleet.inst / "wp-includes/x.php"
    target.unlink()
    os.link(fleet.system, target)
    os.chown(fleet.system, UID, UID)  # NOTE: even an owner match must not let it through
    result = run(fleet, patch)
    assert result.reason is Reason.UNSAFE_PATH
    assert result.detail == "unsafe-path: wp-includes/x.php has 2 hard links"


def test_fifo_does_not_hang(fleet: Fleet, patch: list[FilePatch]) -> None:
    target = fleet.inst / "wp-admin/y.php"
    target.unlink()
    os.mkfifo(target)
    result = run(fleet, patch)
    assert result.reason is Reason.UNSAFE_PATH
    assert result.detail == "unsafe-path: wp-admin/y.php is not a regular file (FIFO)"


def test_folder_in_place_of_file(fleet: Fleet, patch: list[FilePatch]) -> None:
    target = fleet.inst / "wp-admin/y.php"
    target.unlink()
    target.mkdir()
    result = run(fleet, patch)
    assert result.detail == "unsafe-path: wp-admin/y.php is not a regular file (folder)"


def test_wrong_owner(fleet: Fleet, patch: list[FilePatch]) -> None:
    os.chown(fleet.inst / "wp-includes/x.php", OTHER_UID, OTHER_UID)
    result = run(fleet, patch)
    assert result.reason is Reason.UNSAFE_PATH
    assert result.detail == (
        f"unsafe-path: wp-includes/x.php is owned by uid {OTHER_UID}, expected {UID}"
    )


def test_wrong_owner_of_folder(fleet: Fleet, patch: list[FilePatch]) -> None:
    os.chown(fleet.inst / "wp-includes", 0, 0)
    result = run(fleet, patch)
    assert result.detail == f"unsafe-path: wp-includes is owned by uid 0, expected {UID}"


def test_too_large(fleet: Fleet, patch: list[FilePatch]) -> None:
    result = run(fleet, patch, max_file_size=100)
    assert result.reason is Reason.UNSAFE_PATH
    assert "is too large" in result.detail


def test_unsafe_is_checked_before_missing(fleet: Fleet, patch: list[FilePatch]) -> None:
    (fleet.inst / "wp-admin/y.php").unlink()
    os.chown(fleet.inst / "wp-includes/x.php", OTHER_UID, OTHER_UID)
    assert run(fleet, patch).reason is Reason.UNSAFE_PATH


def test_php_incompatible(fleet: Fleet, patch: list[FilePatch]) -> None:
    result = run(fleet, patch, min_php="8.1", account_php="7.4")
    assert result.reason is Reason.PHP_INCOMPATIBLE
    assert result.detail == "php-incompatible: bundle needs PHP >= 8.1, account has 7.4"
    assert run(fleet, patch, min_php="8.1", account_php="8.2").status == "applicable"


def test_lint_failed_with_real_php(fleet: Fleet) -> None:
    broken = patched()
    broken["wp-includes/x.php"] = broken["wp-includes/x.php"].replace(
        b"htmlspecialchars($value)", b"htmlspecialchars($value"
    )
    result = run(fleet, make_diff(fleet.base, broken), php_binary="/usr/bin/php")
    assert result.reason is Reason.LINT_FAILED
    assert result.detail.startswith("lint-failed: wp-includes/x.php: PHP Parse error")
    assert "in wp-includes/x.php on line" in result.detail


def test_lint_passes_good_patch(fleet: Fleet, patch: list[FilePatch]) -> None:
    assert run(fleet, patch, php_binary="/usr/bin/php").status == "applicable"


def test_php_binary_inside_account_is_never_run(fleet: Fleet, patch: list[FilePatch]) -> None:
    planted = fleet.root / "bin" / "php"
    planted.parent.mkdir()
    marker = fleet.base / "ran"
    planted.write_text(f"#!/bin/sh\ntouch {marker}\n")
    planted.chmod(0o755)
    result = dry_run(
        str(fleet.root),
        INST,
        patch,
        expected_uid=UID,
        min_php=None,
        account_php=None,
        php_binary=str(planted),
        max_file_size=MAX,
    )
    assert result.reason is Reason.LINT_FAILED
    assert "inside the account" in result.detail
    assert not marker.exists()


def test_non_utf8_name_is_escaped(fleet: Fleet) -> None:
    name = os.fsdecode(b"caf\xe9.php")
    (fleet.inst / name).write_bytes(b"<?php\n$a = 1;\n$b = 2;\n$c = 3;\n")
    os.chown(fleet.inst / name, UID, UID)
    diff = make_diff(
        fleet.base,
        {name: b"<?php\n$a = 1;\n$b = 22;\n$c = 3;\n"},
        {name: b"<?php\n$a = 1;\n$b = 2;\n$c = 3;\n"},
    )
    assert run(fleet, diff).status == "applicable"
    (fleet.inst / name).write_bytes(b"<?php\n$a = 1;\n$b = 5;\n$c = 3;\n")
    result = run(fleet, diff)
    assert result.detail.startswith("modified: caf\\xe9.php hunk 1")
    result.detail.encode("ascii")  # printable, no lone surrogates


def test_diff_path_escaping_the_installation_is_refused(fleet: Fleet) -> None:
    good = make_diff(fleet.base, {"wp-admin/y.php": patched()["wp-admin/y.php"]})[0]
    evil = FilePatch("../../etc/shadow", "../../etc/shadow", good.hunks)
    result = run(fleet, [evil])
    assert result.reason is Reason.UNSAFE_PATH
