"""A finished run with every case a customer email covers, rolled out once per session.

Customers (language) and their accounts, each a fixture WordPress in ``html``:

- ``c-de`` (de, "Beispiel GmbH"): ``a-patch`` (patched) and ``a-mod`` (modified file: action
  needed) -- two installations grouped in one email;
- ``c-en`` (en): ``a-patch2`` (patched);
- ``c-php`` (en): ``a-oldphp`` (PHP 7.2: php-incompatible);
- ``c-notify`` (de): ``a-notify`` (policy notify-only);
- ``c-clear`` (en): ``a-newer`` (6.4.3: not affected; all-clear only when asked);
- ``c-skip`` (en): ``a-skip`` (policy skip: never mentioned);
- ``c-down`` (en): ``a-down`` on a host whose SSH port is closed (unreachable: held).

Tests get a private copy of the ledger (``world``), so email states never leak between them.
"""

from __future__ import annotations

import shutil
import socket
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from tests.e2e import kit
from tests.support.smtp import smtp_server  # noqa: F401

COMMENT_TEMPLATE = "wp-includes/comment-template.php"

#: account -> (customer id, language, customer name)
ACCOUNTS: dict[str, tuple[str, str, str]] = {
    "a-patch": ("c-de", "de", "Beispiel GmbH"),
    "a-mod": ("c-de", "de", "Beispiel GmbH"),
    "a-patch2": ("c-en", "en", "Example Widgets Inc"),
    "a-oldphp": ("c-php", "en", "Old PHP Ltd"),
    "a-notify": ("c-notify", "de", "Nur Melden AG"),
    "a-newer": ("c-clear", "en", "Up To Date LLC"),
    "a-skip": ("c-skip", "en", "Skip Me Corp"),
    "a-down": ("c-down", "en", "Down Host GmbH"),
}
EMAIL = "{cid}@mail.example"
SENDER = "Security Team <security@hoster.example>"


@dataclass(frozen=True)
class NotifyWorld:
    """Inventory, bundle and ledger of a finished run; ``run`` is its id."""

    base: Path
    inventory: Path
    bundle: Path
    ledger: Path
    run: int

    def notify(self, *args: str, env: dict[str, str] | None = None) -> kit.CliResult:
        """``patchd notify RUN --accounts ... --bundle ... --from ... ARGS``."""
        return kit.patchd(
            self.ledger,
            "notify",
            str(self.run),
            "--accounts",
            str(self.inventory),
            "--bundle",
            str(self.bundle),
            "--from",
            SENDER,
            *args,
            env=env,
        )


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _build(base: Path) -> NotifyWorld:
    srv = base / "srv"
    keys = base / "keys"
    keys.mkdir()
    (keys / "id").write_text("not a key\n")
    (keys / "known_hosts").write_text("")
    versions = {"a-newer": "6.4.3", "a-oldphp": "6.4.1"}
    accounts = []
    for acct, (cid, lang, name) in ACCOUNTS.items():
        host = "down01" if acct == "a-down" else "web01"
        inst = kit.install_wordpress(srv / acct, versions.get(acct, "6.4.2"))
        entry = kit.account(
            acct,
            host,
            srv / acct,
            policy={"a-notify": "notify-only", "a-skip": "skip"}.get(acct, "auto"),
            php="7.2" if acct == "a-oldphp" else "8.2",
            customer=cid,
            docroots=["html"],
        )
        entry["customer"] = {
            "id": cid,
            "name": name,
            "email": EMAIL.format(cid=cid),
            "language": lang,
        }
        accounts.append(entry)
        if acct == "a-mod":
            path = inst / COMMENT_TEMPLATE
            text = path.read_bytes()
            old = b"\t$result  = get_permalink();\n"
            assert text.count(old) == 1
            path.write_bytes(text.replace(old, b"\t$result  = get_permalink( 0 ); // mine\n"))
    hosts = {
        "web01": {"transport": "local"},
        "down01": {
            "transport": "ssh",
            "hostname": "127.0.0.1",
            "port": _closed_port(),
            "user": "nobody",
            "key_file": str(keys / "id"),
            "known_hosts": str(keys / "known_hosts"),
        },
    }
    inventory = kit.write_inventory(base / "accounts.yaml", hosts, accounts)
    bundle = kit.build_bundle(base / "bundle")
    backups = base / "backups"
    backups.mkdir(mode=0o700)
    ledger = base / "ledger.db"
    res = kit.patchd(
        ledger,
        "rollout",
        str(bundle),
        "--accounts",
        str(inventory),
        "--backup-dir",
        str(backups),
        "--yes",
        "--json",
    )
    assert res.code in (0, 1), res.err
    return NotifyWorld(base, inventory, bundle, ledger, res.json["run"])


@pytest.fixture(scope="session")
def notify_world_template(tmp_path_factory: pytest.TempPathFactory) -> NotifyWorld:
    """The rolled-out world, built once (never written to: use ``world``)."""
    return _build(tmp_path_factory.mktemp("notify-world"))


@pytest.fixture
def world(notify_world_template: NotifyWorld, tmp_path: Path) -> NotifyWorld:
    """The world with a private copy of the ledger."""
    ledger = tmp_path / "ledger.db"
    shutil.copyfile(notify_world_template.ledger, ledger)
    return replace(notify_world_template, ledger=ledger)
