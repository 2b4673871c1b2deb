"""Issue 13, item 5: a bundle with merged and conflicting backports, rolled out on a fleet.

Built with ``patchd build`` from the fixture releases: 6.4.2 -> 6.4.3 with the backports
6.4.1 (context drift next to the fix: ported by 3-way merge) and 6.4.0 (the vulnerable
line restructured: a conflict). Bundle ``A`` leaves the conflict to a person (6.4.0 has no
variant); bundle ``B`` carries the person's resolution from the rules file. Each is rolled
out, locally and over a real sshd, on installations of each version plus ones whose
version file is unreadable; the tests compare outcomes, the variant used and every byte
(the merged variant applied equals ``git merge-file``).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from patchd.cli.main import cli
from patchd.engine.apply import apply_file
from patchd.engine.parse import parse_diff
from patchd.ledger.db import open_ledger
from patchd_fixtures.drift import WORDPRESS_DRIFTS, write_drifted_release
from patchd_fixtures.releases import write_release_archive, write_release_tree
from tests.e2e import kit
from tests.support.sshd import SSHDFactory

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = "wp-includes/comment-template.php"
VERSION_FILE = "wp-includes/version.php"
RESOLVED = "\tprint( esc_html( $author ) ); // legacy output path\n"


@pytest.fixture(scope="module")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("backport-fleet")
    rel = {
        "old": write_release_archive("wordpress", "6.4.2", tmp / "rel"),
        "new": write_release_archive("wordpress", "6.4.3", tmp / "rel"),
        "ctx": write_drifted_release(
            "wordpress", "6.4.1", tmp / "wp-6.4.1", WORDPRESS_DRIFTS["context"]
        ),
        "res": write_drifted_release(
            "wordpress", "6.4.0", tmp / "wp-6.4.0", WORDPRESS_DRIFTS["restructured"]
        ),
    }
    answer = tmp / "answer.txt"
    answer.write_text(RESOLVED)
    out: dict[str, Path] = {"OLD": write_release_tree("wordpress", "6.4.2", tmp / "old-tree")}
    for name, review in (("A", ""), ("B", f"n\nn\nn\nf {answer}\n")):
        rules = tmp / f"rules-{name}.yaml"
        shutil.copy(ROOT / "fixtures/rules/wp-2026-001.yaml", rules)
        args = [
            "build", str(rel["old"]), str(rel["new"]), "--rules", str(rules),
            "--backport", str(rel["ctx"]), "--backport", str(rel["res"]),
            "--undecided", "drop", "--id", f"wp-bp-{name}", "--out", str(tmp / "bundles"),
            *(["--review"] if review else []),
        ]  # fmt: skip
        result = CliRunner().invoke(cli, args, input=review)
        assert result.exit_code == 0, result.output
        out[name] = tmp / "bundles" / f"wp-bp-{name}"
    return out


#: account -> how the installation is made
ACCOUNTS = {
    "b-642": "6.4.2",
    "b-641": "6.4.1 drifted",
    "b-640": "6.4.0 restructured",
    "b-641-unknown": "6.4.1 drifted, version unreadable",
    "b-640-unknown": "6.4.0 restructured, version unreadable",
}


def _world(base: Path, host_entry: dict, host: str) -> Path:
    srv = base / "srv"
    accounts = []
    for acct, how in ACCOUNTS.items():
        html = srv / acct / "html"
        if how.startswith("6.4.2"):
            kit.install_wordpress(srv / acct, "6.4.2")
        elif how.startswith("6.4.1"):
            write_drifted_release("wordpress", "6.4.1", html, WORDPRESS_DRIFTS["context"])
        else:
            write_drifted_release("wordpress", "6.4.0", html, WORDPRESS_DRIFTS["restructured"])
        if "unreadable" in how:
            (html / VERSION_FILE).write_bytes(b"<?php\n// truncated during an upgrade\n")
        accounts.append(kit.account(acct, host, srv / acct, docroots=["html"]))
    (base / "backups").mkdir(mode=0o700)
    return kit.write_inventory(base / "accounts.yaml", {host: host_entry}, accounts)


def _rollout(base: Path, inv: Path, bundle: Path) -> dict[str, dict]:
    res = kit.patchd(
        base / "ledger.db", "rollout", str(bundle), "--accounts", str(inv),
        "--backup-dir", str(base / "backups"), "--yes", "--json",
    )  # fmt: skip
    assert res.code in (0, 1), res.err
    return {r["account"]: r for r in res.json["results"]}


def _merge_oracle(tmp: Path, ours: bytes, base: bytes, theirs: bytes) -> bytes:
    for name, data in (("ours", ours), ("base", base), ("theirs", theirs)):
        (tmp / name).write_bytes(data)
    proc = subprocess.run(
        ["git", "merge-file", "-p", str(tmp / "ours"), str(tmp / "base"), str(tmp / "theirs")],
        capture_output=True,
        check=True,
    )
    return proc.stdout


def _check(base: Path, results: dict[str, dict], bundles: dict[str, Path], name: str) -> None:
    got = {a: (r["outcome"], r["reason"]) for a, r in results.items()}
    resolved = name == "B"
    assert got == {
        "b-642": ("patched", None),
        "b-641": ("patched", None),
        "b-640": ("patched", None) if resolved else ("dry-run-failed", "no-variant"),
        "b-641-unknown": ("patched", None),
        "b-640-unknown": ("patched", None) if resolved else ("dry-run-failed", "version-unknown"),
    }
    assert results["b-641-unknown"]["detail"].startswith(
        "version unreadable; the only variant that fits is variants/6.4.1.diff"
    )
    with open_ledger(base / "ledger.db") as ledger:
        used = {
            r["account"]: r["variant"]
            for r in ledger.query("SELECT account, variant FROM results WHERE outcome='patched'")
        }
    assert used["b-642"] == "patch.diff"
    assert used["b-641"] == used["b-641-unknown"] == "variants/6.4.1.diff"
    if resolved:
        assert used["b-640"] == used["b-640-unknown"] == "variants/6.4.0.diff"
    # bytes: the merged variant on the drifted 6.4.1 equals git merge-file's result
    srv = base / "srv"
    old = (bundles["OLD"] / TEMPLATE).read_bytes()
    (fix,) = [fp for fp in parse_diff((bundles[name] / "patch.diff").read_bytes())
              if fp.path == TEMPLATE]  # fmt: skip
    theirs = apply_file(fix, old, fuzz=0).content
    assert theirs is not None
    pristine = base / "pristine-6.4.1"
    write_drifted_release("wordpress", "6.4.1", pristine, WORDPRESS_DRIFTS["context"])
    oracle = base / "oracle"
    oracle.mkdir()
    expected = _merge_oracle(oracle, (pristine / TEMPLATE).read_bytes(), old, theirs)
    assert (srv / "b-641" / "html" / TEMPLATE).read_bytes() == expected
    assert (srv / "b-641-unknown" / "html" / TEMPLATE).read_bytes() == expected
    restructured = (srv / "b-640" / "html" / TEMPLATE).read_text()
    if resolved:
        assert RESOLVED in restructured
    else:
        assert "\tprint( $author ); // legacy output path\n" in restructured  # untouched


@pytest.mark.parametrize("name", ["A", "B"])
def test_backport_fleet_local(tmp_path: Path, bundles: dict[str, Path], name: str) -> None:
    inv = _world(tmp_path, {"transport": "local"}, "web01")
    _check(tmp_path, _rollout(tmp_path, inv, bundles[name]), bundles, name)


@pytest.mark.parametrize("name", ["A", "B"])
def test_backport_fleet_over_ssh(
    tmp_path: Path, bundles: dict[str, Path], sshd_factory: SSHDFactory, name: str
) -> None:
    (host,) = sshd_factory(1)
    inv = _world(tmp_path, kit.ssh_host_entry(host), "ssh1")
    _check(tmp_path, _rollout(tmp_path, inv, bundles[name]), bundles, name)
