"""``patchd build --sibling``: an unmarked vendor's fix found by what its branches share.

The fixture (``patchd_fixtures.siblings``) is a WordPress-shaped security day: the main
pair 6.4.2 -> 6.4.3 and three sibling branches released the same day. The tests assert
the exact kept hunks (recall and precision 1.0), every dropped reason, the split, the
report and ``patchd show`` evidence, and the usage errors.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from patchd.bundle.classifiers.noise import BUNDLED_EXTENSION
from patchd.cli.main import cli
from patchd.engine.parse import parse_diff
from patchd.release.tree import diff_trees
from patchd_fixtures.releases import write_release_tree
from patchd_fixtures.siblings import (
    ESCAPE_NEW,
    HELPER_NEW,
    MAIN,
    MAIN_HUNKS,
    SIBLINGS,
    SPLIT_OTHER_NEW,
    sibling_tree,
    write_family,
)
from patchd_fixtures.siblings import write_sibling_release as write_release

LABELS = "6.3.3, 6.2.4, 6.1.5"
DROP_REASONS = {
    "about": "release notes or about page",
    "akismet-version": BUNDLED_EXTENSION,
    "akismet-escape": BUNDLED_EXTENSION,
    "refactor": f"found in none of the sibling releases {LABELS}",
    "one-sibling": "found in only 1 of 3 sibling releases (6.3.3), fewer than --min-siblings 2",
    "version": "version constant bump ($wp_version 6.4.2 → 6.4.3)",
}
KEEP_REASON = f"same change in 3 of 3 sibling releases ({LABELS})"


@pytest.fixture(scope="module")
def family(tmp_path_factory) -> dict[str, Path]:
    """Every release of the fixture family as a .tar.gz archive."""
    return write_family(tmp_path_factory.mktemp("sibling-family"))


@pytest.fixture(scope="module")
def ids(tmp_path_factory) -> dict[str, str]:
    """MainHunk name -> hunk id in the 6.4.2 -> 6.4.3 release diff."""
    tmp = tmp_path_factory.mktemp("sibling-ids")
    old, new = (write_release(v, tmp, archive=False) for v in MAIN)
    diff = diff_trees(old, new)
    out: dict[str, str] = {}
    for mh in MAIN_HUNKS:
        [hid] = [
            rh.id
            for rh in diff.hunks
            if rh.path == mh.path
            and any(ln.kind != " " and ln.data.decode().strip() == mh.line for ln in rh.hunk.lines)
        ]
        out[mh.name] = hid
    assert len(diff.hunks) == len(MAIN_HUNKS) == len(set(out.values()))
    return out


def test_fixture_branches_differ_around_the_fix(tmp_path) -> None:
    """The fixture's promise: every security change sits at other offsets or in other
    context in the older branches, 6.1 restructured the code around the escaping, and its
    diff aligns the helper's repeated "}" the other way."""
    diffs = {}
    for old, new in (MAIN, *SIBLINGS):
        a, b = (write_release(v, tmp_path, archive=False) for v in (old, new))
        diffs[new] = diff_trees(a, b)

    def hunk(version: str, line: str):
        [rh] = [
            rh
            for rh in diffs[version].hunks
            if any(ln.kind == "+" and ln.data.decode().strip() == line for ln in rh.hunk.lines)
        ]
        return rh.hunk

    for mh in (m for m in MAIN_HUNKS if m.security):
        main = hunk(MAIN[1], mh.line)
        for _, version in SIBLINGS:
            other = hunk(version, mh.line)
            assert other.old_start != main.old_start, (mh.name, version)
        contexts = {
            tuple(ln.data for ln in hunk(v, mh.line).lines if ln.kind == " ")
            for v in (MAIN[1], *(n for _, n in SIBLINGS))
        }
        assert len(contexts) > 1, mh.name
    escape_61 = [ln.data for ln in hunk("6.1.5", ESCAPE_NEW).lines if ln.kind == "+"]
    assert escape_61 == [b"\t\techo esc_html( $author );\n"]

    def added(version: str) -> list[bytes]:
        return [ln.data for ln in hunk(version, HELPER_NEW).lines if ln.kind == "+"]

    assert added("6.1.5") != added(MAIN[1])
    assert sorted(added("6.1.5")) == sorted(added(MAIN[1]))


def _sibling_args(family: dict[str, Path]) -> list[str]:
    args: list[str] = []
    for old, new in SIBLINGS:
        args += ["--sibling", str(family[old]), str(family[new])]
    return args


def _build(tmp: Path, family: dict[str, Path], *extra: str, bundle_id: str = "wp-sib"):
    args = ["build", str(family[MAIN[0]]), str(family[MAIN[1]]), *extra,
            "--id", bundle_id, "--created-at", "2026-01-01T00:00:00+00:00",
            "--workdir", str(tmp / "work"), "--out", str(tmp / "out")]  # fmt: skip
    result = CliRunner().invoke(cli, args)
    return result, tmp / "out" / bundle_id


@pytest.fixture(scope="module")
def built(tmp_path_factory, family):
    """The build with the three siblings and the default (majority) rule."""
    tmp = tmp_path_factory.mktemp("sibling-build")
    result, bundle = _build(tmp, family, *_sibling_args(family))
    assert result.exit_code == 0, result.output
    report = json.loads((bundle / "build-report.json").read_text())
    return result.output, bundle, report


def _by_id(report: dict) -> dict[str, dict]:
    return {h["id"]: h for h in report["hunks"]}


def test_kept_hunks_are_exactly_the_security_hunks(built, ids) -> None:
    _, _, report = built
    kept = {h["id"] for h in report["hunks"] if h["decision"] == "kept"}
    security = {ids[mh.name] for mh in MAIN_HUNKS if mh.security}
    assert kept == security  # recall 1.0 and precision 1.0
    assert sorted(kept) == [
        "wp-admin/includes/ajax-actions.php@44-462368267b",
        "wp-admin/includes/file.php@43-7b7d145641",
        "wp-admin/includes/file.php@79-385c3c290b",
        "wp-includes/comment-template.php@42-b808c17585",
    ]
    hunks = _by_id(report)
    for name in ("nonce", "path-check", "helper"):
        h = hunks[ids[name]]
        assert (h["classifier"], h["reason"], h["split"]) == ("siblings", KEEP_REASON, False)
        assert h["siblings"] == ["6.3.3", "6.2.4", "6.1.5"]
    assert report["summary"] == {"hunks": 10, "kept": 4, "dropped": 6, "undecided": 0, "split": 1}


def test_every_dropped_hunk_has_its_reason(built, ids) -> None:
    _, _, report = built
    hunks = _by_id(report)
    for name, reason in DROP_REASONS.items():
        h = hunks[ids[name]]
        assert (h["decision"], h["verdict"], h["reason"]) == ("dropped", "drop", reason), name
    # noise decides before the siblings are asked: no sibling evidence on those hunks
    for name in ("about", "akismet-version", "akismet-escape", "version"):
        assert "siblings" not in hunks[ids[name]], name
    assert hunks[ids["refactor"]]["siblings"] == []
    assert hunks[ids["one-sibling"]]["siblings"] == ["6.3.3"]


def test_mixed_hunk_is_split_to_the_shared_escaping(built, ids) -> None:
    _, bundle, report = built
    h = _by_id(report)[ids["escape"]]
    assert h["decision"] == "kept" and h["split"] is True
    assert h["reason"] == (
        f"split: keeps 1 of 2 changes: {KEEP_REASON}; the other 1 found in none of the "
        f"sibling releases {LABELS}"
    )
    patches = {fp.path: fp for fp in parse_diff((bundle / "patch.diff").read_bytes())}
    [hunk] = patches["wp-includes/comment-template.php"].hunks
    changed = [ln.data.decode().rstrip("\n") for ln in hunk.lines if ln.kind != " "]
    assert changed == ["\techo $author;", "\techo esc_html( $author );"]
    assert SPLIT_OTHER_NEW.encode() not in (bundle / "patch.diff").read_bytes()


def test_patch_applies_to_old_and_validates(built, tmp_path) -> None:
    _, bundle, report = built
    assert report["validation"] and all(c["ok"] for c in report["validation"])
    old = write_release(MAIN[0], tmp_path, archive=False)
    proc = subprocess.run(
        ["patch", "-p1", "-F0", "-i", str(bundle / "patch.diff")],
        cwd=old,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0 and "offset" not in proc.stdout, proc.stdout
    new = sibling_tree(MAIN[1])
    for path in ("wp-admin/includes/ajax-actions.php", "wp-admin/includes/file.php"):
        assert (old / path).read_bytes() == new[path]


def test_report_and_build_name_the_siblings_and_the_rule(built) -> None:
    output, _, report = built
    assert report["chain"] == ["noise", "siblings", "heuristics"]
    assert report["siblings"]["min_siblings"] == 2
    assert [
        (r["label"], r["old"]["version"], r["new"]["version"], r["new"]["source"])
        for r in report["siblings"]["releases"]
    ] == [
        ("6.3.3", "6.3.2", "6.3.3", "wordpress-6.3.3.tar.gz"),
        ("6.2.4", "6.2.3", "6.2.4", "wordpress-6.2.4.tar.gz"),
        ("6.1.5", "6.1.4", "6.1.5", "wordpress-6.1.5.tar.gz"),
    ]
    summary = (
        "siblings: 6.3.2 → 6.3.3, 6.2.3 → 6.2.4, 6.1.4 → 6.1.5; a change counts as "
        "security when found in >= 2 of 3"
    )
    assert summary in output


def test_show_prints_the_sibling_evidence(built, ids) -> None:
    _, bundle, report = built
    shown = CliRunner().invoke(cli, ["show", str(bundle)])
    assert shown.exit_code == 0, shown.output
    text = shown.output
    assert "  siblings: 6.3.2 → 6.3.3, 6.2.3 → 6.2.4, 6.1.4 → 6.1.5;" in text
    nonce = text.split(f"KEPT {ids['nonce']}\n")[1].split("@@")[0]
    assert f"  siblings: {KEEP_REASON}" in nonce
    assert "  found in siblings: 6.3.3, 6.2.4, 6.1.5 (3 of 3)" in nonce
    refactor = text.split(f"DROPPED {ids['refactor']}\n")[1].split("@@")[0]
    assert "  found in siblings: none (0 of 3)" in refactor
    about = text.split(f"DROPPED {ids['about']}\n")[1].split("@@")[0]
    assert "found in siblings" not in about
    as_json = json.loads(CliRunner().invoke(cli, ["show", str(bundle), "--json"]).output)
    assert as_json["siblings"] == report["siblings"]
    assert {h["id"]: h.get("siblings") for h in as_json["hunks"]} == {
        h["id"]: h.get("siblings") for h in report["hunks"]
    }


def test_min_siblings_1_keeps_a_change_one_sibling_shares(tmp_path, family, ids) -> None:
    # the siblings as folders this time (archives and folders mix freely)
    folders = {v: write_release(v, tmp_path / "rel", archive=False) for p in SIBLINGS for v in p}
    args = [a for old, new in SIBLINGS for a in ("--sibling", str(folders[old]), str(folders[new]))]
    result, bundle = _build(tmp_path, family, *args, "--min-siblings", "1")
    assert result.exit_code == 0, result.output
    report = json.loads((bundle / "build-report.json").read_text())
    kept = {h["id"] for h in report["hunks"] if h["decision"] == "kept"}
    security = {ids[mh.name] for mh in MAIN_HUNKS if mh.security}
    assert kept == security | {ids["one-sibling"]}
    h = _by_id(report)[ids["one-sibling"]]
    assert h["reason"] == "same change in 1 of 3 sibling releases (6.3.3)"
    assert _by_id(report)[ids["refactor"]]["decision"] == "dropped"
    assert report["siblings"]["min_siblings"] == 1
    assert "found in >= 1 of 3" in result.output


def test_without_siblings_the_unmarked_release_stays_undecided(tmp_path, family) -> None:
    result, bundle = _build(tmp_path, family, "--no-lint")
    assert result.exit_code == 1
    assert "6 hunk(s) undecided" in result.output
    assert not bundle.exists()


def test_sibling_of_another_cms_is_refused(tmp_path, family) -> None:
    rc_old = write_release_tree("roundcube", "1.6.5", tmp_path / "roundcubemail-1.6.5")
    rc_new = write_release_tree("roundcube", "1.6.6", tmp_path / "roundcubemail-1.6.6")
    args = [*_sibling_args(family)[:3], "--sibling", str(rc_old), str(rc_new)]
    result, bundle = _build(tmp_path, family, *args)
    assert result.exit_code == 2
    assert (
        f"patchd: error: --sibling {rc_old} {rc_new}: roundcubemail-1.6.5 is roundcube 1.6.5, "
        "but OLD is wordpress 6.4.2: sibling releases must be of the same CMS"
    ) in result.output
    assert not bundle.exists()


def test_sibling_pair_in_the_wrong_order_is_refused(tmp_path, family) -> None:
    old, new = family["6.3.3"], family["6.3.2"]
    result, bundle = _build(tmp_path, family, "--sibling", str(old), str(new))
    assert result.exit_code == 2
    assert (
        f"patchd: error: --sibling {old} {new}: OLD2 (6.3.3) must be older than NEW2 (6.3.2)"
    ) in result.output
    assert not bundle.exists()


def test_main_pair_and_duplicates_are_refused(tmp_path, family) -> None:
    main = [str(family[v]) for v in MAIN]
    result, _ = _build(tmp_path, family, "--sibling", *main)
    assert result.exit_code == 2
    assert (
        f"--sibling {main[0]} {main[1]}: NEW2 is NEW's version 6.4.3; a sibling is the release "
        "of another branch on the same day"
    ) in result.output
    pair = [str(family[v]) for v in SIBLINGS[0]]
    result, _ = _build(tmp_path, family, "--sibling", *pair, "--sibling", *pair)
    assert result.exit_code == 2
    assert "is also NEW2 of --sibling" in result.output and "give each sibling pair once" in (
        result.output
    )


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            ["--min-siblings", "4"],
            "--min-siblings 4 is more than the 3 sibling pair(s) given with --sibling OLD2 NEW2",
        ),
        (["--min-siblings", "0"], "--min-siblings must be 1 or more, not 0"),
    ],
)
def test_min_siblings_out_of_range_is_refused_before_extraction(
    tmp_path, family, extra, message
) -> None:
    result, _ = _build(tmp_path, family, *_sibling_args(family), *extra)
    assert result.exit_code == 2 and f"patchd: error: {message}" in result.output
    assert not (tmp_path / "work").exists() or not any((tmp_path / "work").iterdir())


def test_min_siblings_without_siblings_is_refused(tmp_path, family) -> None:
    result, _ = _build(tmp_path, family, "--min-siblings", "1")
    assert result.exit_code == 2
    assert (
        "patchd: error: --min-siblings needs sibling releases: give --sibling OLD2 NEW2"
    ) in result.output


def test_sibling_that_is_no_release_is_refused(tmp_path, family) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "index.html").write_text("<p>hello</p>\n")
    result, bundle = _build(tmp_path, family, "--sibling", str(plain), str(family["6.3.3"]))
    assert result.exit_code == 2
    assert "--sibling OLD2 is no CMS release patchd knows" in result.output
    assert "plain" in result.output and not bundle.exists()


def test_report_round_trips_with_sibling_evidence(built) -> None:
    from patchd.bundle.report import BuildReport, load_report

    _, bundle, report = built
    loaded = load_report(bundle / "build-report.json")
    assert loaded.siblings is not None and loaded.siblings.min_siblings == 2
    assert BuildReport.from_json(loaded.to_json()) == loaded
    assert json.loads(loaded.dumps()) == report


def test_auto_changes_nothing_once_the_siblings_decided(tmp_path, family, ids) -> None:
    result, bundle = _build(tmp_path, family, *_sibling_args(family), "--auto", "--no-lint")
    assert result.exit_code == 0, result.output
    report = json.loads((bundle / "build-report.json").read_text())
    kept = {h["id"] for h in report["hunks"] if h["decision"] == "kept"}
    assert kept == {ids[mh.name] for mh in MAIN_HUNKS if mh.security}
