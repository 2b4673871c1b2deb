"""Helpers for the scan tests: fleets, inventories, CLI runs and the fleet's ground truth.

The ground truth is the fleet's ``expected.json``; :func:`truth_view` and
:func:`scan_view` turn it and a scan's JSON into the same comparable shape.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from tests.e2e import kit as e2e

#: expected.json extension kinds -> the detectors' words (see patchd.cms.interface).
KIND = {"local": "extension"}
#: Extension kinds the detectors deliberately do not report (TYPO3 system extensions
#: are core, see patchd/cms/typo3.py).
NOT_REPORTED = {"system"}

patchd = e2e.patchd
ssh_host_entry = e2e.ssh_host_entry
build_bundle = e2e.build_bundle
CliResult = e2e.CliResult


def rewrite_hosts(src: Path, dest: Path, hosts: Mapping[str, Mapping[str, Any]]) -> Path:
    """Copy the inventory ``src`` to ``dest`` with its ``hosts`` section replaced."""
    data = yaml.load(src.read_text(encoding="utf-8"), Loader=yaml.CSafeLoader)
    data["hosts"] = {name: dict(entry) for name, entry in hosts.items()}
    dest.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return dest


def without_php(src: Path, dest: Path) -> Path:
    """Copy the inventory with every account's ``php`` removed (PHP from hints)."""
    data = yaml.load(src.read_text(encoding="utf-8"), Loader=yaml.CSafeLoader)
    for account in data["accounts"]:
        account.pop("php", None)
    dest.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return dest


def copy_fleet(src: Path, dest: Path) -> Path:
    """A private copy of a generated fleet (symlinks kept, inventory paths rewritten)."""
    shutil.copytree(src, dest, symlinks=True)
    for name in ("accounts.yaml", "expected.json"):
        path = dest / name
        path.write_text(path.read_text(encoding="utf-8").replace(str(src), str(dest)))
    return dest


def scan(ledger: Path, accounts: Path, *args: str) -> CliResult:
    """``patchd scan --accounts ACCOUNTS --json ARGS``."""
    return patchd(ledger, "scan", "--accounts", str(accounts), "--json", *args)


def _ext_key(ext: Mapping[str, Any]) -> tuple[str, str, str | None]:
    return (KIND.get(ext["kind"], ext["kind"]), ext["name"], ext["version"])


def scan_view(data: Mapping[str, Any], *, keep_host: bool = False) -> dict[tuple, dict]:
    """A scan's installations keyed by (account, path, cms), host names dropped."""
    out: dict[tuple, dict] = {}
    for inst in data["installations"]:
        row = dict(inst)
        if not keep_host:
            row.pop("host")
        row["extensions"] = sorted(_ext_key(e) for e in inst["extensions"])
        out[(inst["account"], inst["path"], inst["cms"])] = row
    return out


def truth(expected_json: Path) -> dict[str, Any]:
    """The parsed ``expected.json``."""
    return json.loads(expected_json.read_text(encoding="utf-8"))


def truth_installations(doc: Mapping[str, Any]) -> Iterable[tuple[str, dict[str, Any]]]:
    """(account id, installation) for every installation of the ground truth."""
    for account_id, account in doc["accounts"].items():
        for inst in account["installations"]:
            yield account_id, inst


def truth_extensions(inst: Mapping[str, Any]) -> list[tuple[str, str, str | None]]:
    """The extensions a scan must report for one ground-truth installation."""
    return sorted(_ext_key(e) for e in inst["extensions"] if e["kind"] not in NOT_REPORTED)


def hint_php(account: Mapping[str, Any], docroots: list[str]) -> str | None:
    """The PHP version the hints must give for an account without ``php`` in the inventory.

    Model of ``patchd.cms.php.php_hints`` over the fleet: the ``.htaccess`` of each docroot
    (in order) and then of its parent folders; the fleet writes ``AddHandler`` lines only
    into installations' docroots, and its ``.user.ini`` files carry no version.
    """
    by_docroot = {
        inst["docroot"]: inst["php"]
        for inst in account["installations"]
        if inst["php_source"] == "htaccess"
    }
    for docroot in docroots or [""]:
        folder = docroot
        while True:
            if folder in by_docroot:
                return by_docroot[folder]
            if not folder:
                break
            folder = folder.rpartition("/")[0]
    return None
