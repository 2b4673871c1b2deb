"""A 1,200-account fleet with every nested and mixed layout of issue 19, scanned locally
and over SSH: every expected installation is found exactly once, every planted stray
marker is reported ``unrecognised``, and nothing else is reported.

The fleet is ``generate_fleet(..., layouts=True)`` (seed 19, thin): about 15 % of its
accounts hold one of :data:`patchd_fixtures.fleet_plan.LAYOUTS` (classic TYPO3 below a
composer project, WordPress below a TYPO3 docroot, a composer web-dir or a Roundcube,
three CMSs side by side, copies and backups, installations behind in-account links, a
Drupal 7 site and a WordPress remnant no detector reads, a Roundcube unpacked into a
WordPress's folder); ``expected.json`` lists each
installation once, at its real folder, and each stray under ``unrecognised``.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from patchd_fixtures.fleet import generate_fleet
from patchd_fixtures.fleet_plan import LAYOUTS
from tests.scan import kit
from tests.scan.conftest import FLEET_HOSTS
from tests.support.sshd import SSHHost

ACCOUNTS = 1200


@pytest.fixture(scope="module")
def layout_fleet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dest = tmp_path_factory.mktemp("layout-fleet") / "fleet"
    return generate_fleet(dest, ACCOUNTS, seed=19, thin=True, hosts=FLEET_HOSTS, layouts=True)


def _expected(fleet: Path) -> tuple[list[tuple[str, str, str]], list[tuple[str, str]], Counter]:
    doc = kit.truth(fleet / "expected.json")
    installs = sorted((acc, i["path"], i["cms"]) for acc, i in kit.truth_installations(doc))
    strays = sorted(
        (acc, f"{u['path']}: unrecognised: {u['cms']} marker {u['marker']} is here")
        for acc, account in doc["accounts"].items()
        for u in account.get("unrecognised", [])
    )
    layouts = Counter(a["layout"] for a in doc["accounts"].values() if a.get("layout"))
    return installs, strays, layouts


def _assert_complete(fleet: Path, res: kit.CliResult) -> None:
    want, strays, _ = _expected(fleet)
    assert res.code == (1 if strays else 0), res.err  # scan errors exit 1
    got = sorted((i["account"], i["path"], i["cms"]) for i in res.json["installations"])
    dupes = [k for k, n in Counter(got).items() if n > 1]
    assert dupes == []  # found at most once ...
    assert got == want  # ... and every expected installation exactly once, none extra
    errors: list[dict[str, Any]] = res.json["errors"]
    reported = sorted((e["account"], e["message"].split(", but", 1)[0]) for e in errors)
    assert reported == strays  # every stray reported unrecognised, no other error
    assert all(
        "no installation was recognised" in e["message"] or "two CMSs in one folder" in e["message"]
        for e in errors
    )


def test_the_fleet_plants_every_layout(layout_fleet: Path) -> None:
    want, strays, layouts = _expected(layout_fleet)
    assert set(layouts) == set(LAYOUTS)
    assert sum(layouts.values()) > ACCOUNTS // 10
    assert (
        len(strays)
        == sum(layouts[k] for k in LAYOUTS if k.startswith("stray-")) + layouts["two-in-one-folder"]
    )
    paths = {(acc, path) for acc, path, _cms in want}
    assert len(paths) == len(want)  # every installation listed once ...
    for acc, path in paths:  # ... at its real folder (no link on the way)
        parts = Path(path).parts
        base = layout_fleet / "accounts" / acc
        assert not any((base.joinpath(*parts[: i + 1])).is_symlink() for i in range(len(parts)))
    symlinked = [a for a, _ in _layout_accounts(layout_fleet, "symlinked")]
    assert symlinked and all((a, "blog") in paths and (a, "sites/main") in paths for a in symlinked)
    root = layout_fleet / "accounts" / symlinked[0]
    assert (root / "html").is_symlink() and (root / "sites/main/blog").is_symlink()


def _layout_accounts(fleet: Path, layout: str) -> list[tuple[str, dict[str, Any]]]:
    doc = kit.truth(fleet / "expected.json")
    return [(k, a) for k, a in doc["accounts"].items() if a.get("layout") == layout]


def test_every_installation_once_and_every_stray_unrecognised(
    layout_fleet: Path, tmp_path: Path
) -> None:
    res = kit.scan(tmp_path / "ledger.db", layout_fleet / "accounts.yaml")
    _assert_complete(layout_fleet, res)


def test_the_same_over_ssh(layout_fleet: Path, sshd_hosts: list[SSHHost], tmp_path: Path) -> None:
    entries = {n: kit.ssh_host_entry(h) for n, h in zip(FLEET_HOSTS, sshd_hosts, strict=False)}
    inventory = kit.rewrite_hosts(
        layout_fleet / "accounts.yaml", tmp_path / "accounts.yaml", entries
    )
    _assert_complete(layout_fleet, kit.scan(tmp_path / "ledger.db", inventory))
