"""The fleet failure gate end to end: real sites behind ``php -S``, 3 of the first 4
break under the fix -> the run stops applying, the rest is ``skipped`` (``gate``), exit 1;
the same command refuses to go on until ``--continue-past-gate``."""

from __future__ import annotations

from pathlib import Path

from tests.e2e import kit, sites
from tests.support.phpserver import PHPServers

BROKEN = ("g1", "g2", "g4")
NAMES = tuple(f"g{n}" for n in range(1, 9))


def test_gate_stops_a_run_where_3_of_the_first_4_sites_break(
    tmp_path: Path, php_servers: PHPServers
) -> None:
    srv = tmp_path / "srv"
    docroots = {n: sites.install_site(srv / n, n, plugin=n in BROKEN) for n in NAMES}
    server = php_servers(docroots)
    accounts = [
        kit.account(
            n, "web", srv / n, docroots=["html"], sites=[{"path": "html", "url": server.url(n)}]
        )
        for n in NAMES
    ]
    host = {"transport": "local", "resolve": "127.0.0.1"}
    inventory = kit.write_inventory(tmp_path / "accounts.yaml", {"web": host}, accounts)
    bundle = sites.build_bundle(tmp_path / "bundle")
    backups = tmp_path / "backups"
    backups.mkdir(mode=0o700)
    ledger = tmp_path / "ledger.db"
    argv = (
        "rollout", str(bundle), "--accounts", str(inventory), "--backup-dir", str(backups),
        "--yes", "--json",
    )  # fmt: skip
    before = kit.snapshot(srv)

    res = kit.patchd(ledger, *argv)
    assert res.code == 1, res.out + res.err
    data = res.json
    assert data["status"] == "gate-stopped"
    got = {r["account"]: (r["outcome"], r["reason"]) for r in data["results"]}
    assert got == {
        **dict.fromkeys(BROKEN, ("reverted", "health-check")),
        "g3": ("patched", None),
        **{n: ("skipped", "gate") for n in ("g5", "g6", "g7", "g8")},
    }
    skipped = next(r for r in data["results"] if r["account"] == "g5")
    assert "3 of 4 applied installations failed" in skipped["detail"]
    assert "fleet failure gate: 3 of 4 applied installations failed" in res.err
    assert "--continue-past-gate" in res.err
    after = kit.snapshot(srv)
    assert {k.split("/")[0] for k in before if before[k] != after[k]} == {"g3"}

    again = kit.patchd(ledger, *argv)
    assert again.code == 2
    assert f"run {data['run']} was stopped by the fleet failure gate" in again.err
    assert kit.snapshot(srv) == after

    go_on = kit.patchd(ledger, *argv, "--continue-past-gate")
    assert go_on.code == 1, go_on.out + go_on.err  # the reverted ones are still failures
    assert go_on.json["run"] == data["run"] and go_on.json["status"] == "finished"
    got = {r["account"]: (r["outcome"], r["reason"]) for r in go_on.json["results"]}
    assert got == {
        **dict.fromkeys(BROKEN, ("reverted", "health-check")),
        **{n: ("patched", None) for n in NAMES if n not in BROKEN},
    }
    final = kit.snapshot(srv)
    assert {k.split("/")[0] for k in before if before[k] != final[k]} == {
        n for n in NAMES if n not in BROKEN
    }
