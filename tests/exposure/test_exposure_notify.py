"""``patchd notify --exposure``: one email per customer, all-clear for the others, never
twice per scan and customer; through a real SMTP server (aiosmtpd) on loopback."""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.exposure.conftest import Fleet
from tests.support.smtp import Received, SMTPServer

SENDER = "Security <security@hoster.example>"


def _inventory(fleet: Fleet, tmp_path: Path) -> Path:
    """The fleet's inventory with customer c2 writing German."""
    data = yaml.safe_load(fleet.inventory.read_text())
    for account in data["accounts"]:
        if account["customer"]["id"] == "c2":
            account["customer"]["language"] = "de"
    path = tmp_path / "accounts.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _notify(fleet: Fleet, inventory: Path, server: SMTPServer, *args: str):
    return fleet.patchd(
        "notify", "--exposure", "--accounts", str(inventory), "--from", SENDER,
        "--send", "--smtp-host", server.host, "--smtp-port", str(server.port),
        "--rate", "6000/min", "--json", *args,
    )  # fmt: skip


def _text(m: Received) -> str:
    body = m.message.get_body(("plain",))
    assert body is not None
    return body.get_content()


def test_one_email_per_customer_and_never_twice(
    fleet: Fleet, tmp_path: Path, smtp_server: SMTPServer
) -> None:
    _, second = fleet.scans
    inventory = _inventory(fleet, tmp_path)
    assert fleet.exposure("--scan", str(second), "--json").code == 0  # computed with bundles
    res = _notify(fleet, inventory, smtp_server, "--scan", str(second), "--all-clear")
    status = {e["customer"]: (e["kind"], e["status"]) for e in res.json["emails"]}
    assert status == {
        "c1": ("exposed", "sent"),
        "c2": ("exposed", "sent"),
        "c3": ("all-clear", "sent"),
        "c4": ("exposed", "sent"),  # its plugin is exposed although the core is unknown
        "c5": ("exposed", "sent"),  # the core is mitigated, the plugin is not
    }, res.out
    assert res.code == 0, res.err
    mails = {m.rcpt_tos[0]: m for m in smtp_server.messages()}
    assert len(mails) == 5
    c5 = _text(mails["c5@example.com"])
    assert "CVE-2099-0101" in c5 and "CVE-2099-0001" not in c5
    c1 = _text(mails["c1@example.com"])
    # both of c1's installations in one email; only c1's accounts
    assert "Account x-patched" in c1 and "Account x-reverted" in c1
    assert "x-open" not in c1 and "x-new" not in c1
    assert "CVE-2099-0101" in c1 and "hello-like 1.7.2" in c1 and "1.7.3" in c1
    # x-patched's core advisory is mitigated: not told; x-reverted's is
    reverted = c1.split("Account x-reverted")[1]
    assert "CVE-2099-0001" in reverted and "version 6.4.3 or newer" in reverted
    patched = c1.split("Account x-patched")[1].split("Account x-reverted")[0]
    assert "CVE-2099-0001" not in patched
    c2 = _text(mails["c2@example.com"])
    assert "Konto x-open" in c2 and "WordPress 6.4.1" in c2 and "6.4.3" in c2
    assert mails["c2@example.com"].message["Subject"].startswith("Handlungsbedarf")
    c3 = _text(mails["c3@example.com"])
    assert "None of your installations is affected" in c3
    assert mails["c1@example.com"].message["X-Patchd-Scan"] == str(second)
    # again: nothing is sent twice for this scan
    again = _notify(fleet, inventory, smtp_server, "--scan", str(second), "--all-clear")
    assert {e["status"] for e in again.json["emails"]} == {"already-sent"}
    assert len(smtp_server.messages()) == 5


def test_preview_and_no_all_clear_without_the_flag(fleet: Fleet, tmp_path: Path) -> None:
    inventory = _inventory(fleet, tmp_path)
    out = tmp_path / "mails"
    res = fleet.patchd(
        "notify", "--exposure", "--accounts", str(inventory), "--from", SENDER,
        "--preview", str(out), "--json",
    )  # fmt: skip
    assert res.code == 0, res.err
    customers = sorted(e["customer"] for e in res.json["emails"])
    assert customers == ["c1", "c2", "c4", "c5"]
    _, second = fleet.scans
    assert sorted(p.name for p in out.iterdir()) == [
        f"scan{second}-c1.eml",
        f"scan{second}-c2.eml",
        f"scan{second}-c4.eml",
        f"scan{second}-c5.eml",
    ]
