"""load_inventory: validation errors name file, account (or host) and field; speed."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from patchd.errors import InventoryError
from patchd.inventory import Inventory, load_inventory

REPO = Path(__file__).resolve().parents[1]

HOSTS = "hosts:\n  web01: {transport: local}\n"
CUSTOMER = "{id: c1, name: Kunde GmbH, email: it@kunde.example, language: de}"


def _account(extra: str = "", account_id: str = "p10001", customer: str = CUSTOMER) -> str:
    return (
        f"  - id: {account_id}\n    host: web01\n    root: /srv/accounts/{account_id}\n"
        f"    customer: {customer}\n{extra}"
    )


def _load(tmp_path: Path, text: str) -> Inventory:
    path = tmp_path / "accounts.yaml"
    path.write_text(text)
    return load_inventory(path)


def _error(tmp_path: Path, text: str) -> str:
    with pytest.raises(InventoryError) as info:
        _load(tmp_path, text)
    message = str(info.value)
    assert message.startswith(str(tmp_path / "accounts.yaml") + ": ")
    return message.split(": ", 1)[1]


def test_example_file_loads() -> None:
    inv = load_inventory(REPO / "accounts.example.yaml")
    assert [a.id for a in inv.accounts] == ["p10001", "p10002"]
    web02 = inv.hosts["web02"]
    assert web02.transport == "ssh" and web02.port == 22
    assert web02.key_file == Path(os.path.expanduser("~/.ssh/patchd_ed25519"))
    assert "~" not in str(web02.known_hosts)
    first = inv.account("p10001")
    assert (first.php, first.docroots, first.uid, first.policy) == ("8.2", ["html"], 10001, "auto")
    assert inv.account("p10002").php_binary == "/opt/php/7.4/bin/php"
    assert [a.id for a in inv.accounts_on("web02")] == ["p10002"]


def test_defaults_and_normalisation(tmp_path: Path) -> None:
    inv = _load(
        tmp_path,
        HOSTS
        + "accounts:\n"
        + _account("    docroots: ['./html/', '', 'a//b']\n    php: 7.4\n").replace(
            "/srv/accounts/p10001", "/srv/accounts/p10001/"
        ),
    )
    acct = inv.accounts[0]
    assert acct.root == "/srv/accounts/p10001"
    assert acct.docroots == ["html", "", "a/b"]
    assert acct.php == "7.4"  # unquoted YAML float accepted as its text
    assert acct.policy == "auto" and acct.uid is None and acct.php_binary is None


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ("    php: '8.x'\n", "account p10001: field php: not a PHP version: '8.x'"),
        ("    php_binary: php\n", "account p10001: field php_binary: not an absolute path"),
        ("    docroots: [/html]\n", "account p10001: field docroots: docroot must be relative"),
        ("    docroots: [a/../../b]\n", "account p10001: field docroots: '..' in docroot"),
        ("    policy: always\n", "account p10001: field policy: Input should be 'auto'"),
        ("    uid: -1\n", "account p10001: field uid: Input should be greater than"),
        ("    colour: red\n", "account p10001: field colour: unknown field"),
    ],
)
def test_account_field_errors(tmp_path: Path, extra: str, expected: str) -> None:
    assert _error(tmp_path, HOSTS + "accounts:\n" + _account(extra)).startswith(expected)


def test_root_errors(tmp_path: Path) -> None:
    text = HOSTS + "accounts:\n" + _account().replace("/srv/accounts/p10001", "ROOT")
    assert _error(tmp_path, text.replace("ROOT", "srv/x")).startswith(
        "account p10001: field root: not an absolute path"
    )
    assert _error(tmp_path, text.replace("ROOT", "/srv/../etc")).startswith(
        "account p10001: field root: '..' in path"
    )
    assert _error(tmp_path, text.replace("ROOT", "/")).startswith(
        "account p10001: field root: the file system root cannot be an account root"
    )


@pytest.mark.parametrize(
    ("customer", "expected"),
    [
        (
            '{id: c1, name: "Evil\\r\\nBcc: all@example.org", email: a@b.example, language: de}',
            "account p10001: field customer.name: name contains a control character",
        ),
        (
            '{id: c1, name: X, email: "a@b.example\\nBcc: x@y.example", language: de}',
            "account p10001: field customer.email: email contains a control character",
        ),
        (
            "{id: c1, name: X, email: not-an-address, language: de}",
            "account p10001: field customer.email: not an email address: 'not-an-address'",
        ),
        (
            "{id: c1, name: X, email: a@b.example, language: fr}",
            "account p10001: field customer.language: Input should be 'de' or 'en', got 'fr'",
        ),
        (
            "{id: c1, name: X, email: a@b.example}",
            "account p10001: field customer.language: required field missing",
        ),
    ],
)
def test_customer_errors(tmp_path: Path, customer: str, expected: str) -> None:
    text = HOSTS + "accounts:\n" + _account(customer=customer)
    assert _error(tmp_path, text).startswith(expected)


def test_cross_checks(tmp_path: Path) -> None:
    twice = HOSTS + "accounts:\n" + _account() + _account()
    assert _error(tmp_path, twice) == "account p10001: field id: duplicate account id"
    unknown = HOSTS + "accounts:\n" + _account().replace("host: web01", "host: web09")
    assert _error(tmp_path, unknown) == "account p10001: field host: unknown host 'web09'"
    other = "{id: c1, name: Other, email: x@other.example, language: en}"
    clash = HOSTS + "accounts:\n" + _account() + _account(account_id="p2", customer=other)
    assert _error(tmp_path, clash) == (
        "account p2: field customer: customer c1 differs from the one given for account p10001"
    )


def test_host_errors(tmp_path: Path) -> None:
    assert _error(tmp_path, "hosts:\n  web02: {transport: ssh}\naccounts: []\n") == (
        "host web02: field hostname: required for transport ssh"
    )
    assert _error(
        tmp_path, "hosts:\n  web02: {transport: ssh, hostname: h.example, port: 0}\n"
    ).startswith("host web02: field port: Input should be greater than or equal to 1, got 0")
    assert _error(tmp_path, "hosts:\n  w: {transport: ftp}\n").startswith(
        "host w: field transport: Input should be 'local' or 'ssh', got 'ftp'"
    )
    assert _error(
        tmp_path, "hosts:\n  w: {transport: ssh, hostname: h.example, python: 'python3; rm'}\n"
    ).startswith("host w: field python: not an interpreter name or path")


def test_all_errors_are_listed(tmp_path: Path) -> None:
    text = HOSTS + "accounts:\n" + _account("    php: x\n") + _account("    php: y\n", "p2")
    with pytest.raises(InventoryError) as info:
        _load(tmp_path, text)
    lines = str(info.value).splitlines()
    assert len(lines) == 2
    assert lines[1].endswith(
        "accounts.yaml: account p2: field php: not a PHP version: 'y' (expected like '8.2')"
    )


def test_yaml_problems_name_the_line(tmp_path: Path) -> None:
    assert _error(tmp_path, HOSTS + "accounts:\n  - id: [unclosed\n").startswith(
        "line 5, column 1: YAML syntax error: did not find expected ',' or ']'"
    )
    dup = "hosts:\n  web01: {transport: local}\n  web01: {transport: ssh}\n"
    assert _error(tmp_path, dup) == "line 3: duplicate key 'web01'"
    assert _error(tmp_path, "- just a list\n") == "expected a mapping with 'hosts' and 'accounts'"
    with pytest.raises(InventoryError, match="cannot read"):
        load_inventory(tmp_path / "missing.yaml")


def test_anchors_and_merge_keys(tmp_path: Path) -> None:
    text = (
        "hosts:\n  web01: &ssh {transport: ssh, hostname: a.example, port: 2222}\n"
        "  web02: {<<: *ssh, hostname: b.example}\naccounts: []\n"
    )
    inv = _load(tmp_path, text)
    assert (inv.hosts["web02"].hostname, inv.hosts["web02"].port) == ("b.example", 2222)


def test_fifty_thousand_accounts_load_fast(tmp_path: Path) -> None:
    hosts = "".join(
        f"  web{h:02d}: {{transport: ssh, hostname: web{h:02d}.example.net}}\n" for h in range(20)
    )
    accounts = "".join(
        f"  - id: p{i}\n    host: web{i % 20:02d}\n    root: /srv/accounts/p{i}\n"
        f"    docroots: [html]\n    php: '8.2'\n    uid: {10000 + i}\n    policy: auto\n"
        f"    customer: {{id: c{i // 2}, name: Kunde {i // 2} GmbH, "
        f"email: it{i // 2}@kunde.example, language: de}}\n"
        for i in range(50_000)
    )
    path = tmp_path / "accounts.yaml"
    path.write_text(f"hosts:\n{hosts}accounts:\n{accounts}")
    start = time.perf_counter()
    inv = load_inventory(path)
    elapsed = time.perf_counter() - start
    print(f"loaded 50,000 accounts ({path.stat().st_size >> 20} MiB) in {elapsed:.2f}s")
    assert len(inv.accounts) == 50_000 and inv.accounts[-1].uid == 59_999
    assert elapsed < 15


def test_ledger_cache_serves_the_same_inventory_and_follows_the_file(tmp_path: Path) -> None:
    """The second load of unchanged bytes comes from the ledger's cache (the YAML is not
    parsed again) and equals the first; a changed file is parsed again; a cache entry
    that no longer validates is ignored."""
    from patchd.inventory import _parse_inventory
    from patchd.ledger.db import open_ledger
    from patchd.ledger.inventory_cache import LedgerInventoryCache

    example = (REPO / "accounts.example.yaml").read_text()
    path = tmp_path / "accounts.yaml"
    path.write_text(example)
    with open_ledger(tmp_path / "ledger.db") as ledger:
        cache = LedgerInventoryCache(ledger)
        first = load_inventory(path, cache=cache)
        assert first == load_inventory(path)
        parsed: list[str] = []
        import patchd.inventory as inventory_module

        def counting(raw: bytes, where: str) -> Inventory:
            parsed.append(where)
            return _parse_inventory(raw, where)

        original = inventory_module._parse_inventory
        inventory_module._parse_inventory = counting
        try:
            again = load_inventory(path, cache=cache)
            assert again == first and parsed == []
            path.write_text(example.replace("p10002", "p10003"))
            changed = load_inventory(path, cache=cache)
            assert [a.id for a in changed.accounts] == ["p10001", "p10003"]
            assert len(parsed) == 1
            ledger.execute("UPDATE inventory_cache SET inventory = '{\"hosts\": 1}'")
            assert load_inventory(path, cache=cache) == changed and len(parsed) == 2
            # damaged entries (cut short, other bytes) are parsed again, never half-read
            good = ledger.query_one("SELECT inventory FROM inventory_cache")
            assert good is not None
            stored = good["inventory"].encode("utf-8", "surrogateescape")
            for damaged in (stored[: len(stored) // 2], b"\x00" + stored, b""):
                ledger.execute("UPDATE inventory_cache SET inventory = ?", (damaged,))
                before = len(parsed)
                assert load_inventory(path, cache=cache) == changed
                assert len(parsed) == before + 1
        finally:
            inventory_module._parse_inventory = original
        rows = ledger.query("SELECT sha256 FROM inventory_cache")
        assert len(rows) == 1  # only the newest file is kept


def test_accounts_validated_while_read_equal_the_whole_document(tmp_path: Path) -> None:
    """Accounts are validated one by one as the YAML is read; anchors, aliases and merge
    keys across accounts, ``accounts`` before ``hosts``, and errors among valid accounts
    give what validating the whole document gives."""
    import io

    from patchd.inventory import _load_yaml

    text = (
        "accounts:\n"
        "  - &base\n"
        "    id: p1\n    host: web01\n    root: /srv/p1\n    docroots: [html]\n"
        "    customer: &c1 {id: c1, name: K, email: k@k.example, language: de}\n"
        "  - {<<: *base, id: p2, root: /srv/p2}\n"
        "  - {id: p3, host: web01, root: /srv/p3, customer: *c1, php: 7.4}\n" + HOSTS
    )
    inv = _load(tmp_path, text)
    whole = Inventory.model_validate(_load_yaml(io.BytesIO(text.encode())))
    assert inv == whole
    assert [(a.id, a.root, a.docroots, a.php) for a in inv.accounts] == [
        ("p1", "/srv/p1", ["html"], None),
        ("p2", "/srv/p2", ["html"], None),
        ("p3", "/srv/p3", [], "7.4"),
    ]
    assert inv.accounts[0].customer == inv.accounts[2].customer
    # an alias of a whole account is the same account twice
    aliased = text.replace(HOSTS, "") + "  - *base\n" + HOSTS
    assert _error(tmp_path, aliased) == "account p1: field id: duplicate account id"
    bad = text.replace("id: p2, root: /srv/p2", "id: p2, root: srv/p2, colour: red")
    lines = _error(tmp_path, bad).splitlines()
    assert lines[0] == "account p2: field root: not an absolute path: 'srv/p2'"
    assert lines[1].endswith("account p2: field colour: unknown field")
    assert len(lines) == 2


def test_errors_of_an_account_follow_the_field_order(tmp_path: Path) -> None:
    """Errors of one account are listed in the order of the fields (unknown fields last),
    whatever the order of the keys in the file."""
    text = HOSTS + (
        "accounts:\n  - {colour: red, uid: x, customer: " + CUSTOMER + ", policy: never,"
        " root: rel, id: p1}\n"
    )
    lines = [line.split(": ", 1)[1] for line in _error(tmp_path, text).splitlines()[1:]]
    first = _error(tmp_path, text).splitlines()[0]
    assert [first, *lines] == [
        "account p1: field host: required field missing",
        "account p1: field root: not an absolute path: 'rel'",
        "account p1: field uid: Input should be a valid integer, unable to parse string as an "
        "integer, got 'x'",
        "account p1: field policy: Input should be 'auto', 'notify-only' or 'skip', got 'never'",
        "account p1: field colour: unknown field",
    ]


def test_cache_round_trip_of_many_accounts_in_chunks(tmp_path: Path) -> None:
    """The cache form holds every account in order (several validation chunks), hosts
    and all fields; its count guards against lost lines."""
    import zlib

    from patchd.inventory import _CACHE_CHUNK, _from_cache, _to_cache

    accounts = "".join(
        _account(f"    docroots: [html, 'a b']\n    php: '8.{i % 4}'\n    uid: {i}\n", f"p{i}")
        for i in range(_CACHE_CHUNK * 2 + 7)
    ).replace("Kunde GmbH", "Gärtnerei Blümchen")
    ssh = "  web02: {transport: ssh, hostname: h.example}\n"
    inv = _load(tmp_path, HOSTS + ssh + "accounts:\n" + accounts)
    data = _to_cache(inv)
    assert _from_cache(data) == inv
    text = zlib.decompress(data)
    assert text.count(b"\n") == len(inv.accounts)
    one_less = zlib.compress(text.rsplit(b"\n", 1)[0])
    assert _from_cache(one_less) is None


def test_loading_pauses_the_cyclic_collector_and_restores_it(tmp_path: Path) -> None:
    """The collector is off while loading and as it was afterwards, also after an error."""
    import gc

    import patchd.inventory as inventory_module

    states: list[bool] = []
    original = inventory_module._parse_inventory

    def watching(raw: bytes, where: str) -> Inventory:
        states.append(gc.isenabled())
        return original(raw, where)

    inventory_module._parse_inventory = watching
    try:
        assert gc.isenabled()
        _load(tmp_path, HOSTS + "accounts:\n" + _account())
        assert gc.isenabled() and states == [False]
        _error(tmp_path, HOSTS + "accounts:\n" + _account("    php: x\n"))
        assert gc.isenabled() and states == [False, False]
        gc.disable()
        try:
            _load(tmp_path, HOSTS + "accounts:\n" + _account())
            assert not gc.isenabled()
        finally:
            gc.enable()
    finally:
        inventory_module._parse_inventory = original


def test_sites_and_resolve(tmp_path: Path) -> None:
    sites = (
        "    sites:\n"
        "      - {path: ./html/, url: 'https://www.kunde.example/'}\n"
        "      - {path: html, url: 'http://shop.kunde.example:8080/', resolve: '2001:db8::1'}\n"
    )
    inv = _load(
        tmp_path,
        "hosts:\n  web01: {transport: local, resolve: 192.0.2.10}\naccounts:\n" + _account(sites),
    )
    assert inv.hosts["web01"].resolve == "192.0.2.10"
    first, second = inv.account("p10001").sites
    assert (first.path, first.url, first.resolve) == ("html", "https://www.kunde.example/", None)
    assert (second.path, second.resolve) == ("html", "2001:db8::1")
    assert _load(tmp_path, HOSTS + "accounts:\n" + _account()).accounts[0].sites == []


@pytest.mark.parametrize(
    ("site", "expected"),
    [
        ("{path: html, url: 'ftp://x.example/'}", "field sites.0.url: not an http(s) URL"),
        ("{path: html, url: 'https://u:pw@x.example/'}", "field sites.0.url: no user or password"),
        ("{path: ../x, url: 'https://x.example/'}", "field sites.0.path: '..' in path"),
        ("{path: /srv, url: 'https://x.example/'}", "field sites.0.path: path must be relative"),
        ("{path: html}", "field sites.0.url: required field missing"),
        ("{path: html, url: 'https://x.example/', resolve: w1}", "field sites.0.resolve: not an"),
        ("{path: html, url: 'https://x.example/', port: 1}", "field sites.0.port: unknown field"),
    ],
)
def test_site_errors(tmp_path: Path, site: str, expected: str) -> None:
    text = HOSTS + "accounts:\n" + _account(f"    sites:\n      - {site}\n")
    assert _error(tmp_path, text).startswith(f"account p10001: {expected}")
    bad_host = "hosts:\n  web01: {transport: local, resolve: example.com}\naccounts: []\n"
    assert _error(tmp_path, bad_host).startswith("host web01: field resolve: not an IP address")


def test_a_command_that_creates_the_ledger_leaves_the_inventory_in_its_cache(
    tmp_path: Path,
) -> None:
    """The first scan in a fresh folder checks the inventory before the ledger exists; the
    new ledger still gets it cached, so the next command does not parse the YAML again."""
    import hashlib

    from patchd.ledger.db import open_ledger
    from tests.e2e import kit

    path = tmp_path / "accounts.yaml"
    local = {"web01": {"transport": "local"}}
    kit.write_inventory(path, local, [kit.account("p10001", "web01", tmp_path / "p10001")])
    (tmp_path / "p10001").mkdir()
    ledger_path = tmp_path / "ledger.db"
    res = kit.patchd(ledger_path, "scan", "--accounts", str(path), "--format", "csv")
    assert res.code == 0, res.err
    with open_ledger(ledger_path) as ledger:
        rows = ledger.query("SELECT sha256 FROM inventory_cache")
    assert [r["sha256"] for r in rows] == [hashlib.sha256(path.read_bytes()).hexdigest()]
