"""``patchd notify --send`` through a real SMTP server process on loopback."""

from __future__ import annotations

import re
import sqlite3

from patchd.bundle.manifest import load_bundle
from patchd.inventory import load_inventory
from patchd.ledger import open_ledger
from patchd.ledger.emails import mark_pending
from patchd.notify.run import plan_run
from tests.notify.conftest import ACCOUNTS, EMAIL, NotifyWorld
from tests.support.smtp import Received, SMTPServer


def _send(world: NotifyWorld, server: SMTPServer, *args: str):
    return world.notify(
        "--send",
        "--smtp-host",
        server.host,
        "--smtp-port",
        str(server.port),
        "--rate",
        "6000/min",
        "--json",
        *args,
    )


def _by_recipient(messages: list[Received]) -> dict[str, Received]:
    out: dict[str, Received] = {}
    for m in messages:
        assert len(m.rcpt_tos) == 1, m.rcpt_tos
        assert m.rcpt_tos[0] not in out, f"two emails to {m.rcpt_tos[0]}"
        out[m.rcpt_tos[0]] = m
    return out


def _text(m: Received) -> str:
    body = m.message.get_body(("plain",))
    assert body is not None
    return body.get_content()


def _html(m: Received) -> str:
    body = m.message.get_body(("html",))
    assert body is not None
    return body.get_content()


def test_one_email_per_customer_with_every_case(
    world: NotifyWorld, smtp_server: SMTPServer
) -> None:
    res = _send(world, smtp_server)
    # c-down is held (unreachable), so the command says "not everything went out".
    assert res.code == 1, res.err
    status = {e["customer"]: e["status"] for e in res.json["emails"]}
    assert status == {
        "c-de": "sent",
        "c-en": "sent",
        "c-php": "sent",
        "c-notify": "sent",
        "c-down": "held",
    }
    got = _by_recipient(smtp_server.messages())
    assert set(got) == {EMAIL.format(cid=c) for c in ("c-de", "c-en", "c-php", "c-notify")}
    for rcpt, m in got.items():
        msg = m.message
        assert m.mail_from == "security@hoster.example"
        assert msg["To"].addresses[0].addr_spec == rcpt
        assert msg.get_content_type() == "multipart/alternative"
        cid = rcpt.split("@")[0]
        assert re.fullmatch(
            rf"<patchd-run{world.run}-{cid}-[0-9a-f]{{12}}@patchd\.invalid>", msg["Message-ID"]
        )
        # Only this customer's accounts are named, in the text and in the HTML part.
        own = {a for a, (c, _, _) in ACCOUNTS.items() if c == cid}
        for body in (_text(m), _html(m)):
            named = set(re.findall(r"\ba-[a-z0-9]+\b", body))
            assert named and named <= own, (cid, named)

    de = got[EMAIL.format(cid="c-de")]
    text = _text(de)
    assert de.message["Subject"].startswith("Handlungsbedarf")
    assert "Guten Tag Beispiel GmbH" in text
    assert "HANDLUNGSBEDARF" in text and "FÜR SIE KORRIGIERT" in text
    assert "Konto a-mod" in text and "Konto a-patch," in text  # both installations, one email
    assert "Datei wp-includes/comment-template.php, Änderung 2" in text
    assert "Version 6.4.3 oder neuer" in text
    assert "security@hoster.example" in text  # support contact
    assert de.message["Content-Language"] == "de"

    en = got[EMAIL.format(cid="c-en")]
    assert en.message["Subject"].startswith("We secured your WordPress installation")
    assert "PATCHED FOR YOU" in _text(en) and "ACTION NEEDED" not in _text(en)
    assert "Closes an XSS hole." in _text(en)

    php = _text(got[EMAIL.format(cid="c-php")])
    assert "ACTION NEEDED" in php
    assert "needs PHP 7.4 or newer, the account has PHP 7.2" in php
    assert "Switch the account to a newer PHP version" in php

    notify = got[EMAIL.format(cid="c-notify")]
    assert notify.message["Subject"].startswith("Sicherheitsupdate für Ihre WordPress")
    assert "BETROFFEN: bitte aktualisieren" in _text(notify)
    assert "FÜR SIE KORRIGIERT" not in _text(notify)

    # The ledger has every sent email, with the Message-ID that went out.
    db = sqlite3.connect(world.ledger)
    rows = dict(db.execute("SELECT customer_id, state FROM emails WHERE run_id = ?", (world.run,)))
    assert rows == {c: "sent" for c in ("c-de", "c-en", "c-php", "c-notify")}
    ids = {r[0] for r in db.execute("SELECT message_id FROM emails")}
    assert ids == {m.message["Message-ID"] for m in got.values()}


def test_second_run_sends_nothing_new(world: NotifyWorld, smtp_server: SMTPServer) -> None:
    _send(world, smtp_server)
    first = len(smtp_server.messages())
    again = _send(world, smtp_server)
    assert len(smtp_server.messages()) == first == 4
    assert {e["status"] for e in again.json["emails"]} == {"already-sent", "held"}


def test_all_clear_and_unresolved_on_request(world: NotifyWorld, smtp_server: SMTPServer) -> None:
    res = _send(world, smtp_server, "--all-clear", "--include-unresolved")
    assert res.code == 0, res.out
    got = _by_recipient(smtp_server.messages())
    assert EMAIL.format(cid="c-skip") not in got  # policy skip: never told
    clear = got[EMAIL.format(cid="c-clear")]
    assert clear.message["Subject"].startswith("Security check: your installations are not")
    assert "nothing to do" in _text(clear)
    assert "a-newer" not in _text(clear)  # not-affected installations are not listed
    down = _text(got[EMAIL.format(cid="c-down")])
    assert "NOT CHECKED" in down and "Account a-down" in down


def test_failed_send_is_retried_on_the_next_run(
    world: NotifyWorld, smtp_server: SMTPServer
) -> None:
    port = smtp_server.port
    smtp_server.stop()
    down = world.notify("--send", "--smtp-host", "127.0.0.1", "--smtp-port", str(port), "--json")
    assert down.code == 1
    assert {e["status"] for e in down.json["emails"]} == {"failed", "held"}
    db = sqlite3.connect(world.ledger)
    states = dict(db.execute("SELECT customer_id, state FROM emails"))
    assert set(states.values()) == {"failed"} and len(states) == 4
    errors = [r[0] for r in db.execute("SELECT last_error FROM emails")]
    assert all("refused" in (e or "").lower() for e in errors), errors
    ids_before = dict(db.execute("SELECT customer_id, message_id FROM emails"))
    db.close()

    smtp_server.start()
    res = _send(world, smtp_server)
    assert {e["status"] for e in res.json["emails"]} == {"sent", "held"}
    got = _by_recipient(smtp_server.messages())
    assert len(got) == 4
    db = sqlite3.connect(world.ledger)
    after = {
        r[0]: (r[1], r[2], r[3])
        for r in db.execute("SELECT customer_id, state, attempts, message_id FROM emails")
    }
    assert all(state == "sent" and attempts == 2 for state, attempts, _ in after.values())
    assert {c: v[2] for c, v in after.items()} == ids_before  # same Message-ID on retry


def test_pending_from_a_crash_is_not_sent_again(
    world: NotifyWorld, smtp_server: SMTPServer
) -> None:
    # (a notify process died after recording the email pending: what it would have told)
    inventory = load_inventory(world.inventory)
    with open_ledger(world.ledger) as ledger:
        bundle = load_bundle(world.bundle)
        (notice,) = [
            n for n in plan_run(ledger, world.run, inventory, bundle) if n.customer_id == "c-en"
        ]
        mark_pending(
            ledger,
            world.run,
            "c-en",
            message_id="<x@y>",
            recipient="c-en@mail.example",
            subject="s",
            told=notice.told,
        )
    res = _send(world, smtp_server)
    status = {e["customer"]: e["status"] for e in res.json["emails"]}
    assert status["c-en"] == "pending"
    assert EMAIL.format(cid="c-en") not in _by_recipient(smtp_server.messages())
    res = _send(world, smtp_server, "--retry-pending")
    assert {e["customer"]: e["status"] for e in res.json["emails"]}["c-en"] == "sent"
    sent = _by_recipient(smtp_server.messages())[EMAIL.format(cid="c-en")]
    assert sent.message["Message-ID"] == "<x@y>"  # the first attempt's id is kept
