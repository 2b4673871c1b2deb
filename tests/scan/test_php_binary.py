"""An account's hoster-provided ``php_binary`` gives its PHP version; a customer's never runs."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from patchd.inventory import load_inventory
from patchd.ledger.db import open_ledger
from patchd.scanner import run_scan


def _wordpress(root: Path) -> None:
    (root / "html/wp-includes").mkdir(parents=True)
    (root / "html/wp-includes/version.php").write_text("<?php\n$wp_version = '6.4.2';\n")
    (root / "html/wp-load.php").write_text("<?php\n")


def test_php_version_is_read_from_the_hosters_binary(tmp_path: Path) -> None:
    real = subprocess.run(
        ["php", "-n", "-r", "echo PHP_MAJOR_VERSION, '.', PHP_MINOR_VERSION;"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    good, evil = tmp_path / "good", tmp_path / "evil"
    for root in (good, evil):
        _wordpress(root)
    marker = tmp_path / "customer-binary-ran"
    fake = evil / "bin" / "php"
    fake.parent.mkdir()
    fake.write_text(f"#!/bin/sh\ntouch {marker}\necho 9.9\n")
    fake.chmod(0o755)
    customer = {"id": "c1", "name": "C", "email": "c@example.com", "language": "en"}
    inv = tmp_path / "accounts.yaml"
    inv.write_text(
        yaml.safe_dump(
            {
                "hosts": {"web01": {"transport": "local"}},
                "accounts": [
                    {"id": "good", "host": "web01", "root": str(good),
                     "php_binary": "/usr/bin/php", "customer": customer},
                    {"id": "evil", "host": "web01", "root": str(evil),
                     "php_binary": str(fake), "customer": customer},
                ],
            }
        )
    )  # fmt: skip
    with open_ledger(tmp_path / "ledger.db") as ledger:
        result = run_scan(load_inventory(inv), ledger, inventory_path=inv)
    by_account = {i.account: i for i in result.installations}
    assert (by_account["good"].php, by_account["good"].php_source) == (real, "php_binary")
    assert by_account["evil"].php_source != "php_binary"
    assert not marker.exists(), "a PHP binary inside the customer's account was executed"
