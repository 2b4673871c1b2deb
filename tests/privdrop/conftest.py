"""The privilege-drop tests need real uids: they run as root (as CI does), never skipped."""

from __future__ import annotations

import os

import pytest

NOT_ROOT = (
    "tests/privdrop needs root: it chowns account trees to uids 23001/23002 and checks that "
    "the worker drops to them. Run it as root, e.g. `sudo -E python -m pytest tests/privdrop`, "
    "or in the CI container (which runs as root)."
)


@pytest.fixture(autouse=True)
def _require_root() -> None:
    """Fail (never skip) every test here when not running as root."""
    if os.geteuid() != 0:
        pytest.fail(NOT_ROOT)
