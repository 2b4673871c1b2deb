"""Faults during ``patchd rollout``: disk full, immutable file, read-only mount, SSH cut.

Disk full is real: each such account root is its own 512 KiB tmpfs (the CI runs as root),
filled until ``ENOSPC`` and then given back exactly zero or one page, so that no file, or
only the first of the two, can be written. Permission errors are an immutable file
(``chattr +i``) and a read-only bind mount of a folder. Expected: ``apply-failed`` with
every file byte-identical to its original, the journal ``restored``, the backups intact,
the ledger's touched files ``restored``, and the other installations patched.

The SSH connection is cut (the sshd processes serving it SIGKILLed, the agent left to
notice) while a ``--batch 1`` rollout runs; the host's remaining installations are
``unreachable``, every installation is fully patched or byte-identical, and running the
command again (recover, then the rest) patches everything exactly once.

Covered elsewhere: two rollouts of one bundle at once and SIGKILL of the controller at
random points and of the agent at every fault point, then resume
(``tests/rollout/test_kill_resume.py``); an injected I/O error after the first replace
(``tests/e2e/test_rollout_local.py::test_apply_failed_restores_everything``).
"""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from patchd.ledger import runs as ledger_runs
from patchd.ledger.db import open_ledger
from patchd.ledger.models import FileState
from patchd.patcher import journal as jr
from tests.adversarial import trees
from tests.adversarial.trees import COMMENT_TEMPLATE, Site
from tests.e2e import kit
from tests.support.sshd import SSHDFactory, kill_connections

PAGE = 4096


def _run(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True)


@contextlib.contextmanager
def _mounts() -> Iterator[list[Path]]:
    """Mount points to unmount (and immutable files to release) at the end."""
    mounted: list[Path] = []
    try:
        yield mounted
    finally:
        for path in reversed(mounted):
            if path.is_file():
                subprocess.run(["chattr", "-i", str(path)], check=False)
            else:
                subprocess.run(["umount", "-l", str(path)], check=False)


def _fill(root: Path, pages_left: int) -> None:
    """Fill the file system of ``root`` until ENOSPC, then free ``pages_left`` pages."""
    filler = root / "filler.bin"
    with open(filler, "wb", buffering=0) as fh:
        chunk = b"\1" * PAGE
        try:
            while True:
                fh.write(chunk)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    os.truncate(filler, max(0, filler.stat().st_size - pages_left * PAGE))


def _build_faulty(site: Site, mounted: list[Path]) -> dict[str, tuple[str, str]]:
    """Accounts with faults; returns account -> (outcome, words of the detail)."""
    expected: dict[str, tuple[str, str]] = {"ok": ("patched", "patched")}
    site.add("ok", docroots=["html"])
    for acct in ("full0", "full1"):
        root = site.root(acct)
        root.mkdir()
        _run("mount", "-t", "tmpfs", "-o", "size=512k,mode=0755", "tmpfs", str(root))
        mounted.append(root)
        site.add(acct, docroots=["html"])
        expected[acct] = ("apply-failed", "No space left on device")
    site.add("immutable", docroots=["html"])
    expected["immutable"] = ("apply-failed", "Operation not permitted")
    site.add("robind", docroots=["html"])
    expected["robind"] = ("apply-failed", "Read-only file system")
    site.finish()
    for acct, pages in (("full0", 0), ("full1", 1)):
        _fill(site.root(acct), pages)
        os.chown(site.root(acct) / "filler.bin", site.uids[acct], site.uids[acct])
    frozen = site.inst("immutable") / COMMENT_TEMPLATE
    _run("chattr", "+i", str(frozen))
    mounted.append(frozen)
    ro = site.inst("robind") / "wp-includes"
    _run("mount", "--bind", str(ro), str(ro))
    mounted.append(ro)
    _run("mount", "-o", "remount,bind,ro", str(ro))
    return expected


@pytest.mark.parametrize("transport", ["local", "ssh"])
def test_disk_full_and_permission_errors_restore_everything(
    transport: str, make_site: Callable[..., Site], request: pytest.FixtureRequest
) -> None:
    ssh_host = request.getfixturevalue("sshd_hosts")[2] if transport == "ssh" else None
    site = make_site(transport, ssh_host)
    with _mounts() as mounted:
        expected = _build_faulty(site, mounted)
        before = site.state()
        # NOTE: 4 of 5 applies fail on purpose; the fleet gate would stop the run.
        res = site.rollout("--batch", "1", "--max-failure-rate", "100")
        after = site.state()
    assert res.code == 1, res.err
    results = trees.by_account(res.json["results"])
    for acct, (outcome, words) in expected.items():
        r = results[acct]
        assert r["outcome"] == outcome, r
        assert words in r["detail"], r["detail"]
        if outcome == "apply-failed":
            assert "restored to its prior state" in r["detail"], r["detail"]
            assert "NOT restored" not in r["detail"], r["detail"]
    assert trees.changed(before, after) == trees.security_keys("ok")
    with open_ledger(site.ledger) as ledger:
        run = res.json["run"]
        rows = {r.account: r for r in ledger_runs.results(ledger, run)}
        touched = ledger_runs.touched_files(ledger, run)
    states = {(t.account, t.file): t.state for t in touched}
    for acct, (outcome, _words) in expected.items():
        want = FileState.VERIFIED if outcome == "patched" else FileState.RESTORED
        for rel in kit.WP_FILES:
            # NOTE: a file the apply never reached may be unrecorded; none may be other.
            assert states.get((acct, rel), want) == want, (acct, rel, states)
        journal = jr.load_journal(rows[acct].journal)
        assert journal.state == ("done" if outcome == "patched" else "restored")
        for jf in journal.files:  # backups intact: each hashes to the recorded pre-image
            assert jf.backup is not None
            data = jr.read_private(rows[acct].journal, jf.backup)
            assert kit.sha(data) == jf.pre


# -- SSH connection cut mid-apply --------------------------------------------------------

SLOW_RENAME = 0.4  # seconds added to every rename of the agent: an apply takes about 1 s


def _slow_python(folder: Path) -> Path:
    """An interpreter wrapper whose agent sleeps at every rename (apply is slowed, so the
    connection can be cut while an installation is being written)."""
    script = folder / "python-slow"
    script.write_text(
        f"#!{os.path.realpath(sys.executable)} -I\n"
        "import sys, time\n"
        "def hook(event, args):\n"
        "    if event == 'os.rename':\n"
        f"        time.sleep({SLOW_RENAME})\n"
        "sys.addaudithook(hook)\n"
        "code = sys.argv[sys.argv.index('-c') + 1]\n"
        "sys.argv = ['-c']\n"
        "exec(compile(code, '<bootstrap>', 'exec'), {'__name__': '__main__'})\n"
    )
    script.chmod(0o755)
    return script


def _journals_settled(backups: Path, timeout: float = 15) -> None:
    """Wait until the orphaned agent stopped writing: no journal still ``applying``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        states = [jr.load_journal(str(p.parent)).state for p in backups.rglob(jr.JOURNAL_NAME)]
        if "applying" not in states:
            return
        time.sleep(0.2)


@pytest.mark.slow
def test_ssh_cut_mid_apply_then_resume(
    make_site: Callable[..., Site], sshd_factory: SSHDFactory, tmp_path: Path
) -> None:
    (host,) = sshd_factory(1)  # NOTE: its own server: the cut must not hit other tests
    accounts = [f"c-{n}" for n in range(6)]
    site = make_site("ssh", host.but(python=str(_slow_python(tmp_path))))
    for acct in accounts:
        site.add(acct, docroots=["html"])
    site.finish()
    before = site.state()
    proc = subprocess.Popen(
        kit.patchd_argv(site.ledger, *site.rollout_args("--batch", "1")),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            if any(kit.wp_state(site.inst(a)) != "pre" for a in accounts):
                break  # the first installation is being (or was just) written
            time.sleep(0.05)
        assert kill_connections(host) > 0
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1, err
    first = trees.by_account(kit.CliResult(proc.returncode, out, err).json["results"])
    outcomes = {a: first[a]["outcome"] for a in accounts}
    assert "unreachable" in outcomes.values(), outcomes
    assert set(outcomes.values()) <= {"patched", "unreachable"}, outcomes
    assert outcomes[accounts[-1]] == "unreachable"
    _journals_settled(site.backups)
    for acct in accounts:
        state = kit.wp_state(site.inst(acct))
        assert state in ("pre", "post"), (acct, state)
        if outcomes[acct] == "patched":
            assert state == "post"

    # The same command again: a new run recovers what was cut off, then patches the rest.
    again = site.rollout("--batch", "1")
    assert again.code == 0, again.err
    second = trees.by_account(again.json["results"])
    for acct in accounts:
        want = (
            {"already-patched"} if outcomes[acct] == "patched" else {"patched", "already-patched"}
        )
        assert second[acct]["outcome"] in want, (acct, outcomes[acct], second[acct])
        assert kit.wp_state(site.inst(acct)) == "post"
    changed = trees.changed(before, site.state())
    assert changed == {k for a in accounts for k in trees.security_keys(a)}
    # Every journal is final, every backup still hashes to its pre-image.
    for jfile in site.backups.rglob(jr.JOURNAL_NAME):
        journal = jr.load_journal(str(jfile.parent))
        assert journal.state in jr.FINAL_STATES, (jfile, journal.state)
        for jf in journal.files:
            assert jf.backup is not None
            assert kit.sha(jr.read_private(str(jfile.parent), jf.backup)) == jf.pre
