"""Grouping results into customer notices, and holding customers when in doubt."""

from __future__ import annotations

from pathlib import Path

import yaml

from patchd.inventory import load_inventory
from patchd.ledger import runs as ledger_runs
from patchd.ledger.db import open_ledger
from patchd.notify.group import plan_notices
from tests.e2e import kit
from tests.notify.conftest import SENDER, NotifyWorld


def _notices(world: NotifyWorld, inventory: Path, **kw: bool):
    with open_ledger(world.ledger) as ledger:
        results = ledger_runs.results(ledger, world.run)
    return {
        n.customer_id: n for n in plan_notices(world.run, results, load_inventory(inventory), **kw)
    }


def test_cases_per_customer(world: NotifyWorld) -> None:
    n = _notices(world, world.inventory)
    assert set(n) == {"c-de", "c-en", "c-php", "c-notify", "c-down"}
    assert [i.account for i in n["c-de"].patched] == ["a-patch"]
    assert [(i.account, i.reason) for i in n["c-de"].action] == [("a-mod", "modified")]
    assert n["c-de"].kind == "action" and n["c-en"].kind == "patched"
    assert n["c-notify"].kind == "notify-only"
    assert n["c-down"].held and "unreachable" in n["c-down"].held
    everything = _notices(world, world.inventory, all_clear=True, include_unresolved=True)
    assert everything["c-clear"].kind == "all-clear" and everything["c-clear"].items == ()
    assert everything["c-down"].held is None and everything["c-down"].kind == "action"
    assert "c-skip" not in everything  # policy skip: never told


def test_account_now_with_another_customer_holds_the_email(
    world: NotifyWorld, tmp_path: Path
) -> None:
    data = yaml.safe_load(world.inventory.read_text())
    de = next(a["customer"] for a in data["accounts"] if a["id"] == "a-patch")
    for a in data["accounts"]:
        if a["id"] == "a-patch2":  # moved from c-en to c-de since the run
            a["customer"] = dict(de)
    inv = tmp_path / "accounts.yaml"
    inv.write_text(yaml.safe_dump(data))
    n = _notices(world, inv)
    assert n["c-en"].held and "a-patch2" in n["c-en"].held
    # c-de's email still lists only what the run recorded for c-de.
    assert {i.account for i in n["c-de"].items} == {"a-patch", "a-mod"}
    res = world.notify("--preview", str(tmp_path / "p"), "--accounts", str(inv), "--json")
    assert res.code == 1
    assert {e["customer"]: e["status"] for e in res.json["emails"]}["c-en"] == "held"
    assert not (tmp_path / "p" / f"run{world.run}-c-en.eml").exists()


def test_dry_runs_and_other_bundles_are_refused(world: NotifyWorld, tmp_path: Path) -> None:
    from patchd.ledger.models import RunStatus
    from patchd.ledger.runs import create_run, set_run_status

    with open_ledger(world.ledger) as ledger:
        dry = create_run(
            ledger, bundle_id="wp-2024-comment-xss", bundle_digest="0" * 64, dry_run=True
        )
        set_run_status(ledger, dry, RunStatus.FINISHED)
    res = kit.patchd(
        world.ledger,
        "notify",
        str(dry),
        "--accounts",
        str(world.inventory),
        "--bundle",
        str(world.bundle),
        "--from",
        SENDER,
        "--preview",
        str(tmp_path / "p"),
    )
    assert res.code == 2 and "dry run" in res.err
    other = kit.build_bundle(tmp_path / "other", bundle_id="wp-other")
    res = world.notify("--preview", str(tmp_path / "p"), "--bundle", str(other))
    assert res.code == 2 and "rolled out bundle" in res.err
    assert not (tmp_path / "p").exists()
