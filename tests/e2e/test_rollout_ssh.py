"""``patchd rollout`` / ``patchd rollback`` end to end over SSH, against real sshd servers.

The world's accounts are spread over two live loopback sshd hosts; a third host's sshd
is stopped and a fourth points at a closed port: their installations are ``unreachable``
while the others go on. Remote agents do not inherit our environment, so the apply fault
and the agent-side bug are planted through the host's ``python`` (a wrapper interpreter
that sets ``PATCHD_FAULT`` / installs the bug, then runs the real bootstrap).
"""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import yaml

from patchd.ledger import runs as ledger_runs
from patchd.ledger.db import open_ledger
from patchd.ledger.models import FileState
from tests.e2e import kit
from tests.e2e.conftest import COMMENT_TEMPLATE, WORLD_EXPECTED, World
from tests.e2e.test_rollout_local import _python_with_bug
from tests.support.sshd import SSHDFactory

PATCHED = [a for a, v in WORLD_EXPECTED.items() if v[0] == "patched"]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_every_outcome_over_ssh_with_unreachable_hosts(
    fresh_world: World, sshd_factory: SSHDFactory, tmp_path: Path
) -> None:
    w = fresh_world
    live1, live2, stopped = sshd_factory(3)
    server = sshd_factory.server(stopped)
    server.stop()
    # NOTE: the harness's stop_all() would stop it again and fail on the unknown port.
    sshd_factory.servers.remove(server)
    faulty = tmp_path / "python-faulty"
    faulty.write_text(
        f'#!/bin/sh\nPATCHD_FAULT=after_first_replace:oserror exec {sys.executable} "$@"\n'
    )
    faulty.chmod(0o755)
    buggy = _python_with_bug(tmp_path, trigger=str(w.base / "srv" / "u-buggy"))
    hosts = {
        "ssh1": kit.ssh_host_entry(live1),
        "ssh2": kit.ssh_host_entry(live2),
        "stopped": kit.ssh_host_entry(stopped),
        "closed": kit.ssh_host_entry(live1, port=_closed_port()),
        "faulty": kit.ssh_host_entry(live2, python=str(faulty)),
        "buggy": kit.ssh_host_entry(live1, python=str(buggy)),
    }
    inv = yaml.safe_load(w.inventory.read_text())
    accounts = inv["accounts"]
    for n, a in enumerate(accounts):
        a["host"] = "ssh1" if n % 2 == 0 else "ssh2"
    # Two more accounts on the dead hosts (their trees exist, but nobody can reach them).
    for name in ("stopped", "closed", "faulty", "buggy"):
        root = w.base / "srv" / f"u-{name}"
        kit.install_wordpress(root, "6.4.2")
        accounts.append(kit.account(f"u-{name}", name, root, docroots=["html"]))
    w_inv = kit.write_inventory(w.base / "ssh.yaml", hosts, accounts)
    before = w.snapshot()

    res = kit.patchd(
        w.ledger, "rollout", str(w.bundle), "--accounts", str(w_inv),
        "--backup-dir", str(w.backups), "--yes", "--json",
    )  # fmt: skip
    assert res.code == 1
    data = res.json
    got = {r["account"]: (r["outcome"], r["reason"]) for r in data["results"]}
    assert got == {
        **WORLD_EXPECTED,
        "u-stopped": ("unreachable", None),
        "u-closed": ("unreachable", None),
        "u-faulty": ("apply-failed", None),
        "u-buggy": ("error", None),
    }
    by_acct = {r["account"]: r for r in data["results"]}
    assert by_acct["u-stopped"]["host"] == "stopped"
    assert str(stopped.port) in by_acct["u-stopped"]["detail"] or "refused" in (
        by_acct["u-stopped"]["detail"].lower()
    )
    assert by_acct["a-mod"]["detail"].startswith(f"modified: {COMMENT_TEMPLATE} hunk 2")
    assert "injected fault" in by_acct["u-faulty"]["detail"]
    assert "injected agent bug" in by_acct["u-buggy"]["detail"]
    hosts_of = {r["account"]: r["host"] for r in data["results"]}
    assert {hosts_of[a] for a in PATCHED} == {"ssh1", "ssh2"}

    after = w.snapshot()
    changed = {k for k in before if before[k] != after[k]}
    assert changed == {f"{a}/html/{rel}" for a in PATCHED for rel in kit.WP_FILES}
    for a in PATCHED:
        for rel in kit.WP_FILES:
            assert (w.inst(a) / rel).read_bytes() == kit.post_image(rel)
    with open_ledger(w.ledger) as ledger:
        touched = ledger_runs.touched_files(ledger, data["run"])
    states = {(t.account, t.file): t.state for t in touched}
    assert states == {
        **{(a, f): FileState.VERIFIED for a in PATCHED for f in kit.WP_FILES},
        **{("u-faulty", f): FileState.RESTORED for f in kit.WP_FILES},
    }

    # Same command again: the finished run is not resumed; a new run reports the patched
    # installations as already-patched, the dead hosts stay unreachable, nothing changes.
    again = kit.patchd(
        w.ledger, "rollout", str(w.bundle), "--accounts", str(w_inv),
        "--backup-dir", str(w.backups), "--yes", "--json",
    )  # fmt: skip
    again_got = {r["account"]: r["outcome"] for r in again.json["results"]}
    assert {a: again_got[a] for a in PATCHED} == {a: "already-patched" for a in PATCHED}
    assert again_got["u-stopped"] == again_got["u-closed"] == "unreachable"
    assert again_got["u-faulty"] == "apply-failed"
    assert w.snapshot() == after

    back = kit.patchd(
        w.ledger, "rollback", str(data["run"]), "--accounts", str(w_inv), "--yes", "--json"
    )
    assert back.code == 0, back.out + back.err
    assert {i["status"] for i in back.json["installations"]} == {"restored"}
    assert w.snapshot() == before


def test_ssh_dry_run_writes_nothing(fresh_world: World, sshd_hosts: list) -> None:
    w = fresh_world
    inv = yaml.safe_load(w.inventory.read_text())
    for a in inv["accounts"]:
        a["host"] = "remote"
    w_inv = kit.write_inventory(
        w.base / "ssh.yaml", {"remote": kit.ssh_host_entry(sshd_hosts[0])}, inv["accounts"]
    )
    before = w.snapshot()
    res = kit.patchd(
        w.ledger, "rollout", str(w.bundle), "--accounts", str(w_inv),
        "--backup-dir", str(w.backups), "--dry-run", "--json",
    )  # fmt: skip
    assert w.snapshot() == before and list(w.backups.iterdir()) == []
    got = {r["account"]: (r["outcome"], r["reason"]) for r in res.json["results"]}
    assert got == {a: (("skipped", None) if v[0] == "patched" else v) for a, v in
                   WORLD_EXPECTED.items()}  # fmt: skip
