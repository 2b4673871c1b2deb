"""Issue 13: a vulnerable installation is never reported ``not-affected``.

A bundle whose affected set (6.4.0-6.4.2) is wider than its variants (patch.diff for
6.4.1-6.4.2) is rolled out, locally and over a real sshd, on installations of a version
without a variant (``no-variant``), of a newer version (``not-affected``) and with an
unreadable version file (every variant is tried: the one that fits is used, else
``version-unknown``). The tests compare outcomes, the customer-facing words and every byte.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from patchd.bundle.manifest import write_bundle
from patchd.ledger.db import open_ledger
from patchd.notify.explain import explain
from patchd.report.lists import FAILURE_OUTCOMES
from tests.e2e import kit
from tests.support.sshd import SSHDFactory

COMMENT_TEMPLATE = "wp-includes/comment-template.php"
VERSION_FILE = "wp-includes/version.php"

#: account -> (version installed, policy, what is done to the tree, expected outcome/reason)
CASES: dict[str, tuple[str, str, str, kit.Verdict]] = {
    "h-covered": ("6.4.2", "auto", "", ("patched", None)),
    "h-novariant": ("6.4.0", "auto", "", ("dry-run-failed", "no-variant")),
    "h-novariant-notify": ("6.4.0", "notify-only", "", ("skipped", None)),
    "h-newer": ("6.4.3", "auto", "", ("not-affected", None)),
    "h-unknown": ("6.4.1", "auto", "garble", ("patched", None)),
    "h-unknown-mod": ("6.4.2", "auto", "garble,modify", ("dry-run-failed", "version-unknown")),
    "h-unknown-done": ("6.4.2", "auto", "garble,post", ("already-patched", None)),
}


def _garble(inst: Path) -> None:
    """A version file the detector cannot read (a half-written update, say)."""
    (inst / VERSION_FILE).write_bytes(b"<?php\n// version.php: truncated during an upgrade\n")


def _world(base: Path, host_entry: dict, host: str = "web01") -> tuple[Path, Path]:
    srv = base / "srv"
    accounts = []
    for acct, (version, policy, how, _want) in CASES.items():
        inst = kit.install_wordpress(srv / acct, version)
        if "garble" in how:
            _garble(inst)
        if "modify" in how:
            path = inst / COMMENT_TEMPLATE
            old = b"\t$result  = get_permalink();\n"
            path.write_bytes(path.read_bytes().replace(old, b"\t$result = get_permalink( 0 );\n"))
        if "post" in how:
            for rel in kit.WP_FILES:
                (inst / rel).write_bytes(kit.post_image(rel))
        accounts.append(kit.account(acct, host, srv / acct, policy=policy, docroots=["html"]))
    inv = kit.write_inventory(base / "accounts.yaml", {host: host_entry}, accounts)
    bundle = base / "bundle"
    write_bundle(
        bundle,
        {
            "id": "wp-honest",
            "title": "Comment author XSS (fixture)",
            "cms": "wordpress",
            "affected": "6.4.0-6.4.2",
            "fixed_in": "6.4.3",
            "min_php": "7.4",
            "summary": {"de": "Schließt eine XSS-Lücke.", "en": "Closes an XSS hole."},
            "variants": [{"versions": "6.4.1-6.4.2", "file": "patch.diff"}],
        },
        {"patch.diff": kit.security_diff()},
    )
    (base / "backups").mkdir(mode=0o700)
    return inv, bundle


def _check(base: Path, res: kit.CliResult) -> None:
    assert res.code == 1, res.err
    results = {r["account"]: r for r in res.json["results"]}
    got = {a: (r["outcome"], r["reason"]) for a, r in results.items()}
    assert got == {a: case[3] for a, case in CASES.items()}

    novariant = results["h-novariant"]
    assert novariant["detail"] == (
        "no-variant: version 6.4.0 is affected and no variant covers it; update to 6.4.3 or newer"
    )
    assert "dry run: dry-run-failed (no-variant:" in results["h-novariant-notify"]["detail"]
    assert "not in affected 6.4.0-6.4.2" in results["h-newer"]["detail"]
    unknown = results["h-unknown"]["detail"]
    assert unknown.startswith("version unreadable; the only variant that fits is patch.diff")
    mod = results["h-unknown-mod"]["detail"]
    assert mod.startswith("version-unknown: version unknown: ")
    assert "no $wp_version assignment found" in mod
    assert "none of the 1 variants fits" in mod and mod.endswith("update to 6.4.3 or newer")
    # The failures are on support's failure list, in plain words naming the fixed version.
    assert "dry-run-failed" in FAILURE_OUTCOMES
    assert explain("dry-run-failed", "no-variant", novariant["detail"], "de") == (
        "Diese Version ist betroffen, aber es gibt keine Korrektur, die zu ihr passt; "
        "sie muss aktualisiert werden (Version 6.4.0; behoben in 6.4.3)."
    )
    assert explain("dry-run-failed", "version-unknown", mod, "en") == (
        "We could not read this installation's version, and none of our fixes fits its files "
        "unambiguously, so it must be updated (fixed in 6.4.3)."
    )

    srv = base / "srv"
    for acct, (version, _p, how, (outcome, _r)) in CASES.items():
        for rel in kit.WP_FILES:
            data = (srv / acct / "html" / rel).read_bytes()
            if outcome == "patched" or "post" in how:
                assert data == kit.post_image(rel), (acct, rel)
            elif "modify" not in how or rel != COMMENT_TEMPLATE:
                assert data == kit.release_file(version, rel), (acct, rel)
    with open_ledger(base / "ledger.db") as ledger:
        row = ledger.query_one("SELECT variant FROM results WHERE account = 'h-unknown'")
    assert row == {"variant": "patch.diff"}


def _rollout(base: Path, inv: Path, bundle: Path) -> kit.CliResult:
    return kit.patchd(
        base / "ledger.db", "rollout", str(bundle), "--accounts", str(inv),
        "--backup-dir", str(base / "backups"), "--yes", "--json",
    )  # fmt: skip


def test_honest_outcomes_local(tmp_path: Path) -> None:
    inv, bundle = _world(tmp_path, {"transport": "local"})
    _check(tmp_path, _rollout(tmp_path, inv, bundle))


def test_honest_outcomes_over_ssh(tmp_path: Path, sshd_factory: SSHDFactory) -> None:
    (host,) = sshd_factory(1)
    inv, bundle = _world(tmp_path, kit.ssh_host_entry(host), host="ssh1")
    data = yaml.safe_load(inv.read_text())
    assert data["hosts"]["ssh1"]["transport"] == "ssh"
    _check(tmp_path, _rollout(tmp_path, inv, bundle))
