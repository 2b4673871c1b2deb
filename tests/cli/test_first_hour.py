"""The smaller things a new user tripped over (issue 17, item 5)."""

from __future__ import annotations

import shutil
from pathlib import Path

from click.testing import CliRunner

from patchd.cli.main import cli
from patchd.cms.names import default_title, localised_summary, localised_title, proper_name
from patchd.notify.explain import explain
from patchd.report.headline import dry_run_counts, dry_run_headline, headline
from patchd.report.html import render_html

REPO = Path(__file__).resolve().parents[2]


def test_skipped_rows_say_why_they_were_not_written() -> None:
    dry = explain("skipped", None, "dry run: 2 file(s) apply cleanly")
    assert "notify only" not in dry and dry.startswith("Dry run only: nothing was written")
    notify = explain("skipped", "policy", "policy notify-only; dry run: would be patched")
    assert "set to notify only." in notify and "skip" not in notify.split("Detail")[0]
    skip = explain("skipped", "policy", "policy skip; dry run: already-patched", "de")
    assert "Auslassen" in skip and "Benachrichtigen" not in skip
    assert "notify only" not in explain("skipped", "gate", "")


def test_a_dry_runs_headline_counts_what_a_real_run_would_write() -> None:
    rows = [
        ("skipped", "dry run: 2 file(s) apply cleanly"),
        ("skipped", "policy notify-only; dry run: would be patched"),
        ("dry-run-failed", "modified: x.php hunk 1"),
        ("not-affected", "not wordpress"),
    ]
    counts = dry_run_counts(rows)
    assert counts == {"would_patch": 1, "would_fail": 1, "policy": 1}
    assert dry_run_headline(counts) == (
        "dry run, nothing written: 1 would be patched, 1 would fail, "
        "1 not written by account policy"
    )
    data = {"dry_run": True, "results": [{"outcome": o, "detail": d} for o, d in rows]}
    assert headline(data).startswith("dry run, nothing written: 1 would be patched")
    assert headline({"dry_run": False, "success_rate": 0.5}) == "success rate 50.0%"


def test_customer_texts_use_proper_names_and_the_readers_language() -> None:
    assert [proper_name(c) for c in ("wordpress", "typo3", "joomla", "drupal", "roundcube")] == [
        "WordPress", "TYPO3", "Joomla!", "Drupal", "Roundcube",
    ]  # fmt: skip
    assert default_title("wordpress", "6.4.3") == "WordPress 6.4.3 security fix"
    # an older build's lower-case default title, read by a German customer
    title = localised_title("wordpress 6.4.3 security fix", "wordpress", "6.4.3", "de")
    assert title == "Sicherheitskorrektur für WordPress 6.4.3"
    assert localised_title("My own title", "wordpress", "6.4.3", "de") == "My own title"
    summary = "Sicherheitskorrektur für typo3 (behoben in 12.4.11)."
    assert localised_summary(summary, "typo3", "12.4.11", "de") == (
        "Sicherheitskorrektur für TYPO3 (behoben in 12.4.11)."
    )


def test_html_report_never_cuts_words_and_a_dry_run_has_no_success_rate() -> None:
    data = {
        "run": 1, "bundle": "b", "dry_run": True, "status": "dry run", "summary": {},
        "success_rate": 0.0, "results": [], "per_host": [], "filters": {},
        "dry_run_counts": {"would_patch": 3, "would_fail": 1, "policy": 0},
    }  # fmt: skip
    html = render_html(data)
    assert "break-word; }" not in html and "break-all" not in html
    assert "word-break: normal" in html
    assert "dry run, nothing written: 3 would be patched, 1 would fail" in html
    assert 'id="success-rate"' not in html


def test_rollout_takes_a_bundle_id_from_patches(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PATCHD_LEDGER", raising=False)
    res = CliRunner().invoke(cli, ["rollout", "wp-2026-001", "--accounts", str(REPO / "README.md")])
    assert res.exit_code == 2
    assert "BUNDLE: 'wp-2026-001' is neither a bundle folder nor a bundle id in patches/" in (
        res.output
    )
    shutil.copytree(REPO / "patches" / "wp-2026-001", tmp_path / "patches" / "wp-2026-001")
    res = CliRunner().invoke(cli, ["rollout", "wp-2026-001", "--accounts", str(REPO / "README.md")])
    assert res.exit_code == 2 and "BUNDLE" not in res.output  # found; the inventory is bad
    assert "README.md" in res.output


def test_notify_send_needs_a_sender_preview_does_not(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("PATCHD_MAIL_FROM", raising=False)
    accounts = str(REPO / "accounts.example.yaml")
    res = CliRunner().invoke(
        cli, ["--ledger", str(tmp_path / "l.db"), "notify", "1", "--accounts", accounts, "--send"]
    )
    assert res.exit_code == 2
    assert "--send needs a sender: --from ADDRESS or $PATCHD_MAIL_FROM" in res.output
    res = CliRunner().invoke(
        cli,
        ["--ledger", str(tmp_path / "l.db"), "notify", "1", "--accounts", accounts, "--preview",
         str(tmp_path / "mails")],
    )  # fmt: skip
    assert "preview: sender Security team <security@hoster.example> (give --from or set " in (
        res.output
    )
    assert "PATCHD_MAIL_FROM" in res.output
    assert res.exit_code == 2 and "no ledger at" in res.output  # nothing else missing


def test_the_skipped_list_says_why_its_rows_were_skipped() -> None:
    from patchd.report.lists import grouped

    rows = [
        {"outcome": "skipped", "reason": None, "detail": "dry run: 2 file(s) apply cleanly"},
        {"outcome": "skipped", "reason": "policy", "detail": "policy skip; dry run: patched"},
    ]
    assert [t for t, _ in grouped(rows[:1], all_groups=False)] == ["skipped (dry run)"]
    assert [t for t, _ in grouped(rows[1:], all_groups=False)] == ["skipped (policy)"]
    assert [t for t, _ in grouped(rows, all_groups=False)] == ["skipped (dry run, policy)"]


def test_a_classic_typo3_site_has_the_scans_path_everywhere(tmp_path: Path) -> None:
    """Scan said ``html``, rollout/report/emails said ``typo3_src-12.4.9`` (issue 17)."""
    import email
    import email.policy
    import json

    from patchd_fixtures.fleet import generate_fleet

    fleet = generate_fleet(tmp_path / "fleet", 12, seed=3, families=("typo3",))
    accounts = str(fleet / "accounts.yaml")
    ledger = str(tmp_path / "l.db")
    bundle = str(REPO / "patches" / "typo3-2026-001")

    def run(*args: str):
        return CliRunner().invoke(cli, ["--ledger", ledger, *args])

    scan = json.loads(run("scan", "--accounts", accounts, "--json").stdout)
    paths = {(i["account"], i["path"]) for i in scan["installations"]}
    res = run("rollout", bundle, "--accounts", accounts, "--yes", "--json")
    assert res.exit_code in (0, 1), res.output
    results = json.loads(res.stdout)["results"]
    assert results and all((r["account"], r["path"]) in paths for r in results), results
    sourced = [r for r in results if "(TYPO3 source folder typo3_src-" in (r["detail"] or "")]
    assert sourced and any(r["outcome"] == "patched" for r in sourced)
    report = json.loads(run("report", "latest", "--json").stdout)["results"]
    assert {(r["account"], r["path"]) for r in report} <= paths
    mails = tmp_path / "mails"
    assert run("notify", "latest", "--accounts", accounts, "--preview", str(mails)).exit_code == 0
    text = ""
    for eml in mails.glob("*.eml"):
        message = email.message_from_bytes(eml.read_bytes(), policy=email.policy.default)
        text += message.get_body(("plain",)).get_content()
    assert text and "typo3_src" not in text, text
    assert any(f"{r['path']}" in text for r in sourced), text
    # the ledger still knows where the files are: rollback restores them
    site = sourced[0]
    back = run("rollback", "latest", "--accounts", accounts, "--account", site["account"], "--yes")
    assert back.exit_code == 0 and "restored" in back.stdout, back.output
