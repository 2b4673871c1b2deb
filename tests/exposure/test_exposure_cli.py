"""``patchd exposure`` on the fixture fleet: exposed, mitigated, unknown; history."""

from __future__ import annotations

from tests.exposure.conftest import Fleet


def _status(rows: list[dict], account: str, component: str, advisory_cve: str) -> str:
    found = [
        r["status"]
        for r in rows
        if r["account"] == account and r["component"] == component and advisory_cve in r["cve"]
    ]
    assert len(found) == 1, (account, component, advisory_cve, rows)
    return found[0]


def test_exposed_mitigated_unknown(fleet: Fleet) -> None:
    _, second = fleet.scans
    res = fleet.exposure("--scan", str(second), "--json")
    assert res.code == 0, res.err
    data = res.json
    assert data["scan"] == second
    rows = data["exposure"]
    # the bundle naming CVE-2099-0001 is in place with its files intact
    assert _status(rows, "x-patched", "core", "CVE-2099-0001") == "mitigated"
    # the fix was there before patchd (already-patched) and the files still differ from
    # the vulnerable release
    assert _status(rows, "x-already", "core", "CVE-2099-0001") == "mitigated"
    # the customer changed a patched file back: the integrity check finds it -> exposed
    assert _status(rows, "x-reverted", "core", "CVE-2099-0001") == "exposed"
    reverted = next(r for r in rows if r["account"] == "x-reverted" and "CVE-2099-0001" in r["cve"])
    assert "wp-includes/comment-template.php" in reverted["detail"]
    assert _status(rows, "x-open", "core", "CVE-2099-0001") == "exposed"
    assert _status(rows, "x-unknown", "core", "CVE-2099-0001") == "unknown"
    # the extension advisory: the plugin's own version, whatever the core's
    for acct in ("x-patched", "x-reverted", "x-open", "x-unknown", "x-already"):
        assert _status(rows, acct, "hello-like", "CVE-2099-0101") == "exposed"
    assert not [r for r in rows if r["account"] == "x-new"]
    # the stable keys of DESIGN.md, and the fix to update to
    open_row = next(r for r in rows if r["account"] == "x-open" and r["component"] == "core")
    assert {
        "account", "customer", "host", "path", "cms", "component", "version", "advisory",
        "cve", "title", "severity", "fixed_in", "status", "source",
    } <= set(open_row)  # fmt: skip
    assert open_row["customer"] == "c2" and open_row["fixed_in"] == "6.4.3"
    assert open_row["version"] == "6.4.1" and open_row["cms"] == "wordpress"
    # one row per advisory although FriendsOfPHP and OSV both list CVE-2099-0001
    assert sum(1 for r in rows if r["account"] == "x-open" and r["component"] == "core") == 1


def test_before_the_rollout_everything_was_exposed(fleet: Fleet) -> None:
    first, _ = fleet.scans
    rows = fleet.exposure("--scan", str(first), "--json").json["exposure"]
    for acct in ("x-patched", "x-reverted", "x-open", "x-already"):
        assert _status(rows, acct, "core", "CVE-2099-0001") == "exposed"


def test_trend_keeps_each_scan(fleet: Fleet) -> None:
    first, second = fleet.scans
    assert fleet.exposure("--scan", str(first), "--json").code == 0
    assert fleet.exposure("--scan", str(second), "--json").code == 0
    trend = fleet.exposure("--trend", "--json").json["trend"]
    by_scan = {p["scan"]: p for p in trend}
    assert by_scan[first]["exposed_installations"] == 5  # all but x-new (plugin advisory)
    assert by_scan[first]["exposed_customers"] == 4
    assert by_scan[first]["mitigated"] == 0
    assert by_scan[second]["exposed_installations"] == 5
    assert by_scan[second]["mitigated"] == 2
    assert by_scan[second]["installations"] == 6
    # the stored exposure is read back, not recomputed
    again = fleet.exposure("--scan", str(first), "--json").json["exposure"]
    assert _status(again, "x-patched", "core", "CVE-2099-0001") == "exposed"


def test_filters_and_by_customer(fleet: Fleet) -> None:
    rows = fleet.exposure("--severity", "high", "--json").json["exposure"]
    assert rows and all(r["severity"] in ("high", "critical") for r in rows)
    assert fleet.exposure("--cms", "typo3", "--json").json["exposure"] == []
    only = fleet.exposure("--status", "mitigated", "--json").json["exposure"]
    assert sorted(r["account"] for r in only) == ["x-already", "x-patched"]
    customers = fleet.exposure("--by", "customer", "--json").json["customers"]
    c1 = next(c for c in customers if c["customer"] == "c1")
    assert c1["installations"] == 2 and c1["exposed_installations"] == 2
    assert c1["mitigated"] == 1
    csv = fleet.exposure("--format", "csv").out
    assert csv.splitlines()[0].startswith("account,customer,host,path,cms,component")
    table = fleet.exposure().out
    assert "x-reverted" in table and "exposed" in table


def test_reimport_with_an_edited_advisory_updates_in_place(fleet: Fleet) -> None:
    before = fleet.exposure("--json").json["exposure"]
    assert _status(before, "x-open", "hello-like", "CVE-2099-0101") == "exposed"
    from patchd_fixtures.advisories import write_friendsofphp

    # the database now says the plugin was fixed in 1.7.0 (1.7.2 is not affected) and
    # renames the advisory
    write_friendsofphp(
        fleet.friendsofphp,
        {
            "wpackagist-plugin/hello-like/2099-02-01-1.yaml": {
                "title": "Hello-like: XSS (corrected range)",
                "branches": {"1.x": {"time": "2099-02-02 09:00:00", "versions": ["<1.7.0"]}},
            },
            "johnpbloch/wordpress-core/CVE-2099-0001.yaml": {"title": "WordPress: XSS (v2)"},
        },
    )
    res = fleet.patchd("advisories", "import", str(fleet.friendsofphp))
    assert res.code == 0, res.err
    assert "0 added, 2 updated, 3 unchanged, 0 removed" in res.out
    after = fleet.exposure("--json").json["exposure"]
    assert not [r for r in after if r["component"] == "hello-like"]
    titles = {r["title"] for r in after if "CVE-2099-0001" in r["cve"]}
    assert titles == {"WordPress: XSS (v2)"}
    sources = fleet.patchd("advisories", "--json").json["sources"]
    assert len(sources) == 2  # updated in place, not a second FriendsOfPHP source
    # a removed advisory file disappears from the ledger on re-import
    (fleet.friendsofphp / "roundcube/roundcubemail/CVE-2099-0300.yaml").unlink()
    res = fleet.patchd("advisories", "import", str(fleet.friendsofphp))
    assert "1 removed" in res.out


def test_no_advisories_is_an_input_error(fleet: Fleet, tmp_path) -> None:
    from patchd.ledger.db import open_ledger
    from tests.e2e import kit

    # a missing ledger is an input error too, and exposure (read-only) creates none
    missing = kit.patchd(tmp_path / "missing.db", "exposure")
    assert missing.code == 2 and "no ledger" in missing.err
    assert not (tmp_path / "missing.db").exists()
    with open_ledger(tmp_path / "empty.db"):
        pass
    res = kit.patchd(tmp_path / "empty.db", "exposure")
    assert res.code == 2 and "advisories import" in res.err
