"""An installation another process is writing into is left alone: apply and recover wait
their turn (the host-side lock behind 'SSH dropped, the orphaned agent still applies')."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

import pytest

from patchd.engine.model import FilePatch
from patchd.outcomes import Outcome
from patchd.patcher import recover
from patchd.patcher.journal import load_journal
from tests.patcher.test_apply import apply_in_child, do_apply
from tests.patcher.trees import INST, Fleet, make_diff, make_fleet, patched, snapshot


@pytest.fixture
def fleet(tmp_path: Path) -> Fleet:
    return make_fleet(tmp_path)


@pytest.fixture
def patch(fleet: Fleet) -> list[FilePatch]:
    return make_diff(fleet.base, patched())


def _hold(folder: Path) -> int:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return fd


def test_apply_refuses_an_installation_someone_else_holds(
    fleet: Fleet, patch: list[FilePatch]
) -> None:
    before = snapshot(fleet.root)
    fd = _hold(fleet.root / INST)
    try:
        result = do_apply(fleet, patch)
    finally:
        os.close(fd)
    assert result.outcome is Outcome.APPLY_FAILED
    assert "another patchd process" in result.detail
    assert snapshot(fleet.root) == before
    assert do_apply(fleet, patch, "run-2").outcome is Outcome.PATCHED


def test_recover_waits_for_a_live_apply(fleet: Fleet, patch: list[FilePatch]) -> None:
    before = snapshot(fleet.root)
    proc = apply_in_child(fleet, patch, "after_first_replace")
    assert proc.returncode == 137, proc.stderr
    half = snapshot(fleet.root)
    assert half != before
    fd = _hold(fleet.root / INST)  # stands for the orphaned agent still at work
    try:
        busy = recover(str(fleet.store))
    finally:
        os.close(fd)
    assert len(busy) == 1 and not busy[0].ok
    assert "another patchd process" in busy[0].detail
    assert snapshot(fleet.root) == half, "recover touched an installation in use"
    assert load_journal(busy[0].journal).state == "applying"
    done = recover(str(fleet.store))
    assert len(done) == 1 and done[0].ok
    assert snapshot(fleet.root) == before
