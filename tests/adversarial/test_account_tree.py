"""Hostile account trees through ``patchd rollout``, over the local and the SSH transport.

One world per transport holds an account per attack (each a WordPress 6.4.2 whose
security file, or a folder above it, was replaced by the attack), plain accounts that
must be patched, a foreign account (policy ``skip``) whose files are link targets, and
root-owned files outside every account. The world is rolled out once per transport (a
subprocess with a timeout: a hang fails); each test then checks one attack's outcome.
Every test also checks that nothing outside the patched accounts' security files changed.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.adversarial import trees
from tests.adversarial.trees import COMMENT_TEMPLATE, LIST_TABLE, Site
from tests.e2e import kit

#: account -> (outcome, reason, words the detail must contain)
EXPECTED: dict[str, tuple[str, str | None, str]] = {
    "ok-1": ("patched", None, "patched"),
    "ok-2": ("patched", None, "patched"),
    "n-foreign": ("skipped", None, "skip"),
    "t-link-foreign": ("dry-run-failed", "unsafe-path", "is a symlink"),
    "t-link-system": ("dry-run-failed", "unsafe-path", "is a symlink"),
    "t-link-relative": ("dry-run-failed", "unsafe-path", "is a symlink"),
    "t-parent-link": ("dry-run-failed", "unsafe-path", "wp-admin/includes is a symlink"),
    "t-hardlink": ("dry-run-failed", "unsafe-path", "2 hard links"),
    "t-fifo": ("dry-run-failed", "unsafe-path", "FIFO"),
    "t-chardev": ("dry-run-failed", "unsafe-path", "character device"),
    "t-socket": ("dry-run-failed", "unsafe-path", "socket"),
    "t-folder": ("dry-run-failed", "unsafe-path", "folder"),
    "t-owner": ("dry-run-failed", "unsafe-path", "owned by uid 0"),
    "t-huge": ("dry-run-failed", "unsafe-path", "too large"),
    # NOTE: root could read a mode-000 file (CAP_DAC_OVERRIDE), but the file work runs as
    # the account (privilege drop), which cannot: refused, not an ``error``.
    "t-unreadable": ("dry-run-failed", "unsafe-path", "not readable by the account owner"),
    "t-maint-fresh": ("dry-run-failed", "unsafe-path", "CMS updater running"),
    "t-maint-stale": ("patched", None, "patched"),
    "t-oddnames": ("patched", None, "patched"),
    "t-deep": ("patched", None, "patched"),
}
PATCHED = sorted(a for a, v in EXPECTED.items() if v[0] == "patched")
ODD_NAMES = [b"new\nline.php", b"latin1-\xe9\xff.php", b"tab\tand\x1bescape", b"-rf", b" lead"]
DEEP = 300  # nested folders: the deepest path is longer than PATH_MAX (4096)


def _build(site: Site) -> None:
    for acct in EXPECTED:
        if acct == "t-deep":
            site.add(acct)  # no docroots: the scan walks the whole account
        else:
            site.add(acct, docroots=["html"], policy="skip" if acct == "n-foreign" else "auto")
    foreign = site.inst("n-foreign") / COMMENT_TEMPLATE
    pre = foreign.read_bytes()
    system_file = site.system / "etc-config.php"  # root-owned, outside every account
    system_file.write_bytes(pre)
    hard_target = site.system / "hardlink-target.php"
    hard_target.write_bytes(pre)

    def target(acct: str, rel: str = COMMENT_TEMPLATE) -> Path:
        path = site.inst(acct) / rel
        path.unlink()
        return path

    target("t-link-foreign").symlink_to(foreign)
    target("t-link-system").symlink_to(system_file)
    target("t-link-relative").symlink_to("../../../n-foreign/html/" + COMMENT_TEMPLATE)
    parent = site.inst("t-parent-link") / "wp-admin" / "includes"
    for child in parent.iterdir():
        child.unlink()
    parent.rmdir()
    parent.symlink_to(site.inst("n-foreign") / "wp-admin" / "includes")
    os.link(hard_target, target("t-hardlink"))
    os.mkfifo(target("t-fifo"))
    os.mknod(target("t-chardev"), 0o666 | 0o020000, os.makedev(1, 3))  # like /dev/null
    sock_path = target("t-socket")
    here = os.getcwd()
    os.chdir(sock_path.parent)  # NOTE: AF_UNIX names are limited to 108 bytes
    try:
        with socket.socket(socket.AF_UNIX) as sock:
            sock.bind(sock_path.name)
    finally:
        os.chdir(here)
    target("t-folder").mkdir()
    (site.inst("t-folder") / COMMENT_TEMPLATE / "x.php").write_bytes(b"<?php\n")
    with open(target("t-huge"), "wb") as fh:
        fh.write(pre)
        fh.truncate(20 * 1024 * 1024)  # sparse: 20 MB over the agent's 16 MB limit
    (site.inst("t-maint-fresh") / ".maintenance").write_bytes(b"<?php $upgrading = 1; ?>")
    stale = site.inst("t-maint-stale") / ".maintenance"
    stale.write_bytes(b"<?php $upgrading = 1; ?>")
    old = time.time() - 3600
    os.utime(stale, (old, old))
    for name in ODD_NAMES:
        for folder in (site.inst("t-oddnames"), site.inst("t-oddnames") / "wp-content"):
            with open(os.path.join(os.fsencode(folder), name), "wb") as fh:
                fh.write(b"<?php // odd name\n")
    os.mkdir(os.path.join(os.fsencode(site.inst("t-oddnames")), b"dir\n\xfe"))
    assert trees.make_deep(site.root("t-deep") / "deep", DEEP) > 4096
    site.finish()
    # After finish(): these must not belong to the account.
    os.chown(site.inst("t-owner") / COMMENT_TEMPLATE, 0, 0)
    (site.inst("t-unreadable") / COMMENT_TEMPLATE).chmod(0o000)


@pytest.fixture(scope="module", params=["local", "ssh"])
def rolled(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    """The world of one transport, rolled out once: site, states and results."""
    ssh_host = request.getfixturevalue("sshd_hosts")[0] if request.param == "ssh" else None
    site = Site(tmp_path_factory.mktemp(f"tree-{request.param}"), request.param, ssh_host)
    _build(site)
    before = site.state()
    started = time.monotonic()
    res = site.rollout()
    took = time.monotonic() - started
    assert res.code == 1, res.err  # dry runs failed, exit 1
    try:
        yield {
            "site": site,
            "before": before,
            "after": site.state(),
            "results": trees.by_account(res.json["results"]),
            "took": took,
        }
    finally:
        site.remove()


def _expected_changes(site: Site) -> set[bytes]:
    return {k for acct in PATCHED for k in trees.security_keys(acct)}


@pytest.mark.parametrize("acct", sorted(EXPECTED))
def test_attack_outcome_and_nothing_else_changed(rolled: dict[str, Any], acct: str) -> None:
    site: Site = rolled["site"]
    outcome, reason, words = EXPECTED[acct]
    r = rolled["results"][acct]
    assert (r["outcome"], r["reason"]) == (outcome, reason), r
    assert words in r["detail"], r["detail"]
    assert r["path"] == "html"
    before, after = rolled["before"], rolled["after"]
    mine = {k for k in trees.changed(before, after) if k.startswith(f"srv/{acct}/".encode())}
    if outcome == "patched":
        assert mine == trees.security_keys(acct)
        assert kit.wp_state(site.inst(acct)) == "post"
        for key in mine:  # content changed; type, mode, owner and link count kept
            assert before[key].split()[3:] == after[key].split()[3:], key
    else:
        assert mine == set(), mine


def test_nothing_outside_the_patched_files_changed(rolled: dict[str, Any]) -> None:
    """The foreign account, the files outside every account and every attack stay as they
    were; exactly the security files of the patched installations changed."""
    site: Site = rolled["site"]
    assert trees.changed(rolled["before"], rolled["after"]) == _expected_changes(site)
    pre = kit.release_file("6.4.2", COMMENT_TEMPLATE)
    for path in (
        site.system / "etc-config.php",
        site.system / "hardlink-target.php",
        site.inst("n-foreign") / COMMENT_TEMPLATE,
    ):
        assert path.read_bytes() == pre
    foreign_list = site.inst("n-foreign") / LIST_TABLE
    assert foreign_list.read_bytes() == kit.release_file("6.4.2", LIST_TABLE)
    assert len(rolled["results"]) == len(EXPECTED)


def test_no_hang_and_backups_only_of_patched(rolled: dict[str, Any]) -> None:
    """The run finished well within its timeout (a FIFO, a device, a deep tree did not stall
    it), and the backup store holds only originals of the patched installations."""
    site: Site = rolled["site"]
    assert rolled["took"] < trees.ROLLOUT_TIMEOUT / 2
    origs = sorted(p for p in site.backups.rglob("*.orig"))
    assert len(origs) == 2 * len(PATCHED)
    pre = {kit.sha(kit.release_file("6.4.2", rel)) for rel in kit.WP_FILES}
    assert {kit.sha(p.read_bytes()) for p in origs} == pre
    for p in origs:
        assert p.stat().st_mode & 0o077 == 0 and p.stat().st_uid == 0


def test_unreadable_file_is_left_as_it_was(rolled: dict[str, Any]) -> None:
    site: Site = rolled["site"]
    st = (site.inst("t-unreadable") / COMMENT_TEMPLATE).stat()
    assert st.st_mode & 0o777 == 0 and st.st_uid == site.uids["t-unreadable"]
    assert kit.wp_state(site.inst("t-unreadable")) == "pre"


def test_odd_names_are_reported_escaped(rolled: dict[str, Any]) -> None:
    """Names with newlines and non-UTF-8 bytes survive the scan and the run untouched."""
    site: Site = rolled["site"]
    for name in ODD_NAMES:
        path = os.path.join(os.fsencode(site.inst("t-oddnames")), name)
        with open(path, "rb") as fh:
            assert fh.read() == b"<?php // odd name\n"
    assert "\n" not in rolled["results"]["t-oddnames"]["detail"]
