"""What support reads stays true after the fact (issue 16), end to end through the CLI:

- rollback -> ``report`` shows ``rolled-back`` on the failure list, the success rate drops,
  ``notify`` sends the rolled-back wording (never "patched"), a later rollout patches again;
  over SSH the rollback runs on the remote host;
- canary + rest -> ``patchd runs``, ``report latest``, ``report --bundle`` (one current
  outcome per installation) and ``notify --bundle`` (one email per customer, none twice).

Emails go through a real SMTP server process (aiosmtpd) on loopback.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.e2e import kit
from tests.e2e.conftest import COMMENT_TEMPLATE, WORLD_EXPECTED, World
from tests.support.smtp import Received, SMTPServer, smtp_server  # noqa: F401
from tests.support.sshd import SSHDFactory

SENDER = "Security <security@hoster.example>"
PATCHED = sorted(a for a, v in WORLD_EXPECTED.items() if v[0] == "patched")


def _notify(w: World, server: SMTPServer, *args: str) -> kit.CliResult:
    return kit.patchd(
        w.ledger, "notify", *args, "--accounts", str(w.inventory), "--from", SENDER,
        "--send", "--smtp-host", server.host, "--smtp-port", str(server.port),
        "--rate", "6000/min", "--json",
    )  # fmt: skip


def _text(m: Received) -> str:
    body = m.message.get_body(("plain",))
    assert body is not None
    return body.get_content()


def _to(messages: list[Received], email: str) -> list[Received]:
    return [m for m in messages if m.rcpt_tos == (email,)]


def _report(w: World, *args: str) -> dict:
    res = kit.patchd(w.ledger, "report", *args, "--json")
    assert res.code == 0, res.err
    return res.json


def _over_ssh(w: World, sshd_factory: SSHDFactory) -> World:
    """``w`` with every account on one live loopback sshd host (agent and rollback run
    there, over SSH)."""
    (live,) = sshd_factory(1)
    inv = yaml.safe_load(w.inventory.read_text())
    ssh_inv = kit.write_inventory(
        w.base / "ssh.yaml",
        {"ssh1": kit.ssh_host_entry(live)},
        [{**a, "host": "ssh1"} for a in inv["accounts"]],
    )
    return World(w.base, ssh_inv, w.bundle, w.ledger, w.backups)


def _rollback_then_tell(w: World, server: SMTPServer, inventory: Path) -> None:
    """The shared story: rollout, notify, roll one account back, report, notify again."""
    first = kit.patchd(
        w.ledger, "rollout", str(w.bundle), "--accounts", str(inventory),
        "--backup-dir", str(w.backups), "--yes", "--json",
    )  # fmt: skip
    run = first.json["run"]
    before = _report(w, str(run))
    assert before["summary"]["patched"] == 2
    sent = _notify(w, server, str(run), "--bundle", str(w.bundle))
    assert sent.code == 0, sent.out + sent.err
    mails = _to(server.messages(), "c-a-patch0@example.com")
    assert len(mails) == 1 and "PATCHED FOR YOU" in _text(mails[0])

    back = kit.patchd(
        w.ledger, "rollback", str(run), "--accounts", str(inventory),
        "--account", "a-patch0", "--yes", "--json",
    )  # fmt: skip
    assert back.code == 0, back.out + back.err
    assert kit.wp_state(w.inst("a-patch0")) == "pre"

    after = _report(w, str(run))
    by_acct = {r["account"]: r for r in after["results"]}
    assert by_acct["a-patch0"]["outcome"] == "rolled-back"
    assert by_acct["a-patch0"]["reason"] is None
    assert "vulnerable again" in by_acct["a-patch0"]["explanation"]
    assert "was patched" in by_acct["a-patch0"]["detail"]
    assert by_acct["a-patch"]["outcome"] == "patched"
    assert after["summary"]["patched"] == 1 and after["summary"]["rolled-back"] == 1
    assert after["success_rate"] < before["success_rate"]
    table = kit.patchd(w.ledger, "report", str(run)).out
    failures = table.split("failure list", 1)[1]
    assert "a-patch0" in failures and "rolled-back" in failures
    latest = _report(w, "latest")
    assert latest["run"] == run and latest["summary"] == after["summary"]

    # notify: the rolled-back customer gets the rolled-back wording, nobody else anything.
    again = _notify(w, server, str(run), "--bundle", str(w.bundle))
    status = {e["customer"]: e["status"] for e in again.json["emails"]}
    assert status["c-a-patch0"] == "sent"
    assert {s for c, s in status.items() if c != "c-a-patch0"} <= {"already-sent"}
    mails = _to(server.messages(), "c-a-patch0@example.com")
    assert len(mails) == 2
    text = _text(mails[1])
    assert "SECURITY FIX UNDONE" in text and "vulnerable again" in text
    assert "PATCHED FOR YOU" not in text
    assert "vulnerable again" in str(mails[1].message["Subject"])
    assert mails[0].message["Message-ID"] != mails[1].message["Message-ID"]
    third = _notify(w, server, str(run), "--bundle", str(w.bundle))
    assert {e["status"] for e in third.json["emails"]} <= {"already-sent"}
    assert len(_to(server.messages(), "c-a-patch0@example.com")) == 2

    # A later rollout treats it like any unpatched installation.
    later = kit.patchd(
        w.ledger, "rollout", str(w.bundle), "--accounts", str(inventory),
        "--backup-dir", str(w.backups), "--yes", "--json",
    )  # fmt: skip
    got = {r["account"]: r["outcome"] for r in later.json["results"]}
    assert got["a-patch0"] == "patched" and got["a-patch"] == "already-patched"
    assert kit.wp_state(w.inst("a-patch0")) == "post"
    merged = _report(w, "--bundle", "wp-2024-comment-xss")
    cur = {r["account"]: (r["outcome"], r["run"]) for r in merged["results"]}
    assert cur["a-patch0"] == ("patched", later.json["run"])
    assert cur["a-patch"] == ("patched", run)
    final = _notify(w, server, "--bundle", str(w.bundle))
    status = {e["customer"]: e["status"] for e in final.json["emails"]}
    assert status["c-a-patch0"] == "sent"
    mails = _to(server.messages(), "c-a-patch0@example.com")
    assert len(mails) == 3 and "PATCHED FOR YOU" in _text(mails[2])


def test_rollback_then_report_and_notify_local(
    fresh_world: World,
    smtp_server: SMTPServer,  # noqa: F811
) -> None:
    _rollback_then_tell(fresh_world, smtp_server, fresh_world.inventory)


def test_rollback_then_report_and_notify_over_ssh(
    fresh_world: World,
    sshd_factory: SSHDFactory,
    smtp_server: SMTPServer,  # noqa: F811
) -> None:
    w = _over_ssh(fresh_world, sshd_factory)
    _rollback_then_tell(w, smtp_server, w.inventory)
    runs = kit.patchd(w.ledger, "runs", "--json").json["runs"]
    assert {r["backups"][0] for r in runs if r["backups"]} == {f"ssh1:{w.backups}"}


def _small_world(w: World, tmp_path: Path, customers: dict[str, str | None]) -> World:
    """``w`` with a new inventory: one WordPress 6.4.2 account per key of ``customers``
    (its customer id, or its own when None)."""
    accounts = []
    for acct, cust in customers.items():
        kit.install_wordpress(w.base / "srv" / acct, "6.4.2")
        accounts.append(
            kit.account(acct, "web01", w.base / "srv" / acct, docroots=["html"], customer=cust)
        )
    local = {"web01": {"transport": "local"}}
    inv = kit.write_inventory(tmp_path / "small.yaml", local, accounts)
    return World(w.base, inv, w.bundle, w.ledger, w.backups)


def test_canary_then_rest_one_view_one_email(
    fresh_world: World,
    tmp_path: Path,
    smtp_server: SMTPServer,  # noqa: F811
) -> None:
    # k-1 (canary) and k-2 (rest) belong to one customer
    w = _small_world(
        fresh_world, tmp_path, {"k-0": None, "k-1": "c-shared", "k-2": "c-shared", "k-3": None}
    )
    inv = w.inventory
    args = ("rollout", str(w.bundle), "--accounts", str(inv), "--backup-dir", str(w.backups))
    dry = kit.patchd(w.ledger, *args, "--dry-run", "--yes", "--json").json["run"]
    canary = kit.patchd(w.ledger, *args, "--yes", "--json", "--canary", "2").json
    assert canary["status"] == "canary-stopped" and canary["summary"] == {"patched": 2}
    rest = kit.patchd(w.ledger, *args, "--yes", "--json").json
    assert rest["summary"] == {"patched": 2, "already-patched": 2}

    # patchd runs: newest first, with status, counts, ledger and backup store.
    listing = kit.patchd(w.ledger, "runs", "--json").json["runs"]
    assert [r["run"] for r in listing] == [rest["run"], canary["run"], dry]
    assert [r["status"] for r in listing] == ["finished", "canary-stopped", "dry run"]
    assert listing[0]["counts"] == {"patched": 2, "already-patched": 2}
    assert all(r["ledger"] == str(w.ledger) for r in listing)
    assert listing[0]["backups"] == [f"web01:{w.backups}"] and listing[2]["backups"] == []
    csv = kit.patchd(w.ledger, "runs", "--format", "csv").out.splitlines()
    assert csv[0].split(",")[:5] == ["run", "bundle", "started", "finished", "status"]
    table = kit.patchd(w.ledger, "runs", "--bundle", "wp-2024-comment-xss").out
    assert "canary-stopped" in table and "patched 2, already-patched 2" in table

    # report latest = the rest; --bundle merges: the canary's patched beats already-patched.
    assert _report(w, "latest")["run"] == rest["run"]
    merged = _report(w, "--bundle", "wp-2024-comment-xss")
    assert merged["runs"] == [canary["run"], rest["run"]]
    assert merged["summary"] == {"patched": 4} and merged["success_rate"] == 1.0
    assert {r["account"]: r["outcome"] for r in merged["results"]} == {
        f"k-{n}": "patched" for n in range(4)
    }
    assert _report(w, "--bundle", str(w.bundle))["summary"] == {"patched": 4}
    only = _report(w, "--bundle", "wp-2024-comment-xss", "--customer", "c-shared")
    assert sorted(r["account"] for r in only["results"]) == ["k-1", "k-2"]
    csv = kit.patchd(w.ledger, "report", "--bundle", "wp-2024-comment-xss", "--format", "csv")
    assert csv.out.splitlines()[0].startswith("run,account,")
    html = kit.patchd(w.ledger, "report", "--bundle", "wp-2024-comment-xss", "--format", "html")
    assert html.code == 0 and "k-3" in html.out and "<html" in html.out

    # notify the canary run first, then the bundle: nobody gets a second email about the
    # same installation; the shared customer hears about k-2 (new) once.
    first = _notify(w, smtp_server, str(canary["run"]), "--bundle", str(w.bundle))
    assert sorted(e["customer"] for e in first.json["emails"] if e["status"] == "sent") == [
        "c-k-0",
        "c-shared",
    ]
    both = _notify(w, smtp_server, "--bundle", str(w.bundle))
    status = {e["customer"]: e["status"] for e in both.json["emails"]}
    assert status == {
        "c-k-0": "already-sent",
        "c-shared": "sent",
        "c-k-3": "sent",
    }
    rest_again = _notify(w, smtp_server, str(rest["run"]), "--bundle", str(w.bundle))
    assert {e["status"] for e in rest_again.json["emails"]} == {"already-sent"}
    got = smtp_server.messages()
    per = {m.rcpt_tos[0]: 0 for m in got}
    for m in got:
        per[m.rcpt_tos[0]] += 1
    assert per == {"c-k-0@example.com": 1, "c-shared@example.com": 2, "c-k-3@example.com": 1}
    for m in _to(got, "c-k-3@example.com"):
        text = _text(m)
        assert "PATCHED FOR YOU" in text and "ALREADY PROTECTED" not in text
    latest_shared = _to(got, "c-shared@example.com")[-1]
    assert "k-1" in _text(latest_shared) and "k-2" in _text(latest_shared)


def test_one_email_per_customer_when_only_the_bundle_is_notified(
    fresh_world: World,
    tmp_path: Path,
    smtp_server: SMTPServer,  # noqa: F811
) -> None:
    w = _small_world(fresh_world, tmp_path, {f"m-{n}": "c-one" for n in range(3)})
    inv = w.inventory
    args = ("rollout", str(w.bundle), "--accounts", str(inv), "--backup-dir", str(w.backups))
    kit.patchd(w.ledger, *args, "--yes", "--json", "--canary", "1")
    kit.patchd(w.ledger, *args, "--yes", "--json")
    res = _notify(w, smtp_server, "--bundle", str(w.bundle))
    assert [(e["customer"], e["status"], e["installations"]) for e in res.json["emails"]] == [
        ("c-one", "sent", 3)
    ]
    (mail,) = smtp_server.messages()
    assert _text(mail).count("* Account m-") == 3 and "ALREADY PROTECTED" not in _text(mail)
    for run in ("1", "2"):
        again = _notify(w, smtp_server, run, "--bundle", str(w.bundle))
        assert [e["status"] for e in again.json["emails"]] == ["already-sent"]
    assert len(smtp_server.messages()) == 1


def _scan(w: World, inventory: Path) -> dict:
    res = kit.patchd(w.ledger, "scan", "--accounts", str(inventory), "--json")
    assert res.code == 0, res.err
    return res.json


def _files(scan: dict) -> dict[str, tuple[list[str], list[tuple[str, str]]]]:
    """account -> (modified_files, [(patched file, bundle)]) of a scan."""
    return {
        i["account"]: (i["modified_files"], [(p["path"], p["bundle"]) for p in i["patched_files"]])
        for i in scan["installations"]
    }


@pytest.mark.parametrize("transport", ["local", "ssh"])
def test_patchd_own_changes_are_patched_files_not_modified_files(
    fresh_world: World, transport: str, request: pytest.FixtureRequest
) -> None:
    w = fresh_world
    if transport == "ssh":
        w = _over_ssh(w, request.getfixturevalue("sshd_factory"))
    for version in ("6.4.0", "6.4.1", "6.4.2", "6.4.3"):
        kit.install_wordpress(w.base / "releases", version, inst=version)
        res = kit.patchd(w.ledger, "releases", "add", str(w.base / "releases" / version))
        assert res.code == 0, res.err
    first = _scan(w, w.inventory)
    before = _files(first)
    assert before["a-patch"] == ([], []) and before["a-patch0"] == ([], [])
    assert before["a-mod"] == ([COMMENT_TEMPLATE], [])

    data = kit.patchd(
        w.ledger, "rollout", str(w.bundle), "--accounts", str(w.inventory),
        "--backup-dir", str(w.backups), "--yes", "--json",
    ).json  # fmt: skip
    run = data["run"]
    second = _scan(w, w.inventory)
    after = _files(second)
    bundle = "wp-2024-comment-xss"
    for acct in PATCHED:
        assert after[acct] == ([], [(f, bundle) for f in kit.WP_FILES]), acct
    assert after["a-mod"] == ([COMMENT_TEMPLATE], [])
    # the fix the customer put there themselves is theirs, not patchd's
    assert after["a-already"] == (sorted(kit.WP_FILES), [])
    csv = kit.patchd(w.ledger, "scans", "show", str(second["scan"]), "--format", "csv").out
    assert csv.splitlines()[0].endswith(",modified_files,patched_files")
    assert f"{COMMENT_TEMPLATE} ({bundle})" in csv

    # scans diff --bundle: the patched (and the already-patched) carry the fix
    diff = kit.patchd(
        w.ledger, "scans", "diff", str(first["scan"]), str(second["scan"]),
        "--bundle", str(w.bundle), "--json",
    )  # fmt: skip
    assert diff.code == 0, diff.err
    (row,) = diff.json["vulnerable"]
    affected = sum(1 for a in WORLD_EXPECTED if a != "a-newer")
    assert (row["fixed_a"], row["a"]) == (0, affected)
    assert (row["fixed_b"], row["b"]) == (3, affected - 3)  # a-patch, a-patch0, a-already

    # patched, then edited by the customer: a customer modification again
    edited = w.inst("a-patch") / COMMENT_TEMPLATE
    edited.write_bytes(edited.read_bytes() + b"// mine\n")
    back = kit.patchd(
        w.ledger, "rollback", str(run), "--accounts", str(w.inventory),
        "--account", "a-patch0", "--yes",
    )  # fmt: skip
    assert back.code == 0, back.err
    third = _files(_scan(w, w.inventory))
    other = next(f for f in kit.WP_FILES if f != COMMENT_TEMPLATE)
    assert third["a-patch"] == ([COMMENT_TEMPLATE], [(other, bundle)])
    assert third["a-patch0"] == ([], [])  # rolled back: the release's files again
