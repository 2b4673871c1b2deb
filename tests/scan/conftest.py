"""Fixtures for the scan tests: one generated fleet (hosts a, b, c) and its releases."""

from __future__ import annotations

from pathlib import Path

import pytest

from patchd_fixtures.families import FAMILIES
from patchd_fixtures.fleet import generate_fleet
from patchd_fixtures.releases import write_release_archive

#: Small enough to scan in about a second; seed 1 holds customer-modified installations
#: of all three families, classic and composer TYPO3, and accounts with two installations.
FLEET_ACCOUNTS = 40
FLEET_HOSTS = ["a", "b", "c"]


@pytest.fixture(scope="session")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated fleet (never written to: copy it with ``kit.copy_fleet``)."""
    return generate_fleet(
        tmp_path_factory.mktemp("scan-fleet"), FLEET_ACCOUNTS, seed=1, hosts=FLEET_HOSTS
    )


@pytest.fixture(scope="session")
def release_archives(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Every fixture release of every family as a tar.gz archive."""
    out = tmp_path_factory.mktemp("scan-releases")
    return [
        write_release_archive(name, version, out / name)
        for name, fam in sorted(FAMILIES.items())
        for version in fam.versions
    ]
