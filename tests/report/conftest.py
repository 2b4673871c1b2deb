"""The notify tests' rolled-out world, plus one installation with hostile strings."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from patchd.ledger import runs as ledger_runs
from patchd.ledger.db import open_ledger
from patchd.ledger.models import Outcome, Reason, ResultRecord
from tests.notify.conftest import NotifyWorld, notify_world_template  # noqa: F401

HOSTILE_PATH = 'html/<img src=x onerror="window.pwned=1">\u202etxt'
HOSTILE_DETAIL = "modified: x.php</td><script>window.pwned=2</script> hunk 1 (context differs)"


@pytest.fixture
def report_world(notify_world_template: NotifyWorld, tmp_path: Path) -> NotifyWorld:  # noqa: F811
    """A private ledger copy with an extra, hostile result (account ``a-evil``)."""
    ledger = tmp_path / "ledger.db"
    shutil.copyfile(notify_world_template.ledger, ledger)
    with open_ledger(ledger) as db:
        ledger_runs.record_result(
            db,
            notify_world_template.run,
            ResultRecord(
                account="a-evil",
                customer_id="c-evil",
                host="web01",
                path=HOSTILE_PATH,
                cms="wordpress",
                version="6.4.2",
                outcome=Outcome.DRY_RUN_FAILED,
                reason=Reason.MODIFIED,
                detail=HOSTILE_DETAIL,
                policy="auto",
            ),
        )
    return replace(notify_world_template, ledger=ledger)
