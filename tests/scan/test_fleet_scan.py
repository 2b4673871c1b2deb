"""A generated fleet scanned locally and over three real sshd hosts, against its truth."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from patchd.inventory import load_inventory
from tests.scan import kit
from tests.scan.conftest import FLEET_HOSTS
from tests.support.sshd import SSHDFactory, SSHHost, make_key


@pytest.fixture(scope="module")
def local_scan(fleet: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The fleet scanned with every host ``local``."""
    ledger = tmp_path_factory.mktemp("local-scan") / "ledger.db"
    res = kit.scan(ledger, fleet / "accounts.yaml")
    assert res.code == 0, res.err
    return res.json


def _ssh_inventory(fleet: Path, dest: Path, hosts: list[SSHHost]) -> Path:
    entries = {name: kit.ssh_host_entry(h) for name, h in zip(FLEET_HOSTS, hosts, strict=True)}
    return kit.rewrite_hosts(fleet / "accounts.yaml", dest, entries)


def test_local_scan_matches_ground_truth(fleet: Path, local_scan: dict) -> None:
    doc = kit.truth(fleet / "expected.json")
    got = kit.scan_view(local_scan, keep_host=True)
    want = {(acc, i["path"], i["cms"]): i for acc, i in kit.truth_installations(doc)}
    assert local_scan["errors"] == []
    assert sorted(got) == sorted(want)
    for key, inst in want.items():
        row = got[key]
        account = doc["accounts"][key[0]]
        assert row["host"] == account["host"], key
        assert row["version"] == inst["version"], key
        assert row["version_error"] is None, key
        assert row["extensions"] == kit.truth_extensions(inst), key
        # NOTE: the inventory names every account's PHP and is authoritative over hints.
        assert (row["php"], row["php_source"]) == (account["php"], "inventory"), key
        if inst["cms"] == "typo3" and inst["layout"] == "classic":
            assert row["facts"]["typo3_src_target"].endswith(inst["source"]), key
            assert row["facts"]["typo3_src_outside"] == "no", key
    # the fleet has the layouts this test is meant to cover
    layouts = {(i["cms"], i["layout"]) for _, i in kit.truth_installations(doc)}
    assert {("typo3", "classic"), ("typo3", "composer"), ("wordpress", "classic")} <= layouts


def test_php_from_hints_when_inventory_has_none(fleet: Path, tmp_path: Path) -> None:
    inventory = kit.without_php(fleet / "accounts.yaml", tmp_path / "accounts.yaml")
    res = kit.scan(tmp_path / "ledger.db", inventory, "--no-integrity")
    assert res.code == 0, res.err
    doc = kit.truth(fleet / "expected.json")
    docroots = {a.id: list(a.docroots) for a in load_inventory(inventory).accounts}
    seen_hint = 0
    for row in res.json["installations"]:
        want = kit.hint_php(doc["accounts"][row["account"]], docroots[row["account"]])
        assert row["php"] == want, row["account"]
        if want is None:
            assert row["php_source"] in ("", None), row
        else:
            seen_hint += 1
            assert ".htaccess line 1: AddHandler application/x-httpd-php" in row["php_source"]
    assert seen_hint >= 3


def test_ssh_scan_equals_local_scan(
    fleet: Path, local_scan: dict, sshd_hosts: list[SSHHost], tmp_path: Path
) -> None:
    assert len(sshd_hosts) >= 3
    inventory = _ssh_inventory(fleet, tmp_path / "accounts.yaml", sshd_hosts)
    res = kit.scan(tmp_path / "ledger.db", inventory)
    assert res.code == 0, res.err
    assert res.json["errors"] == []
    assert kit.scan_view(res.json) == kit.scan_view(local_scan)
    assert {i["host"] for i in res.json["installations"]} == set(FLEET_HOSTS)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _errors_by_host(data: dict) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for err in data["errors"]:
        out.setdefault(err["host"], []).append(err)
    return out


def _assert_others_scanned(data: dict, local_scan: dict, fleet: Path, broken: set[str]) -> None:
    doc = kit.truth(fleet / "expected.json")
    on_good = {
        key: row
        for key, row in kit.scan_view(local_scan).items()
        if doc["accounts"][key[0]]["host"] not in broken
    }
    assert on_good
    assert kit.scan_view(data) == on_good


def test_unreachable_hosts_are_errors_and_the_others_are_scanned(
    fleet: Path,
    local_scan: dict,
    sshd_hosts: list[SSHHost],
    sshd_factory: SSHDFactory,
    tmp_path: Path,
) -> None:
    stopped = sshd_factory(1)[0]
    server = sshd_factory.server(stopped)
    server.stop()
    # NOTE: the harness's stop_all() would stop it again and fail on the unknown port.
    sshd_factory.servers.remove(server)
    hosts = {
        "a": kit.ssh_host_entry(sshd_hosts[0]),
        "b": kit.ssh_host_entry(stopped),  # sshd stopped
        "c": kit.ssh_host_entry(sshd_hosts[2], port=_free_port()),  # nothing listens
    }
    inventory = kit.rewrite_hosts(fleet / "accounts.yaml", tmp_path / "accounts.yaml", hosts)
    res = kit.scan(tmp_path / "ledger.db", inventory)
    assert res.code == 1, res.err
    errors = _errors_by_host(res.json)
    assert set(errors) == {"b", "c"}
    for host in ("b", "c"):
        (err,) = errors[host]
        assert err["kind"] == "host" and err["account"] is None
        assert "refused" in err["message"].lower() or "connect" in err["message"].lower(), err
    _assert_others_scanned(res.json, local_scan, fleet, {"b", "c"})
    listed = kit.patchd(tmp_path / "ledger.db", "scans", "--json").json["scans"]
    assert [(s["status"], s["errors"]) for s in listed] == [("finished", 2)]


def test_failed_login_is_an_error_for_that_host(
    fleet: Path, local_scan: dict, sshd_hosts: list[SSHHost], tmp_path: Path
) -> None:
    stranger = make_key(tmp_path / "stranger_ed25519")
    hosts = {
        "a": kit.ssh_host_entry(sshd_hosts[0], key_file=str(stranger)),  # key not authorised
        "b": kit.ssh_host_entry(sshd_hosts[1]),
        "c": kit.ssh_host_entry(sshd_hosts[2]),
    }
    inventory = kit.rewrite_hosts(fleet / "accounts.yaml", tmp_path / "accounts.yaml", hosts)
    res = kit.scan(tmp_path / "ledger.db", inventory)
    assert res.code == 1, res.err
    errors = _errors_by_host(res.json)
    assert list(errors) == ["a"]
    (err,) = errors["a"]
    assert err["kind"] == "host"
    assert "auth" in err["message"].lower(), err
    _assert_others_scanned(res.json, local_scan, fleet, {"a"})


def test_unknown_host_key_is_an_error_for_that_host(
    fleet: Path, local_scan: dict, sshd_hosts: list[SSHHost], tmp_path: Path
) -> None:
    # known_hosts holds host c's key for host b's address: the key check must refuse b.
    wrong = tmp_path / "known_hosts"
    line = sshd_hosts[2].host_key_line.split(" ", 1)[1]
    wrong.write_text(f"[127.0.0.1]:{sshd_hosts[1].port} {line}\n")
    hosts = {
        "a": kit.ssh_host_entry(sshd_hosts[0]),
        "b": kit.ssh_host_entry(sshd_hosts[1], known_hosts=str(wrong)),
        "c": kit.ssh_host_entry(sshd_hosts[2]),
    }
    inventory = kit.rewrite_hosts(fleet / "accounts.yaml", tmp_path / "accounts.yaml", hosts)
    res = kit.scan(tmp_path / "ledger.db", inventory)
    assert res.code == 1, res.err
    errors = _errors_by_host(res.json)
    assert list(errors) == ["b"]
    assert "key" in errors["b"][0]["message"].lower(), errors
    _assert_others_scanned(res.json, local_scan, fleet, {"b"})
