"""Rendering and preview: escaping, header injection, determinism, template override."""

from __future__ import annotations

import email
import email.policy
from pathlib import Path

import pytest

from patchd.bundle.manifest import load_bundle
from patchd.errors import UsageError
from patchd.inventory import Customer
from patchd.ledger.db import open_ledger
from patchd.notify.group import Item, Notice
from patchd.notify.render import BundleFacts, MailSettings, Renderer, clean_header, message_id
from patchd.notify.send import RateLimiter, SmtpSettings, send_messages
from tests.notify.conftest import SENDER, NotifyWorld
from tests.support.smtp import SMTPServer

EVIL_NAME = "Evil Corp\r\nBcc: victim@attacker.example\r\nX-Injected: yes"
EVIL_PATH = "html/<script>alert(1)</script>\r\nSubject: fake"


def _evil_notice(run: int = 1) -> Notice:
    # NOTE: the inventory refuses CR/LF in names, so the customer is built without
    # validation: the notify layer must hold on its own.
    customer = Customer.model_construct(
        id="c-evil", name=EVIL_NAME, email="evil@mail.example", language="en"
    )
    item = Item(
        "a-evil",
        EVIL_PATH,
        "wordpress",
        "6.4.2",
        "dry-run-failed",
        "modified",
        "modified: wp-<b>x</b>.php\r\nBcc: x@y.example hunk 1 (context differs at line 3)",
    )
    return Notice(run, "c-evil", customer, action=(item,), accounts=frozenset({"a-evil"}))


def _renderer(world: NotifyWorld, **settings: object) -> Renderer:
    facts = BundleFacts.from_manifest(load_bundle(world.bundle).manifest)
    return Renderer(facts, MailSettings(sender=SENDER, **settings))  # type: ignore[arg-type]


def test_crlf_in_customer_strings_cannot_inject_headers(
    world: NotifyWorld, smtp_server: SMTPServer
) -> None:
    notice = _evil_notice(world.run)
    msg = _renderer(world).render(notice)
    with open_ledger(world.ledger) as ledger:
        out = send_messages(
            ledger,
            [(notice, msg)],
            SmtpSettings(host=smtp_server.host, port=smtp_server.port),
            limiter=RateLimiter(6000),
        )
    assert [o.status for o in out] == ["sent"]
    (got,) = smtp_server.messages()
    assert got.rcpt_tos == ("evil@mail.example",)
    parsed = got.message
    assert parsed.get_all("Bcc") is None and parsed.get_all("X-Injected") is None
    assert len(parsed.get_all("To")) == 1 and len(parsed.get_all("Subject")) == 1
    assert (
        parsed["To"].addresses[0].display_name
        == "Evil Corp Bcc: victim@attacker.example X-Injected: yes"
    )
    head = got.raw.split(b"\r\n\r\n", 1)[0]
    assert b"\r\nBcc:" not in head and b"\r\nX-Injected:" not in head
    text = parsed.get_body(("plain",)).get_content()
    assert "\\r\\nSubject: fake" in text  # shown escaped, not as a line break
    assert "\nBcc:" not in text
    html = parsed.get_body(("html",)).get_content()
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<b>x</b>" not in html


def test_preview_writes_eml_files_and_is_deterministic(world: NotifyWorld, tmp_path: Path) -> None:
    res = world.notify("--preview", str(tmp_path / "p"), "--json")
    names = sorted(p.name for p in (tmp_path / "p").iterdir())
    assert names == [f"run{world.run}-{c}.eml" for c in ("c-de", "c-en", "c-notify", "c-php")]
    assert {e["status"] for e in res.json["emails"]} == {"previewed", "held"}
    first = {n: (tmp_path / "p" / n).read_bytes() for n in names}
    world.notify("--preview", str(tmp_path / "q"))
    for n in names:
        a = email.message_from_bytes(first[n], policy=email.policy.default)
        b = email.message_from_bytes((tmp_path / "q" / n).read_bytes(), policy=email.policy.default)
        assert a["Message-ID"] == b["Message-ID"]
        assert a.get_body(("plain",)).get_content() == b.get_body(("plain",)).get_content()
    # A preview records nothing: sending later is still possible.
    import sqlite3

    assert sqlite3.connect(world.ledger).execute("SELECT COUNT(*) FROM emails").fetchone() == (0,)


def test_message_id_is_per_run_and_customer() -> None:
    a = message_id(7, "c501", "wp-x", "patchd.invalid")
    assert a == message_id(7, "c501", "wp-x", "patchd.invalid")
    assert a.startswith("<patchd-run7-c501-") and a.endswith("@patchd.invalid>")
    assert (
        len(
            {
                a,
                message_id(8, "c501", "wp-x", "patchd.invalid"),
                message_id(7, "c502", "wp-x", "patchd.invalid"),
            }
        )
        == 3
    )
    assert message_id(7, "c501", "wp-x", "mail.hoster.example").endswith("@mail.hoster.example>")


def test_templates_can_be_overridden_file_by_file(world: NotifyWorld, tmp_path: Path) -> None:
    override = tmp_path / "tpl" / "en"
    override.mkdir(parents=True)
    (override / "subject.txt.j2").write_text(
        "Hoster notice for {{ customer.name }} (run {{ run }})"
    )
    res = world.notify("--preview", str(tmp_path / "p"), "--templates", str(tmp_path / "tpl"))
    assert res.code == 1  # c-down held
    en = email.message_from_bytes(
        (tmp_path / "p" / f"run{world.run}-c-en.eml").read_bytes(), policy=email.policy.default
    )
    assert en["Subject"] == f"Hoster notice for Example Widgets Inc (run {world.run})"
    assert "PATCHED FOR YOU" in en.get_body(("plain",)).get_content()  # shipped body kept
    de = email.message_from_bytes(
        (tmp_path / "p" / f"run{world.run}-c-de.eml").read_bytes(), policy=email.policy.default
    )
    assert de["Subject"].startswith("Handlungsbedarf")  # no German override: shipped one


def test_usage_errors(world: NotifyWorld, tmp_path: Path) -> None:
    both = world.notify("--preview", str(tmp_path), "--send")
    assert both.code == 2 and "exactly one" in both.err
    assert world.notify("--send", "--rate", "0/min").code == 2
    bad_from = world.notify("--preview", str(tmp_path), "--from", "x\r\nBcc: y@z.example")
    assert bad_from.code == 2
    with pytest.raises(UsageError):
        MailSettings(sender=SENDER, domain="bad domain")


def test_clean_header_and_rate_limiter() -> None:
    assert clean_header("a\r\nb\tc\x00d\u202e") == "a b c d"
    t = [0.0]
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(s)
        t[0] += s

    limiter = RateLimiter(30, clock=lambda: t[0], sleep=sleep)
    for _ in range(3):
        limiter.wait()
    assert slept == [2.0, 2.0]  # 30/min: one every two seconds
