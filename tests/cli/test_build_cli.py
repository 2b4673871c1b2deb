"""``patchd build`` through the CLI: input errors, hostile archives, review via stdin."""

from __future__ import annotations

import io
import json
import os
import tarfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from patchd.bundle.manifest import load_bundle
from patchd.bundle.rules import load_rules
from patchd.cli.main import cli
from patchd.engine.parse import parse_diff
from patchd_fixtures.families import FAMILIES
from patchd_fixtures.releases import write_release_archive, write_release_tree

WP = FAMILIES["wordpress"]


def _run_show(bundle: Path) -> str:
    result = CliRunner().invoke(cli, ["show", str(bundle)])
    assert result.exit_code == 0, result.output
    return result.output


def _run(args: list[str], stdin: str | None = None):
    return CliRunner().invoke(cli, ["build", *map(str, args)], input=stdin)


@pytest.fixture(scope="module")
def wp(tmp_path_factory) -> dict[str, Path]:
    """WordPress fixture archives by version."""
    tmp = tmp_path_factory.mktemp("wp")
    return {v: write_release_archive("wordpress", v, tmp) for v in WP.versions}


def _tar(path: Path, members: list[tarfile.TarInfo], data: bytes = b"x\n") -> Path:
    with tarfile.open(path, "w:gz") as tf:
        for info in members:
            if info.isreg():
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
            else:
                tf.addfile(info)
    return path


def _member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    info.mode = 0o644
    return info


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@pytest.mark.parametrize(
    ("member", "words"),
    [
        (_member("wordpress/../x"), ".."),
        (_member("wordpress/link", tarfile.SYMTYPE, "../../../etc/passwd"), "leaves the release"),
    ],
    ids=["dotdot", "symlink-out"],
)
def test_hostile_archive_is_refused_and_nothing_written_outside_work(
    tmp_path: Path, wp, member: tarfile.TarInfo, words: str
) -> None:
    hostile = _tar(
        tmp_path / "hostile.tar.gz",
        [_member("wordpress/index.php"), member, _member("wordpress/link/y")],
    )
    before = _tree(tmp_path)
    work = tmp_path / "work"
    result = _run([hostile, wp["6.4.3"], "--workdir", work, "--out", tmp_path / "out"])
    assert result.exit_code == 2, result.output
    assert "hostile.tar.gz" in result.output and "member" in result.output
    assert words in result.output
    assert _tree(tmp_path) - before <= {"work"}, "only the (now empty) work folder appears"
    assert not any(work.iterdir())
    assert not (tmp_path.parent / "x").exists()


def test_input_that_is_no_cms_release_is_refused(tmp_path: Path, wp) -> None:
    plain = tmp_path / "plain"
    (plain / "src").mkdir(parents=True)
    (plain / "src" / "main.c").write_text("int main(void) { return 0; }\n")
    result = _run([plain, wp["6.4.3"], "--out", tmp_path / "out"])
    assert result.exit_code == 2
    assert "OLD is no CMS release" in result.output and "plain" in result.output
    assert not (tmp_path / "out").exists()


def test_missing_input_is_refused(tmp_path: Path, wp) -> None:
    result = _run([tmp_path / "nope.tar.gz", wp["6.4.3"], "--out", tmp_path / "out"])
    assert result.exit_code == 2
    assert "nope.tar.gz" in result.output and "no such archive or folder" in result.output


def test_undecided_hunks_stop_the_build_and_are_listed(tmp_path: Path, wp) -> None:
    """Nothing undecided ships or vanishes silently (issue 12): exit 1, every hunk listed
    with its first changed lines and the classifiers' suggestions; nothing written."""
    result = _run([wp["6.4.2"], wp["6.4.3"], "--out", tmp_path / "out"])
    assert result.exit_code == 1, result.output
    assert "6 hunk(s) undecided: a build never drops or ships a hunk nobody decided" in (
        result.output
    )
    assert "--undecided keep|drop" in result.output
    for hunk in (
        "wp-admin/css/common.css@19",
        "wp-includes/comment-template.php@61",
        "wp-includes/comment-template.php@102",
        "wp-includes/js/comment-reply.js@14",
    ):
        assert f"  {hunk}" in result.output, hunk  # fmt: skip
    assert "+ \t\techo esc_html( $author );" not in result.output  # raw, not escaped
    assert "echo esc_html( $author );" in result.output
    assert "suggestion: heuristics: heuristic score" in result.output
    assert not (tmp_path / "out").exists()


def test_undecided_keep_ships_them_and_the_manifest_says_so(tmp_path: Path, wp) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text('rules:\n  - include: {line: "esc_html\\\\("}\n    comment: fix\n')
    out = tmp_path / "out"
    result = _run([wp["6.4.2"], wp["6.4.3"], "--rules", rules, "--undecided", "keep",
                   "--id", "wp-k", "--out", out])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "3 undecided hunk(s) kept by --undecided keep (recorded in the manifest)" in (
        result.output
    )
    manifest = load_bundle(out / "wp-k").manifest
    assert manifest.undecided == "keep" and len(manifest.undecided_hunks) == 3
    report = json.loads((out / "wp-k" / "build-report.json").read_text())
    forced = [h for h in report["hunks"] if h["classifier"] == "undecided-option"]
    assert {h["id"] for h in forced} == set(manifest.undecided_hunks)
    assert all(h["decision"] == "kept" for h in forced)
    shown = _run_show(out / "wp-k")
    assert "undecided hunks keep by --undecided keep" in shown


def test_empty_patch_fails_clearly(tmp_path: Path, wp) -> None:
    result = _run([wp["6.4.2"], wp["6.4.3"], "--undecided", "drop", "--out", tmp_path / "out"])
    assert result.exit_code == 2
    assert "the patch would be empty" in result.output
    assert "(6 dropped by --undecided drop)" in result.output
    assert not (tmp_path / "out").exists()


def test_review_needs_rules_and_existing_bundle_is_not_overwritten(tmp_path: Path, wp) -> None:
    result = _run([wp["6.4.2"], wp["6.4.3"], "--review"])
    assert result.exit_code == 2 and "--rules" in result.output
    out = tmp_path / "out"
    (out / "wp-x").mkdir(parents=True)
    rules = tmp_path / "rules.yaml"
    rules.write_text('rules:\n  - include: {line: "esc_html\\\\("}\n    comment: fix\n')
    result = _run([wp["6.4.2"], wp["6.4.3"], "--rules", rules, "--undecided", "drop",
                   "--id", "wp-x", "--out", out])  # fmt: skip
    assert result.exit_code == 2 and "exists already" in result.output
    assert not any((out / "wp-x").iterdir())


def test_bad_option_values_are_input_errors(tmp_path: Path, wp) -> None:
    base = [wp["6.4.2"], wp["6.4.3"], "--out", tmp_path / "out"]
    for extra, words in (
        (["--affected", "6.4.x-"], "--affected"),
        (["--git", tmp_path], "--range"),
        (["--security-pattern", "("], "--security-pattern"),
        (["--rules", tmp_path / "missing.yaml"], "missing.yaml"),
        (["--cms", "typo3", "--auto"], "--cms typo3"),
    ):
        result = _run([*base, *extra])
        assert result.exit_code == 2, (extra, result.output)
        assert words in result.output, (extra, result.output)


def test_review_through_piped_stdin_records_rules_that_rebuild_the_same(tmp_path: Path, wp):
    rules = tmp_path / "rules.yaml"
    out = tmp_path / "out"
    # Undecided hunks in diff order: common.css, list-table@51 (author), list-table@83
    # (mixed: title + pending count), comment-template@61 (author), @102 (pagination), js.
    answers = "n\ny\ns\ny\nn\ny\nn\nq\n"
    result = _run(
        [
            wp["6.4.2"],
            wp["6.4.3"],
            "--rules",
            rules,
            "--review",
            "--undecided",
            "drop",
            "--id",
            "wp-r",
            "--out",
            out,
        ],
        stdin=answers,
    )
    assert result.exit_code == 0, result.output
    assert "Keep this hunk [y,n,s,q,?]?" in result.output
    assert "review stopped" in result.output
    # NOTE: the review stops early ("q"); what it left undecided is dropped by the explicit
    # --undecided drop (without it the build stops and lists them).
    assert load_bundle(out / "wp-r").manifest.undecided == "drop"
    patch = (out / "wp-r" / "patch.diff").read_bytes()
    added = [
        [ln.data.decode().strip() for ln in h.lines if ln.kind == "+"]
        for fp in parse_diff(patch)
        for h in fp.hunks
    ]
    assert len(added) == len(WP.security_hunks)
    for sh in WP.security_hunks:
        assert sum(sh.added_line in a for a in added) == 1
    recorded = load_rules(rules)
    assert [r.rule.action for r in recorded] == [
        "exclude",
        "include",
        "include",
        "include",
        "exclude",
    ]
    assert recorded[2].rule.matcher.line is not None  # the split is a hunk + line rule
    # the recorded rules alone reproduce the reviewed patch
    again = _run(
        [wp["6.4.2"], wp["6.4.3"], "--rules", rules, "--undecided", "drop", "--id", "wp-r2",
         "--out", out]
    )  # fmt: skip
    assert again.exit_code == 0, again.output
    assert (out / "wp-r2" / "patch.diff").read_bytes() == patch
    report = load_bundle(out / "wp-r2")
    assert report.manifest.affected == "6.4.0-6.4.2"  # the branch up to OLD (issue 13)


def test_validation_failure_writes_nothing(tmp_path: Path) -> None:
    old = write_release_tree("wordpress", "6.4.2", tmp_path / "old")
    new = write_release_tree("wordpress", "6.4.3", tmp_path / "new")
    target = new / "wp-includes" / "comment-template.php"
    text = target.read_text().replace("echo esc_html( $author );", "echo esc_html( $author ;")
    target.write_text(text)
    rules = tmp_path / "rules.yaml"
    rules.write_text('rules:\n  - include: {line: "esc_html\\\\("}\n    comment: fix\n')
    out = tmp_path / "out"
    result = _run([old, new, "--rules", rules, "--undecided", "drop", "--out", out])
    assert result.exit_code == 2
    assert "failed validation" in result.output
    assert "php-lint" in result.output and "wp-includes/comment-template.php" in result.output
    assert not out.exists() or not os.listdir(out)
