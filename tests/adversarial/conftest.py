"""Fixtures of the adversarial suite: ``make_site`` builds :class:`Site` worlds."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.adversarial.trees import Site


@pytest.fixture
def make_site(tmp_path: Path) -> Iterator[Callable[..., Site]]:
    """``make_site(transport, ssh_host=None)`` -> a :class:`Site` removed after the test."""
    made: list[Site] = []

    def make(transport: str = "local", ssh_host: Any = None) -> Site:
        site = Site(tmp_path / f"site{len(made)}", transport, ssh_host)
        made.append(site)
        return site

    yield make
    for site in made:
        site.remove()
