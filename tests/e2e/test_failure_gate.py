"""The fleet failure gate end to end: real sites behind ``php -S``, 3 of the first 4
break under the fix -> the run stops applying, the rest is ``skipped`` (``gate``), exit 1;
the same command refuses to go on until ``--continue-past-gate``."""

from __future__ import annotations

from pathlib import Path

from tests.e2e import kit, sites
from tests.support.phpserver import PHPServers

BROKEN = ("g1", "g2", "g4")
NAMES = tuple(f"g{n}" for n in range(1, 9))


def _world(base: Path, php_servers: PHPServers) -> tuple[Path, tuple[str, ...]]:
    """The sites g1..g8 (g1, g2, g4 break under the fix); (srv, rollout argv)."""
    srv = base / "srv"
    docroots = {n: sites.install_site(srv / n, n, plugin=n in BROKEN) for n in NAMES}
    server = php_servers(docroots)
    accounts = [
        kit.account(
            n, "web", srv / n, docroots=["html"], sites=[{"path": "html", "url": server.url(n)}]
        )
        for n in NAMES
    ]
    host = {"transport": "local", "resolve": "127.0.0.1"}
    inventory = kit.write_inventory(base / "accounts.yaml", {"web": host}, accounts)
    bundle = sites.build_bundle(base / "bundle")
    backups = base / "backups"
    backups.mkdir(mode=0o700)
    argv = (
        "rollout", str(bundle), "--accounts", str(inventory), "--backup-dir", str(backups),
        "--yes", "--json",
    )  # fmt: skip
    return srv, argv


def test_gate_stops_a_run_where_3_of_the_first_4_sites_break(
    tmp_path: Path, php_servers: PHPServers
) -> None:
    srv, argv = _world(tmp_path, php_servers)
    ledger = tmp_path / "ledger.db"
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


def test_gate_holds_during_the_canary(tmp_path: Path, php_servers: PHPServers) -> None:
    """With --canary 6 the gate judges after 6 applies (one at a time): 3 of 6 failed."""
    srv, argv = _world(tmp_path, php_servers)
    ledger = tmp_path / "ledger.db"
    res = kit.patchd(ledger, *argv, "--canary", "6")
    assert res.code == 1, res.out + res.err
    assert res.json["status"] == "gate-stopped"
    got = {r["account"]: (r["outcome"], r["reason"]) for r in res.json["results"]}
    assert got == {
        **dict.fromkeys(BROKEN, ("reverted", "health-check")),
        **{n: ("patched", None) for n in ("g3", "g5", "g6")},
        **{n: ("skipped", "gate") for n in ("g7", "g8")},
    }
    assert "3 of 6 applied installations failed" in res.err
    run = str(res.json["run"])
    refused = kit.patchd(ledger, *argv, "--resume", run)
    assert refused.code == 2 and "--continue-past-gate" in refused.err
    go_on = kit.patchd(ledger, *argv, "--resume", run, "--continue-past-gate")
    assert go_on.code == 1 and go_on.json["status"] == "finished"
    assert {r["account"]: r["outcome"] for r in go_on.json["results"]}["g8"] == "patched"
    for name in ("g7", "g8"):
        for rel in kit.WP_FILES:
            assert (srv / name / "html" / rel).read_bytes() == sites.post_image(rel)


def test_rollback_undoes_what_the_health_check_could_not(tmp_path: Path) -> None:
    """An ``error`` of the health check (the undo failed) still has its patch applied:
    ``patchd rollback`` acts on it like on ``patched``."""
    import sqlite3

    srv = tmp_path / "srv"
    sites.install_site(srv / "u1", "u1")
    inventory = kit.write_inventory(
        tmp_path / "accounts.yaml",
        {"web": {"transport": "local"}},
        [kit.account("u1", "web", srv / "u1", docroots=["html"])],
    )
    bundle = sites.build_bundle(tmp_path / "bundle")
    backups = tmp_path / "backups"
    backups.mkdir(mode=0o700)
    ledger = tmp_path / "ledger.db"
    before = kit.snapshot(srv)
    res = kit.patchd(
        ledger, "rollout", str(bundle), "--accounts", str(inventory),
        "--backup-dir", str(backups), "--yes", "--json",
    )  # fmt: skip
    assert res.code == 0 and res.json["summary"] == {"patched": 1}
    with sqlite3.connect(ledger) as db:  # what a failed undo leaves
        db.execute("UPDATE results SET outcome = 'error', reason = 'health-check'")
    back = kit.patchd(ledger, "rollback", str(res.json["run"]), "--accounts", str(inventory),
                      "--yes", "--json")  # fmt: skip
    assert back.code == 0, back.out + back.err
    assert [i["status"] for i in back.json["installations"]] == ["restored"]
    assert kit.snapshot(srv) == before
