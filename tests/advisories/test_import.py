"""Reading the advisory databases: FriendsOfPHP YAML, OSV JSON, the package table."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from patchd.advisories.cvss import base_score_v3, severity_of_cvss
from patchd.advisories.friendsofphp import read_checkout
from patchd.advisories.importer import read_source
from patchd.advisories.mapping import PackageMap, load_mapping
from patchd.advisories.model import Target
from patchd.advisories.osv import read_osv
from patchd.errors import AdvisoryError
from patchd.ledger.advisories import load_advisories, store_source
from patchd.ledger.db import open_ledger
from patchd.ledger.migrations import MIGRATIONS
from patchd_fixtures.advisories import write_friendsofphp, write_osv


def test_the_migration_is_named_0005_advisories() -> None:
    assert "0005_advisories" in [name for name, _ in MIGRATIONS]


@pytest.mark.parametrize(
    ("package", "target"),
    [
        ("typo3/cms-core", Target(cms="typo3", component="core")),
        ("typo3/cms-backend", Target(cms="typo3", component="core")),
        ("typo3-ter/my-ext", Target(cms="typo3", component="my_ext", kind="extension")),
        ("drupal/core", Target(cms="drupal", component="core")),
        ("drupal/webform", Target(cms="drupal", component="webform", kind="module")),
        ("roundcube/roundcubemail", Target(cms="roundcube", component="core")),
        ("joomla/joomla-cms", Target(cms="joomla", component="core")),
        ("wpackagist-plugin/akismet", Target(cms="wordpress", component="akismet", kind="plugin")),
        ("wpackagist-theme/astra", Target(cms="wordpress", component="astra", kind="theme")),
        ("symfony/http-kernel", None),
    ],
)
def test_default_mapping(package: str, target: Target | None) -> None:
    assert PackageMap().target(package) == target


def test_mapping_file_extends_the_table(tmp_path: Path) -> None:
    path = tmp_path / "mapping.yaml"
    path.write_text("- {package: georgringer/news, cms: typo3, component: news, kind: extension}\n")
    mapping = load_mapping(path)
    assert mapping.target("georgringer/news") == Target(
        cms="typo3", component="news", kind="extension"
    )
    assert mapping.target("typo3/cms-core") == Target(cms="typo3", component="core")
    path.write_text("- {package: x/y, cms: typo3, colour: red}\n")
    with pytest.raises(AdvisoryError):
        load_mapping(path)


def test_friendsofphp_checkout(tmp_path: Path) -> None:
    root = write_friendsofphp(tmp_path / "fop")
    (root / "broken/pkg").mkdir(parents=True)
    (root / "broken/pkg/bad.yaml").write_text("title: x\nreference: nope\nbranches: {}\n")
    read = read_checkout(root, PackageMap())
    assert read.kind == "friendsofphp" and read.revision.startswith("sha256:")
    assert read.problems == [
        "broken/pkg/bad.yaml: reference 'nope' is not composer://vendor/package"
    ]
    by_id = {a.advisory_id: a for a in read.advisories}
    typo3 = by_id["TYPO3-CORE-SA-2099-001"]
    assert typo3.cve == ("CVE-2099-0200",) and typo3.target == Target(cms="typo3")
    assert typo3.ranges.match("12.4.10") == (True, "12.4.11")
    assert typo3.ranges.match("11.5.34") == (True, "11.5.35")
    assert typo3.ranges.match("12.4.11") == (False, None)
    assert by_id["CVE-2099-0900"].target is None  # symfony: kept, never matched


def test_osv_folder(tmp_path: Path) -> None:
    root = write_osv(tmp_path / "osv")
    (root / "withdrawn.json").write_text(
        json.dumps({"id": "GHSA-gone", "withdrawn": "2099-01-01T00:00:00Z", "affected": []})
    )
    (root / "git-only.json").write_text(
        json.dumps(
            {
                "id": "GHSA-git",
                "affected": [
                    {
                        "package": {"ecosystem": "Packagist", "name": "drupal/core"},
                        "ranges": [{"type": "GIT", "events": [{"introduced": "abc"}]}],
                    }
                ],
            }
        )
    )
    (root / "junk.json").write_text("{not json")
    read = read_osv(root, PackageMap())
    assert read.date == "2099-06-03T00:00:00Z"  # the newest record's modified
    assert sorted(p.split(":")[0] for p in read.problems) == ["git-only.json", "junk.json"]
    by_id = {a.advisory_id: a for a in read.advisories}
    assert "GHSA-gone" not in by_id
    drupal = by_id["GHSA-2099-drup-0400"]
    assert drupal.severity == "critical"  # CVSS 9.8
    assert drupal.cve == ("CVE-2099-0400",)
    assert drupal.ranges.match("10.1.7") == (True, "10.1.8")
    assert drupal.ranges.match("10.1.8") == (False, None)
    assert drupal.ranges.match("10.2.1") == (True, "10.2.2")
    joomla = by_id["GHSA-2099-joom-0500"]
    assert joomla.severity == "medium"
    assert joomla.ranges.match("4.4.1")[0] and not joomla.ranges.match("4.4.2")[0]
    listed = by_id["GHSA-2099-rcub-0301"]
    assert listed.ranges.match("1.6.5")[0] and not listed.ranges.match("1.6.6")[0]


def test_format_detection_and_missing_source(tmp_path: Path) -> None:
    assert read_source(write_friendsofphp(tmp_path / "a"), PackageMap()).kind == "friendsofphp"
    assert read_source(write_osv(tmp_path / "b"), PackageMap()).kind == "osv"
    with pytest.raises(AdvisoryError):
        read_source(tmp_path / "nothing", PackageMap())


def test_store_updates_in_place_and_removes(tmp_path: Path) -> None:
    root = write_osv(tmp_path / "osv")
    with open_ledger(tmp_path / "l.db") as ledger:
        first = store_source(ledger, read_osv(root, PackageMap()))
        assert (first.added, first.updated, first.removed) == (4, 0, 0)
        (root / "GHSA-2099-joom-0500.json").unlink()
        write_osv(root, {"GHSA-2099-drup-0400.json": {"summary": "Drupal core: renamed"}})
        (root / "GHSA-2099-joom-0500.json").unlink()
        again = store_source(ledger, read_osv(root, PackageMap()))
        assert (again.added, again.updated, again.unchanged, again.removed) == (0, 1, 2, 1)
        titles = {a.advisory_id: a.title for a in load_advisories(ledger)}
        assert titles["GHSA-2099-drup-0400"] == "Drupal core: renamed"
        assert "GHSA-2099-joom-0500" not in titles


@pytest.mark.parametrize(
    ("vector", "score"),
    [
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 9.8),
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N", 6.1),
        ("CVSS:3.0/AV:L/AC:H/PR:H/UI:R/S:U/C:N/I:N/A:N", 0.0),
    ],
)
def test_cvss_base_score(vector: str, score: float) -> None:
    assert base_score_v3(vector) == score


def test_severity_words() -> None:
    assert severity_of_cvss("7.5") == "high"
    assert severity_of_cvss("CVSS:4.0/AV:N") is None
    assert severity_of_cvss("CVSS:3.1/AV:N") is None


def test_branch_versions_all_hold_even_with_or() -> None:
    from patchd.advisories.constraints import satisfies
    from patchd.advisories.friendsofphp import all_of

    assert all_of([">=1.0", "<1.0.3"]) == ">=1.0,<1.0.3"
    both = all_of(["<1.0 || >=2.0", "<3.0"])
    assert both == "<1.0,<3.0 || >=2.0,<3.0"
    assert satisfies("2.5", both) and satisfies("0.5", both)
    assert not satisfies("3.5", both) and not satisfies("1.5", both)
