"""Fixtures of the ledger tests: a fresh ledger in a temporary folder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from patchd.ledger import Ledger, open_ledger


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    """A migrated, empty ledger at ``tmp_path/state/ledger.db``."""
    with open_ledger(tmp_path / "state" / "ledger.db") as led:
        yield led
