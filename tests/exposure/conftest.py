"""A fixture fleet with a past: scanned, patched by a bundle naming CVE-2099-0001, one
patched file changed back by its customer, scanned again; the fixture advisory databases
(both formats, :mod:`patchd_fixtures.advisories`) imported.

Accounts (all WordPress, in ``html``):

- ``x-patched`` (customer c1): 6.4.2, patched by the bundle -> CVE-2099-0001 mitigated;
- ``x-reverted`` (customer c1): 6.4.2, patched, then ``comment-template.php`` put back to
  the release's (vulnerable) content -> exposed;
- ``x-open`` (customer c2): 6.4.1, notify-only (never patched) -> exposed;
- ``x-already`` (customer c5): 6.4.2 whose security files already carry the fix (the
  customer patched them): the rollout finds it ``already-patched`` -> mitigated;
- ``x-new`` (customer c3): 6.4.3 without the hello-like plugin -> nothing: all clear;
- ``x-unknown`` (customer c4): version file unreadable -> unknown.

Every installation but x-new carries the plugin ``hello-like`` 1.7.2, which the
extension advisory CVE-2099-0101 (< 1.7.3) affects.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from patchd_fixtures.advisories import write_friendsofphp, write_osv
from tests.e2e import kit
from tests.support.smtp import smtp_server  # noqa: F401

COMMENT_TEMPLATE = "wp-includes/comment-template.php"
ACCOUNTS = {
    "x-patched": ("c1", "6.4.2", "auto"),
    "x-reverted": ("c1", "6.4.2", "auto"),
    "x-open": ("c2", "6.4.1", "notify-only"),
    "x-already": ("c5", "6.4.2", "auto"),
    "x-new": ("c3", "6.4.3", "auto"),
    "x-unknown": ("c4", "6.4.2", "auto"),
}


@dataclass(frozen=True)
class Fleet:
    base: Path
    inventory: Path
    bundles: Path
    ledger: Path
    friendsofphp: Path
    osv: Path
    scans: tuple[int, int]

    def patchd(self, *args: str) -> kit.CliResult:
        return kit.patchd(self.ledger, *args)

    def exposure(self, *args: str) -> kit.CliResult:
        return self.patchd("exposure", "--bundles", str(self.bundles), *args)


def _scan(ledger: Path, inventory: Path) -> int:
    res = kit.patchd(ledger, "scan", "--accounts", str(inventory), "--json")
    assert res.code == 0, res.err
    return int(res.json["scan"])


def _build(base: Path) -> Fleet:
    ledger = base / "ledger.db"
    for version in ("6.4.1", "6.4.2", "6.4.3"):
        kit.install_wordpress(base / "releases", version, inst=version)
        res = kit.patchd(ledger, "releases", "add", str(base / "releases" / version))
        assert res.code == 0, res.err
    accounts = []
    for acct, (customer, version, policy) in ACCOUNTS.items():
        inst = kit.install_wordpress(base / "srv" / acct, version)
        if acct == "x-new":
            (inst / "wp-content/plugins/hello-like.php").unlink()
        if acct == "x-already":
            for rel in kit.WP_FILES:
                (inst / rel).write_bytes(kit.post_image(rel))
        if acct == "x-unknown":
            (inst / "wp-includes/version.php").write_text("<?php\n// emptied by a customer\n")
        accounts.append(
            kit.account(
                acct,
                "web01",
                base / "srv" / acct,
                policy=policy,
                customer=customer,
                docroots=["html"],
            )
        )
    inventory = kit.write_inventory(
        base / "accounts.yaml", {"web01": {"transport": "local"}}, accounts
    )
    bundles = base / "bundles"
    kit.build_bundle(bundles / "wp-2024-comment-xss")
    backups = base / "backups"
    backups.mkdir(mode=0o700)
    first = _scan(ledger, inventory)
    res = kit.patchd(
        ledger, "rollout", str(bundles / "wp-2024-comment-xss"), "--accounts", str(inventory),
        "--backup-dir", str(backups), "--yes", "--json",
    )  # fmt: skip
    assert res.code == 0, res.err
    outcomes = {r["account"]: r["outcome"] for r in res.json["results"]}
    assert outcomes["x-patched"] == outcomes["x-reverted"] == "patched", outcomes
    assert outcomes["x-already"] == "already-patched", outcomes
    # the customer of x-reverted puts the release's file back: vulnerable again
    (base / "srv/x-reverted/html" / COMMENT_TEMPLATE).write_bytes(
        kit.release_file("6.4.2", COMMENT_TEMPLATE)
    )
    second = _scan(ledger, inventory)
    fop = write_friendsofphp(base / "friendsofphp")
    osv = write_osv(base / "osv")
    res = kit.patchd(ledger, "advisories", "import", str(fop), str(osv))
    assert res.code == 0, res.err
    return Fleet(base, inventory, bundles, ledger, fop, osv, (first, second))


@pytest.fixture(scope="session")
def fleet_template(tmp_path_factory: pytest.TempPathFactory) -> Fleet:
    """The fleet, built once (never written to: use ``fleet``)."""
    return _build(tmp_path_factory.mktemp("exposure-fleet"))


@pytest.fixture
def fleet(fleet_template: Fleet, tmp_path: Path) -> Fleet:
    """The fleet with a private ledger and private advisory sources."""
    ledger = tmp_path / "ledger.db"
    shutil.copy(fleet_template.ledger, ledger)
    fop = tmp_path / "friendsofphp"
    osv = tmp_path / "osv"
    shutil.copytree(fleet_template.friendsofphp, fop)
    shutil.copytree(fleet_template.osv, osv)
    return replace(fleet_template, ledger=ledger, friendsofphp=fop, osv=osv)
