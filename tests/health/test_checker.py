"""patchd.health.checker against a real php -S: resolve, timeouts, the stale-code retry."""

from __future__ import annotations

import time
from pathlib import Path

from patchd.health.checker import HealthChecker, SiteURL
from patchd.inventory import Host
from patchd.rollout.health_step import sites_of
from tests.e2e import kit
from tests.support.phpserver import PHPServers


def _site(root: Path, code: str) -> Path:
    root.mkdir(parents=True)
    (root / "index.php").write_text(code)
    return root


def test_resolve_reaches_the_server_by_name(tmp_path: Path, php_servers: PHPServers) -> None:
    page = "<?php echo '<title>' . $_SERVER['HTTP_HOST'] . '</title>';"
    server = php_servers({"shop": _site(tmp_path / "shop", page)})
    with HealthChecker(timeout=5, settle=0) as checker:
        got = checker.baseline("web", SiteURL(server.url("shop"), "127.0.0.1")).result()
        assert (got.status, got.title) == (200, f"shop.test:{server.port}")
        nowhere = checker.baseline("web", SiteURL(server.url("shop"), "127.0.0.2")).result()
    assert nowhere.status is None and nowhere.error


def test_a_slow_site_times_out(tmp_path: Path, php_servers: PHPServers) -> None:
    server = php_servers({"slow": _site(tmp_path / "slow", "<?php sleep(5); echo 'late';")})
    with HealthChecker(timeout=0.5, settle=0) as checker:
        start = time.monotonic()
        got = checker.baseline("web", SiteURL(server.url("slow"), "127.0.0.1")).result()
    assert got.status is None and "Timeout" in (got.error or "")
    assert time.monotonic() - start < 3


def test_stale_code_is_fetched_again_after_settle(tmp_path: Path, php_servers: PHPServers) -> None:
    """opcache serves the old lib.php for a moment after it was replaced: the check must
    not stop at the first (stale, fine) answer."""
    root = _site(tmp_path / "site", "<?php require __DIR__ . '/lib.php'; page();")
    lib = root / "lib.php"
    lib.write_text("<?php function page() { echo '<title>ok</title>' . str_repeat('x', 999); }")
    old = time.time() - 3600
    import os

    os.utime(lib, (old, old))
    os.utime(root / "index.php", (old, old))
    server = php_servers({"site": root})
    site = SiteURL(server.url("site"), "127.0.0.1")
    with HealthChecker(timeout=5, settle=3) as checker:
        before = checker.baseline("web", site).result()
        assert before.title == "ok"
        tmp = root / "lib.new"
        tmp.write_text("<?php function page() { http_response_code(500); }")
        tmp.rename(lib)
        verdict = checker.after("web", site, before).result()
    assert verdict.worse and verdict.after is not None and verdict.after.status == 500


def test_sites_of_an_installation_and_resolve_precedence() -> None:
    account = kit.account(
        "p1",
        "web",
        Path("/srv/p1"),
        sites=[
            {"path": "html", "url": "https://a.example/"},
            {"path": "html/", "url": "https://b.example/", "resolve": "10.0.0.9"},
            {"path": "blog", "url": "https://c.example/"},
        ],
    )
    from patchd.inventory import ACCOUNT

    acct = ACCOUNT.validate_python(account)
    hosts = {"web": Host(transport="local", resolve="10.0.0.1")}
    assert sites_of(acct, "html", hosts) == [
        SiteURL("https://a.example/", "10.0.0.1"),
        SiteURL("https://b.example/", "10.0.0.9"),
    ]
    assert sites_of(acct, "", hosts) == []
    # A shared source (TYPO3 typo3_src-*) is checked through the sites that use it.
    assert sites_of(acct, "typo3_src-12.4.9", hosts, ["blog"]) == [
        SiteURL("https://c.example/", "10.0.0.1")
    ]
