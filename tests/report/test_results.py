"""Result rows read a page at a time are the rows of :func:`run_json`, in its order."""

from __future__ import annotations

import pytest

from patchd.errors import PatchdError
from patchd.ledger.db import open_ledger
from patchd.report.results import iter_result_rows, run_json, run_json_head
from tests.notify.conftest import NotifyWorld


@pytest.mark.parametrize("page", [1, 2, 1000])
def test_paged_rows_equal_run_json(report_world: NotifyWorld, page: int) -> None:
    with open_ledger(report_world.ledger) as db:
        whole = run_json(db, report_world.run)
        rows = list(iter_result_rows(db, report_world.run, page=page))
        head = run_json_head(db, report_world.run)
    assert len(rows) > 2  # the world has several results, so pages of 1 and 2 split them
    assert rows == whole["results"]
    assert {**head, "results": rows} == whole


def test_paged_rows_of_an_unknown_run_are_refused(report_world: NotifyWorld) -> None:
    with open_ledger(report_world.ledger) as db, pytest.raises(PatchdError, match="999"):
        list(iter_result_rows(db, 999))
