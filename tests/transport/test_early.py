"""EarlyTransport: the first session is opened in the background from creation on."""

from __future__ import annotations

from pathlib import Path

import pytest

from patchd.errors import TransportError
from patchd.transport.early import EarlyTransport
from patchd.transport.local import LocalTransport


def test_first_open_is_the_early_session_later_ones_are_new() -> None:
    early = EarlyTransport(LocalTransport("web01"))
    first = early.open()
    second = early.open()
    try:
        assert first is not second
        for session in (first, second):
            assert session.run("ping").done["package_sha256"]
    finally:
        first.close()
        second.close()
    early.discard()  # taken: nothing to close, no error


def test_discard_closes_an_untaken_session() -> None:
    early = EarlyTransport(LocalTransport("web01"))
    early.discard()
    assert early._session is not None
    with pytest.raises(TransportError, match="session unusable"):
        early._session.run("ping")
    early.discard()  # idempotent


def test_an_open_that_failed_is_raised_by_open(tmp_path: Path) -> None:
    early = EarlyTransport(LocalTransport("web01", python=str(tmp_path / "no-python")))
    with pytest.raises(TransportError):
        early.open()
    early.discard()
