"""``patchd rollout`` / ``patchd rollback`` end to end over the local transport.

Each account of the world is built to produce one outcome of DESIGN.md; the tests run the
real CLI (agent in a subprocess through the SSH bootstrap), then compare the JSON output,
the ledger and every byte on disk.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from patchd.ledger import runs as ledger_runs
from patchd.ledger.db import open_ledger
from patchd.ledger.models import FileState
from patchd.patcher import journal as jr
from tests.e2e import kit
from tests.e2e.conftest import COMMENT_TEMPLATE, LIST_TABLE, WORLD_EXPECTED, World

RESULT_KEYS = {
    "account",
    "customer",
    "host",
    "path",
    "cms",
    "version",
    "outcome",
    "reason",
    "detail",
}
PATCHED = [a for a, v in WORLD_EXPECTED.items() if v[0] == "patched"]


def _expected_after(world: World, before: dict[str, str], patched: list[str]) -> dict[str, str]:
    """The snapshot ``before`` with the security files of ``patched`` accounts patched."""
    after = dict(before)
    for acct in patched:
        for rel in kit.WP_FILES:
            key = f"{acct}/html/{rel}"
            _digest, rest = after[key].split(" ", 1)
            after[key] = f"{kit.sha(kit.post_image(rel))} {rest}"
    return after


def test_dry_run_writes_nothing(fresh_world: World) -> None:
    before = fresh_world.snapshot()
    res = fresh_world.rollout("--dry-run")
    assert fresh_world.snapshot() == before
    assert list(fresh_world.backups.iterdir()) == []
    data = res.json
    assert data["dry_run"] is True
    got = {r["account"]: (r["outcome"], r["reason"]) for r in data["results"]}
    # A dry run reports what would be patched as skipped ("dry run: ..."), failures as such.
    want = {a: (("skipped", None) if v[0] == "patched" else v) for a, v in WORLD_EXPECTED.items()}
    assert got == want
    for r in data["results"]:
        if r["account"] in PATCHED:
            assert r["detail"].startswith("dry run:"), r


def test_every_outcome_then_again_then_rollback(fresh_world: World) -> None:
    w = fresh_world
    before = w.snapshot()
    first = w.rollout()
    assert first.code == 1  # some dry runs failed
    data = first.json
    assert set(data) >= {"run", "bundle", "results", "summary"}
    assert data["bundle"] == "wp-2024-comment-xss" and data["status"] == "finished"
    assert all(set(r) >= RESULT_KEYS for r in data["results"])
    assert {r["account"]: (r["outcome"], r["reason"]) for r in data["results"]} == WORLD_EXPECTED
    assert all(r["path"] == "html" for r in data["results"])
    assert data["summary"] == {
        "patched": 2,
        "already-patched": 1,
        "not-affected": 1,
        "skipped": 2,
        "dry-run-failed": 4,
    }
    detail = {r["account"]: r["detail"] for r in data["results"]}
    assert detail["a-mod"].startswith(f"modified: {COMMENT_TEMPLATE} hunk 2")
    assert LIST_TABLE in detail["a-missing"]
    assert COMMENT_TEMPLATE in detail["a-link"] and "symlink" in detail["a-link"]
    assert "7.4" in detail["a-oldphp"] and "7.2" in detail["a-oldphp"]
    assert "notify-only" in detail["a-notify"] and "skip" in detail["a-skip"]
    customers = {r["account"]: r["customer"] for r in data["results"]}
    assert customers["a-patch"] == customers["a-mod"] == "cust-shared"

    # Disk: exactly the patched accounts' security files changed, metadata kept.
    assert w.snapshot() == _expected_after(w, before, PATCHED)
    outside = w.base / "outside-comment-template.php"
    assert outside.read_bytes() == kit.release_file("6.4.2", COMMENT_TEMPLATE)

    # Ledger: results, touched files with hashes and backups, journals.
    run_id = data["run"]
    with open_ledger(w.ledger) as ledger:
        rows = ledger_runs.results(ledger, run_id)
        assert {r.account: (r.outcome.value, r.reason and r.reason.value) for r in rows} == (
            WORLD_EXPECTED
        )
        touched = ledger_runs.touched_files(ledger, run_id)
        journals = {r.account: r.journal for r in rows if r.outcome.value == "patched"}
    assert {(t.account, t.file) for t in touched} == {(a, f) for a in PATCHED for f in kit.WP_FILES}
    for t in touched:
        assert t.state == FileState.VERIFIED
        assert t.pre_sha256 == kit.sha(kit.release_file("6.4.2", t.file))
        assert t.post_sha256 == kit.sha(kit.post_image(t.file))
        assert (w.inst(t.account) / t.file).read_bytes() == kit.post_image(t.file)
        assert t.backup_path is not None
        backup = Path(t.backup_path)
        assert backup.is_relative_to(w.backups)
        assert kit.sha(backup.read_bytes()) == t.pre_sha256
        assert stat.S_IMODE(backup.stat().st_mode) & 0o077 == 0
    for acct, entry in journals.items():
        assert entry is not None and Path(entry).is_relative_to(w.backups)
        j = jr.load_journal(entry)
        assert j.state == "done" and j.root == str(w.root(acct)) and j.inst == "html"

    # The same bundle again: a new run, nothing changes, the patched are already-patched.
    after_first = w.snapshot()
    second = w.rollout()
    assert second.json["run"] != run_id
    again = {r["account"]: (r["outcome"], r["reason"]) for r in second.json["results"]}
    assert again == {**WORLD_EXPECTED, **{a: ("already-patched", None) for a in PATCHED}}
    assert w.snapshot() == after_first

    # Rollback, with one file changed since the patch in a-patch0: reported, not overwritten.
    changed = w.inst("a-patch0") / COMMENT_TEMPLATE
    changed.write_bytes(changed.read_bytes() + b"// customer edit after the patch\n")
    edited = changed.read_bytes()
    back = kit.patchd(
        w.ledger, "rollback", str(run_id), "--accounts", str(w.inventory), "--yes", "--json"
    )
    assert back.code == 1
    items = {i["account"]: i for i in back.json["installations"]}
    assert items["a-patch"]["status"] == "restored"
    assert items["a-patch0"]["status"] == "conflict"
    assert COMMENT_TEMPLATE in items["a-patch0"]["conflicts"]
    assert changed.read_bytes() == edited
    restored = w.snapshot()
    for key, value in before.items():
        if key.startswith("a-patch0/"):
            continue
        assert restored[key] == value, key
    with open_ledger(w.ledger) as ledger:
        states = {(t.account, t.file): t.state for t in ledger_runs.touched_files(ledger, run_id)}
    assert states[("a-patch", COMMENT_TEMPLATE)] == FileState.ROLLED_BACK
    assert states[("a-patch0", COMMENT_TEMPLATE)] == FileState.ROLLBACK_CONFLICT


def test_rollback_of_one_account_is_byte_identical(fresh_world: World) -> None:
    w = fresh_world
    before = w.snapshot()
    run_id = w.rollout().json["run"]
    res = kit.patchd(
        w.ledger,
        "rollback",
        str(run_id),
        "--accounts",
        str(w.inventory),
        "--account",
        "a-patch0",
        "--yes",
        "--json",
    )
    assert res.code == 0, res.err
    assert [i["account"] for i in res.json["installations"]] == ["a-patch0"]
    assert w.snapshot() == _expected_after(w, before, ["a-patch"])


def test_apply_failed_restores_everything(fresh_world: World) -> None:
    w = fresh_world
    before = w.snapshot()
    env = {"PATCHD_FAULT": "after_first_replace:oserror"}  # the agent inherits it
    res = w.rollout("--limit-account", "a-patch,a-patch0", env=env)
    assert res.code == 1
    got = {r["account"]: (r["outcome"], r["reason"]) for r in res.json["results"]}
    assert got == {"a-patch": ("apply-failed", None), "a-patch0": ("apply-failed", None)}
    for r in res.json["results"]:
        assert "injected fault" in r["detail"] and "restored" in r["detail"]
    assert w.snapshot() == before
    with open_ledger(w.ledger) as ledger:
        touched = ledger_runs.touched_files(ledger, res.json["run"])
        rows = ledger_runs.results(ledger, res.json["run"])
    assert len(touched) == 4 and {t.state for t in touched} == {FileState.RESTORED}
    for r in rows:
        assert r.journal and jr.load_journal(r.journal).state == "restored"


def test_lint_failed_with_php_binary(fresh_world: World, tmp_path: Path) -> None:
    w = fresh_world
    bad = kit.build_bundle(
        tmp_path / "bad-bundle",
        bundle_id="wp-broken-lint",
        transform=lambda d: d.replace(
            b"+\techo esc_html( $author );", b"+\techo esc_html( $author ;"
        ),
    )
    inv = json.loads(json.dumps(__import__("yaml").safe_load(w.inventory.read_text())))
    for a in inv["accounts"]:
        if a["id"] == "a-patch":
            a["php_binary"] = "/usr/bin/php"
    inv_path = kit.write_inventory(tmp_path / "lint.yaml", inv["hosts"], inv["accounts"])
    before = w.snapshot()
    res = kit.patchd(
        w.ledger,
        "rollout",
        str(bad),
        "--accounts",
        str(inv_path),
        "--backup-dir",
        str(w.backups),
        "--limit-account",
        "a-patch,a-patch0",
        "--yes",
        "--json",
    )
    got = {r["account"]: r for r in res.json["results"]}
    assert (got["a-patch"]["outcome"], got["a-patch"]["reason"]) == (
        "dry-run-failed",
        "lint-failed",
    )
    assert got["a-patch"]["detail"].startswith(f"lint-failed: {COMMENT_TEMPLATE}: PHP")
    assert "syntax error" in got["a-patch"]["detail"]
    # Without a php_binary nothing is linted: the broken patch applies (operators: set one).
    assert got["a-patch0"]["outcome"] == "patched"
    after = w.snapshot()
    assert {k for k in before if before[k] != after[k]} == {
        f"a-patch0/html/{rel}" for rel in kit.WP_FILES
    }


def test_canary_stops_after_n_patched(fresh_world: World, tmp_path: Path) -> None:
    w = fresh_world
    srv = w.base / "srv"
    extra = []
    for n in range(4):
        kit.install_wordpress(srv / f"c-{n}", "6.4.2")
        extra.append(kit.account(f"c-{n}", "web01", srv / f"c-{n}", docroots=["html"]))
    inv = kit.write_inventory(tmp_path / "canary.yaml", {"web01": {"transport": "local"}}, extra)
    args = (
        "rollout",
        str(w.bundle),
        "--accounts",
        str(inv),
        "--backup-dir",
        str(w.backups),
        "--yes",
        "--json",
        "--canary",
        "2",
    )
    res = kit.patchd(w.ledger, *args)
    data = res.json
    assert data["status"] == "canary-stopped"
    assert data["summary"] == {"patched": 2}
    states = [kit.wp_state(srv / f"c-{n}" / "html") for n in range(4)]
    assert sorted(states) == ["post", "post", "pre", "pre"]
    # Without --canary the rest follows in a new run; the canaries are already-patched.
    rest = kit.patchd(w.ledger, *args[:-2])
    assert rest.json["summary"] == {"patched": 2, "already-patched": 2}
    assert [kit.wp_state(srv / f"c-{n}" / "html") for n in range(4)] == ["post"] * 4


def test_limits_by_host_account_customer(fresh_world: World) -> None:
    w = fresh_world
    res = w.rollout("--dry-run", "--limit-customer", "cust-shared")
    assert sorted(r["account"] for r in res.json["results"]) == ["a-mod", "a-patch"]
    res = w.rollout("--dry-run", "--limit-account", "a-oldphp", "--limit-account", "a-newer")
    assert sorted(r["account"] for r in res.json["results"]) == ["a-newer", "a-oldphp"]
    res = w.rollout("--dry-run", "--limit-host", "web01", "--limit-account", "a-link")
    assert [r["account"] for r in res.json["results"]] == ["a-link"]
    res = w.rollout("--dry-run", "--limit-host", "nowhere")
    assert res.code == 2 and "--limit-host: not in" in res.err and "nowhere" in res.err
    # known ids whose combination leaves nothing are a usage error too
    res = w.rollout("--dry-run", "--limit-customer", "cust-shared", "--limit-account", "a-link")
    assert res.code == 2 and "no account" in res.err


def test_error_outcome_from_an_agent_side_exception(fresh_world: World, tmp_path: Path) -> None:
    """A bug inside the agent (injected into a real agent process) is ``error`` with its
    traceback in the ledger; the other installations go on."""
    from patchd.bundle.manifest import load_bundle
    from patchd.inventory import load_inventory
    from patchd.rollout.run import RolloutOptions, run_rollout
    from patchd.transport.local import LocalTransport

    w = fresh_world
    python = _python_with_bug(tmp_path, trigger=str(w.root("a-patch0")))
    before = w.snapshot()
    with open_ledger(w.ledger) as ledger:
        report = run_rollout(
            load_bundle(w.bundle),
            load_inventory(w.inventory),
            ledger,
            inventory_path=w.inventory,
            options=RolloutOptions(
                accounts=frozenset({"a-patch", "a-patch0"}), backup_dir=str(w.backups)
            ),
            transports={"web01": LocalTransport("web01", python=str(python))},
        )
        rows = {r.account: r for r in ledger_runs.results(ledger, report.run_id)}
    assert report.summary == {"patched": 1, "error": 1}
    err = rows["a-patch0"]
    assert err.outcome.value == "error" and "injected agent bug" in (err.detail or "")
    assert err.error_traceback and "RuntimeError: injected agent bug" in err.error_traceback
    assert rows["a-patch"].outcome.value == "patched"
    assert w.snapshot() == _expected_after(w, before, ["a-patch"])


def _python_with_bug(folder: Path, *, trigger: str) -> Path:
    """An interpreter wrapper whose agent raises RuntimeError in the patcher's ``dry_run``
    or ``apply`` (an apply does its dry run inline) for ``trigger``.

    NOTE: the agent runs with ``-I`` (no PYTHONPATH, no sitecustomize from us), so the bug
    is planted by a wrapper that installs an audit hook and then runs the real bootstrap.
    """
    script = folder / "python-with-bug"
    script.write_text(
        f"#!{os.path.realpath(__import__('sys').executable)} -I\n"
        "import sys\n"
        f"TRIGGER = {trigger!r}\n"
        "def hook(event, args):\n"
        "    if event != 'open':\n"
        "        return\n"
        "    f = sys._getframe(1)\n"
        "    while f is not None:\n"
        "        if f.f_code.co_name in ('dry_run', 'apply') \\\n"
        "                and f.f_locals.get('root_path') == TRIGGER:\n"
        "            raise RuntimeError('injected agent bug')\n"
        "        f = f.f_back\n"
        "sys.addaudithook(hook)\n"
        "code = sys.argv[sys.argv.index('-c') + 1]\n"
        "sys.argv = ['-c']\n"
        "exec(compile(code, '<bootstrap>', 'exec'), {'__name__': '__main__'})\n"
    )
    script.chmod(0o755)
    return script


def test_a_dry_run_says_what_would_happen_not_a_success_rate(fresh_world: World) -> None:
    """A dry run writes nothing; its summary must not read "success rate 0.0%" (issue 17)."""
    w = fresh_world
    args = ["rollout", str(w.bundle), "--accounts", str(w.inventory), "--backup-dir",
            str(w.backups), "--yes", "--dry-run"]  # fmt: skip
    res = kit.patchd(w.ledger, *args, env={"COLUMNS": "240"})
    data = w.rollout("--dry-run").json
    # NOTE: "would be patched" is what a real run would write: auto accounts whose dry run
    # succeeded ("dry run: ..."); policy-skipped accounts are counted apart.
    would = sum(1 for r in data["results"] if (r["detail"] or "").startswith("dry run: "))
    failing = sum(1 for r in data["results"] if r["outcome"] == "dry-run-failed")
    assert would > 0
    flat = " ".join(res.out.split())
    assert f"dry run, nothing written: {would} would be patched, {failing} would fail" in flat
    report = kit.patchd(w.ledger, "report", str(data["run"]), env={"COLUMNS": "240"})
    assert f"{would} would be patched, {failing} would fail" in " ".join(report.out.split())
    assert "success rate" not in report.out, report.out
    assert "success rate" not in res.out, res.out
    assert "(would be rolled out anyway)" in res.err, res.err
