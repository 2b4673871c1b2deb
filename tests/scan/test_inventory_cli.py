"""Inventory errors through the CLI: exit 2 and a message naming account, field or line."""

from __future__ import annotations

from pathlib import Path

from patchd.inventory import load_inventory
from tests.scan import kit

GOOD_ACCOUNT = """\
  - id: p1
    host: web01
    root: /srv/p1
    php: "8.2"
    customer: {id: c1, name: Eins, email: eins@example.com, language: de}
"""


def _inventory(tmp_path: Path, accounts: str) -> Path:
    path = tmp_path / "accounts.yaml"
    path.write_text("hosts:\n  web01: {transport: local}\naccounts:\n" + accounts)
    return path


def _scan(tmp_path: Path, inventory: Path) -> kit.CliResult:
    return kit.scan(tmp_path / "ledger.db", inventory)


def test_bad_field_names_account_and_field(tmp_path: Path) -> None:
    inventory = _inventory(
        tmp_path,
        GOOD_ACCOUNT
        + """\
  - id: p2
    host: web01
    root: /srv/p2
    php: "8.x"
    customer: {id: c2, name: Zwei, email: not-an-address, language: de}
""",
    )
    res = _scan(tmp_path, inventory)
    assert res.code == 2
    assert res.out == ""
    assert f"patchd: error: {inventory}: account p2: field php: not a PHP version" in res.err
    assert "account p2: field customer.email: not an email address" in res.err
    assert "p1" not in res.err
    assert not (tmp_path / "ledger.db").exists() or "scans" not in res.err


def test_missing_unknown_and_cross_reference_fields(tmp_path: Path) -> None:
    inventory = _inventory(
        tmp_path,
        GOOD_ACCOUNT
        + """\
  - id: p3
    host: web09
    root: relative/p3
    colour: blue
    customer: {id: c3, name: Drei, language: fr}
""",
    )
    res = _scan(tmp_path, inventory)
    assert res.code == 2
    for line in (
        "account p3: field root: not an absolute path: 'relative/p3'",
        "account p3: field colour: unknown field",
        "account p3: field customer.email: required field missing",
        "account p3: field customer.language:",
    ):
        assert line in res.err, res.err


def test_unknown_host_names_account_and_field(tmp_path: Path) -> None:
    inventory = _inventory(tmp_path, GOOD_ACCOUNT.replace("host: web01", "host: web09"))
    res = _scan(tmp_path, inventory)
    assert res.code == 2
    assert "account p1: field host: unknown host 'web09'" in res.err


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    inventory = _inventory(tmp_path, GOOD_ACCOUNT + "  - id: p2\n    host: [web01\n")
    res = _scan(tmp_path, inventory)
    assert res.code == 2
    assert f"{inventory}: line " in res.err
    assert "YAML syntax error" in res.err
    line = int(res.err.split(": line ", 1)[1].split(",", 1)[0])
    # the unclosed flow sequence opens on line 10 and the parser notices at the end
    assert 10 <= line <= 11, res.err


def test_example_inventory_loads(tmp_path: Path) -> None:
    """The repository's accounts.example.yaml (documented in docs/operator.md) is valid."""
    example = Path(__file__).resolve().parents[2] / "accounts.example.yaml"
    inv = load_inventory(example)
    assert inv.accounts and inv.hosts
    assert {h.transport for h in inv.hosts.values()} == {"local", "ssh"}
