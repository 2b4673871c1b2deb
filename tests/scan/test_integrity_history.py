"""``releases add`` + scan reports customer-modified core files; ``scans diff`` over time."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from patchd.inventory import load_inventory
from patchd_fixtures.families import release_tree
from patchd_fixtures.releases import write_tree
from tests.e2e.kit import AFFECTED_VERSIONS
from tests.scan import kit


@pytest.fixture
def world(fleet: Path, release_archives: list[Path], tmp_path: Path) -> Path:
    """A private copy of the fleet whose ledger has every fixture release registered."""
    copy = kit.copy_fleet(fleet, tmp_path / "fleet")
    res = kit.patchd(copy / "ledger.db", "releases", "add", *map(str, release_archives))
    assert res.code == 0, res.err
    assert res.out.count("registered ") == len(release_archives)
    return copy


def test_modified_core_files_are_reported_exactly_for_modified_installations(
    world: Path,
) -> None:
    listed = kit.patchd(world / "ledger.db", "releases", "--json").json["releases"]
    assert {(r["cms"], r["version"]) for r in listed} >= {("wordpress", "6.4.1")}
    res = kit.scan(world / "ledger.db", world / "accounts.yaml")
    assert res.code == 0, res.err
    got = kit.scan_view(res.json)
    doc = kit.truth(world / "expected.json")
    modified_families = set()
    for account_id, inst in kit.truth_installations(doc):
        row = got[(account_id, inst["path"], inst["cms"])]
        assert row["modified_files"] == inst["modified_files"], (account_id, inst["path"])
        if inst["modified_files"]:
            modified_families.add((inst["cms"], inst["layout"]))
    # the fleet exercises all three families, including TYPO3's composer layout
    assert {"wordpress", "roundcube", "typo3"} <= {cms for cms, _ in modified_families}


def test_modified_file_in_a_shared_typo3_source_is_reported_for_its_site(world: Path) -> None:
    doc = kit.truth(world / "expected.json")
    account_id, inst = next(
        (a, i)
        for a, i in kit.truth_installations(doc)
        if i["cms"] == "typo3" and i["layout"] == "classic" and not i["modified_files"]
    )
    root = Path(doc["accounts"][account_id]["root"])
    target = root / inst["source"] / "typo3/sysext/core/Classes/Information/Typo3Version.php"
    target.write_text(target.read_text() + "// edited by the customer\n")
    res = kit.scan(world / "ledger.db", world / "accounts.yaml", "--account", account_id)
    row = kit.scan_view(res.json)[(account_id, inst["path"], "typo3")]
    assert row["modified_files"] == ["typo3/sysext/core/Classes/Information/Typo3Version.php"]


def _wordpress(doc: dict, versions: tuple[str, ...]) -> list[tuple[str, dict]]:
    return [
        (a, i)
        for a, i in kit.truth_installations(doc)
        if i["cms"] == "wordpress" and i["version"] in versions
    ]


def test_diff_after_changing_the_fleet_and_still_vulnerable_per_bundle(world: Path) -> None:
    ledger = world / "ledger.db"
    bundle = kit.build_bundle(world / "bundle")
    doc = kit.truth(world / "expected.json")
    first = kit.scan(ledger, world / "accounts.yaml")
    assert first.code == 0, first.err
    vulnerable_before = len(_wordpress(doc, AFFECTED_VERSIONS))

    # upgrade one installation (its version file only), remove one, add one
    # NOTE: removal and addition in accounts without docroots: a docroot the inventory
    # names but that is gone is a scan error, not a removed installation.
    plain = {a.id for a in load_inventory(world / "accounts.yaml").accounts if not a.docroots}
    up_acc, up = _wordpress(doc, ("6.4.1",))[0]
    gone_acc, gone = next(
        (a, i) for a, i in _wordpress(doc, ("6.4.0", "6.4.2")) if a in plain and a != up_acc
    )
    new_acc = next(a for a in sorted(plain) if a not in (up_acc, gone_acc))
    up_dir = Path(doc["accounts"][up_acc]["root"]) / up["path"]
    version_php = up_dir / "wp-includes/version.php"
    version_php.write_text(version_php.read_text().replace("'6.4.1'", "'6.4.3'"))
    shutil.rmtree(Path(doc["accounts"][gone_acc]["root"]) / gone["path"])
    write_tree(release_tree("wordpress", "6.4.2"), Path(doc["accounts"][new_acc]["root"]) / "neu")

    second = kit.scan(ledger, world / "accounts.yaml")
    assert second.code == 0, second.json["errors"]
    a, b = first.json["scan"], second.json["scan"]

    res = kit.patchd(ledger, "scans", "diff", str(a), str(b), "--bundle", str(bundle), "--json")
    assert res.code == 0, res.err
    changes = {
        (c["change"], c["account"], c["path"], c["old_version"], c["new_version"])
        for c in res.json["changes"]
    }
    assert changes == {
        ("updated", up_acc, up["path"], "6.4.1", "6.4.3"),
        ("removed", gone_acc, gone["path"], gone["version"], None),
        ("added", new_acc, "neu", None, "6.4.2"),
    }
    total = sum(1 for _ in kit.truth_installations(doc))
    assert res.json["unchanged"] == total - 2
    assert res.json["vulnerable"] == [
        {
            "bundle": "wp-2024-comment-xss",
            "cms": "wordpress",
            "component": "core",
            "affected": "6.4.0-6.4.2",
            "fixed_a": 0,
            "fixed_b": 0,
            "a": vulnerable_before,
            "b": vulnerable_before - 1,  # -1 upgraded, -1 removed, +1 added
        }
    ]

    table = kit.patchd(ledger, "scans", "diff", str(a), str(b), "--bundle", str(bundle))
    assert table.code == 0, table.err
    assert "still vulnerable" in table.out
    line = next(x for x in table.out.splitlines() if "wp-2024-comment-xss" in x)
    assert line.split()[-2:] == [str(vulnerable_before), str(vulnerable_before - 1)]

    # without --bundle the JSON has no vulnerable key; a second bundle gets its own row
    assert "vulnerable" not in kit.patchd(ledger, "scans", "diff", str(a), str(b), "--json").json
    other = kit.build_bundle(world / "bundle2", bundle_id="wp-other")
    both = kit.patchd(
        ledger, "scans", "diff", str(a), str(b), "--bundle", str(bundle), "--bundle", str(other)
    )
    assert [
        r["bundle"]
        for r in kit.patchd(
            ledger,
            "scans",
            "diff",
            str(a),
            str(b),
            "--bundle",
            str(bundle),
            "--bundle",
            str(other),
            "--json",
        ).json["vulnerable"]
    ] == ["wp-2024-comment-xss", "wp-other"]
    assert both.code == 0 and "wp-other" in both.out


def test_diff_with_a_missing_bundle_is_an_input_error(world: Path, tmp_path: Path) -> None:
    ledger = world / "ledger.db"
    kit.scan(ledger, world / "accounts.yaml", "--no-integrity")
    empty = tmp_path / "not-a-bundle"
    empty.mkdir()
    res = kit.patchd(ledger, "scans", "diff", "1", "1", "--bundle", str(empty))
    assert res.code == 2
    assert "manifest" in res.err and str(empty) in res.err
