"""Helpers for the rollout end-to-end tests and ``bench/bench_rollout.py``.

Builds real bundles from the fixture WordPress releases (the two security files of
6.4.2 -> 6.4.3, which apply unchanged to 6.4.0-6.4.2), writes inventories, runs the real
``patchd`` CLI (in-process through click, or as a subprocess), hashes account trees, and
derives the expected outcome of every installation from a fleet's ``expected.json``.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from click.testing import CliRunner

from patchd.bundle.manifest import write_bundle
from patchd.cli.main import cli
from patchd.engine.render import render_patch
from patchd.release.tree import diff_trees
from patchd.versions import Version
from patchd_fixtures.families import FAMILIES
from patchd_fixtures.releases import write_release_tree

WP = FAMILIES["wordpress"]
#: The files the WordPress bundle touches (relative to the installation).
WP_FILES: tuple[str, ...] = tuple(sorted(WP.vulnerable_files))
AFFECTED = "6.4.0-6.4.2"
AFFECTED_VERSIONS = ("6.4.0", "6.4.1", "6.4.2")
#: The outcome/reason pair of one installation.
Verdict = tuple[str, str | None]


@lru_cache(maxsize=1)
def _release_dir() -> Path:
    base = Path(tempfile.mkdtemp(prefix="patchd-e2e-releases-"))
    for version in ("6.4.2", "6.4.3"):
        write_release_tree("wordpress", version, base / version)
    return base


def release_file(version: str, rel: str) -> bytes:
    """The bytes of ``rel`` in the fixture WordPress release ``version``."""
    if version in ("6.4.2", "6.4.3"):
        return (_release_dir() / version / rel).read_bytes()
    from patchd_fixtures.families import release_tree

    return release_tree("wordpress", version)[rel]


@lru_cache(maxsize=1)
def security_diff() -> bytes:
    """The unified diff of the two security files, 6.4.2 -> 6.4.3 (applies to 6.4.0-6.4.2)."""
    base = _release_dir()
    changes = diff_trees(base / "6.4.2", base / "6.4.3")
    patches = [fc.to_file_patch() for fc in changes.files if fc.path in WP_FILES]
    assert len(patches) == len(WP_FILES)
    return render_patch(patches)


def build_bundle(
    dest: Path,
    *,
    bundle_id: str = "wp-2024-comment-xss",
    min_php: str | None = "7.4",
    transform: Callable[[bytes], bytes] | None = None,
) -> Path:
    """Write a WordPress bundle folder at ``dest`` (``transform`` may edit the diff)."""
    diff = security_diff()
    if transform is not None:
        diff = transform(diff)
    fields = {
        "id": bundle_id,
        "title": "Comment author XSS (fixture)",
        "advisories": ["CVE-2099-0001"],
        "cms": "wordpress",
        "affected": AFFECTED,
        "fixed_in": "6.4.3",
        "min_php": min_php,
        "summary": {"de": "Schließt eine XSS-Lücke.", "en": "Closes an XSS hole."},
        "variants": [{"versions": AFFECTED, "file": "patch.diff"}],
    }
    write_bundle(dest, fields, {"patch.diff": diff})
    return dest


def post_image(rel: str) -> bytes:
    """The patched content of a security file of 6.4.0-6.4.2 (= the file of 6.4.3)."""
    return release_file("6.4.3", rel)


# -- inventories ------------------------------------------------------------------------


def write_inventory(
    path: Path, hosts: Mapping[str, Mapping[str, Any]], accounts: Iterable[Mapping[str, Any]]
) -> Path:
    """Write an ``accounts.yaml`` with ``hosts`` and ``accounts`` (plain mappings)."""
    data = {
        "hosts": {k: dict(v) for k, v in hosts.items()},
        "accounts": [dict(a) for a in accounts],
    }
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def account(
    acct_id: str,
    host: str,
    root: Path,
    *,
    policy: str = "auto",
    php: str = "8.2",
    customer: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """One inventory account entry."""
    cid = customer or f"c-{acct_id}"
    return {
        "id": acct_id,
        "host": host,
        "root": str(root),
        "php": php,
        "policy": policy,
        "customer": {
            "id": cid,
            "name": f"Customer {cid}",
            "email": f"{cid}@example.com",
            "language": "en",
        },
        **extra,
    }


def ssh_host_entry(host: Any, **changes: Any) -> dict[str, Any]:
    """An inventory host entry for a harness :class:`~tests.support.sshd.SSHHost`."""
    entry = {
        "transport": "ssh",
        "hostname": host.hostname,
        "port": host.port,
        "user": host.user,
        "key_file": host.key_file,
        "known_hosts": host.known_hosts,
        "python": host.python,
    }
    entry.update(changes)
    return entry


def install_wordpress(root: Path, version: str, inst: str = "html") -> Path:
    """Write the fixture WordPress ``version`` into ``root/inst``; return that folder."""
    from patchd_fixtures.families import release_tree
    from patchd_fixtures.releases import write_tree

    return write_tree(release_tree("wordpress", version), root / inst)


# -- running the CLI ---------------------------------------------------------------------


@dataclass(frozen=True)
class CliResult:
    """Exit code, stdout, stderr of one ``patchd`` invocation."""

    code: int
    out: str
    err: str

    @property
    def json(self) -> dict[str, Any]:
        return json.loads(self.out)


def patchd(ledger: Path, *args: str, env: Mapping[str, str] | None = None) -> CliResult:
    """Run ``patchd --ledger LEDGER ARGS`` in-process (the agent still is a subprocess)."""
    runner = CliRunner(mix_stderr=False) if _has_mix_stderr() else CliRunner()
    res = runner.invoke(cli, ["--ledger", str(ledger), *args], env=dict(env or {}))
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        raise res.exception
    return CliResult(res.exit_code, res.stdout, res.stderr)


def _has_mix_stderr() -> bool:
    import inspect

    return "mix_stderr" in inspect.signature(CliRunner.__init__).parameters


def patchd_argv(ledger: Path, *args: str) -> list[str]:
    """The argv of ``patchd`` as a separate process (for kill tests)."""
    code = "import sys; from patchd.cli.main import cli; sys.exit(cli(prog_name='patchd'))"
    return [sys.executable, "-c", code, "--ledger", str(ledger), *args]


def patchd_process(
    ledger: Path, *args: str, env: Mapping[str, str] | None = None, timeout: float = 120
) -> CliResult:
    """Run ``patchd`` as a subprocess and wait for it."""
    done = subprocess.run(
        patchd_argv(ledger, *args),
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        check=False,
    )
    return CliResult(done.returncode, done.stdout, done.stderr)


# -- trees and ground truth --------------------------------------------------------------


def snapshot(root: Path) -> dict[str, str]:
    """rel path -> sha256 (files), ``link:TARGET`` (symlinks) or ``dir`` for a tree.

    Also records mode and owner so that a rewrite keeping the bytes but not the metadata
    is noticed.
    """
    out: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, root)
            st = os.lstat(full)
            if os.path.islink(full):
                out[rel] = "link:" + os.readlink(full)
            elif name in filenames:
                with open(full, "rb") as fh:
                    digest = hashlib.sha256(fh.read()).hexdigest()
                out[rel] = f"{digest} {st.st_mode:o} {st.st_uid}:{st.st_gid}"
            else:
                out[rel] = f"dir {st.st_mode:o}"
    return out


def sha(data: bytes) -> str:
    """sha256 hex of ``data``."""
    return hashlib.sha256(data).hexdigest()


def expected_verdicts(
    expected_json: Path, *, min_php: str | None = "7.4"
) -> dict[tuple[str, str], Verdict]:
    """(account, installation path) -> expected (outcome, reason) for the WordPress bundle.

    From the fleet's ground truth: not WordPress 6.4.0-6.4.2 -> not-affected; policy other
    than auto -> skipped; a customer-modified security file -> modified; PHP older than
    ``min_php`` -> php-incompatible; otherwise patched.

    NOTE: the PHP compared is the account's from the inventory when it has one (the scan
    treats the inventory as authoritative), although ``expected.json`` names an
    installation's ``.htaccess`` handler as its PHP.
    """
    data = json.loads(expected_json.read_text())
    out: dict[tuple[str, str], Verdict] = {}
    for acct_id, acct in data["accounts"].items():
        for inst in acct["installations"]:
            key = (acct_id, inst["path"])
            if inst["cms"] != "wordpress" or inst["version"] not in AFFECTED_VERSIONS:
                out[key] = ("not-affected", None)
            elif acct["policy"] != "auto":
                out[key] = ("skipped", None)
            elif set(inst["modified_files"]) & set(WP_FILES):
                out[key] = ("dry-run-failed", "modified")
            elif (
                min_php
                and (php := acct.get("php") or inst.get("php"))
                and Version.parse(php) < Version.parse(min_php)
            ):
                out[key] = ("dry-run-failed", "php-incompatible")
            else:
                out[key] = ("patched", None)
    return out


def verdicts(results: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str], Verdict]:
    """(account, path) -> (outcome, reason) of a run's JSON results."""
    return {(r["account"], r["path"]): (r["outcome"], r["reason"]) for r in results}


def wp_state(inst_dir: Path) -> str:
    """``pre`` / ``post`` / ``mixed`` / ``other``: what the security files of an
    installation hold (``pre`` = any original 6.4.0-6.4.2 content, ``post`` = patched)."""
    states = set()
    for rel in WP_FILES:
        data = (inst_dir / rel).read_bytes()
        if data == post_image(rel):
            states.add("post")
        elif any(data == release_file(v, rel) for v in AFFECTED_VERSIONS):
            states.add("pre")
        else:
            states.add("other")
    return states.pop() if len(states) == 1 else "mixed"
