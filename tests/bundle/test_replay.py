"""Git attribution by replay on a messy history (issue 12, items 1 and 6).

The fixture range (``patchd_fixtures.replay``) interleaves security and other commits on
the same lines, adds a method at the end of a class (the release diff aligns its braces
differently), adds a helper function in a separate hunk and a test file the release does
not ship. The minimal patch must give exactly OLD + the security commits.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from patchd.bundle.linemerge import merge_tagged
from patchd.cli.main import cli
from patchd.engine.apply import apply_file
from patchd.engine.parse import parse_diff
from patchd_fixtures.replay import (
    GUARD,
    SESSION_LIST,
    VERSION_FILE,
    ReplayRange,
    guard,
    secure_files,
    session_list,
    write_replay_range,
)


def _build(rr: ReplayRange, out: Path, *extra: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        cli,
        [
            "build",
            str(rr.old),
            str(rr.new),
            "--git",
            str(rr.repo),
            "--range",
            rr.range,
            "--id",
            "sessions",
            "--out",
            str(out),
            *extra,
        ],
    )
    return result.exit_code, result.output


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[ReplayRange, Path]:
    base = tmp_path_factory.mktemp("replay")
    rr = write_replay_range(base / "range")
    code, output = _build(rr, base / "patches")
    assert code == 0, output
    return rr, base / "patches" / "sessions"


def test_patched_old_is_exactly_old_plus_the_security_commits(
    built: tuple[ReplayRange, Path],
) -> None:
    rr, bundle = built
    patches = {fp.path: fp for fp in parse_diff((bundle / "patch.diff").read_bytes())}
    assert set(patches) == {GUARD, SESSION_LIST}  # recall and precision, per file
    for path, truth in secure_files().items():
        out = apply_file(patches[path], (rr.old / path).read_bytes(), fuzz=0)
        assert out.ok and out.content is not None
        assert out.content.decode() == truth, path  # ... and per line


def test_report_names_the_commits_of_every_hunk(built: tuple[ReplayRange, Path]) -> None:
    rr, bundle = built
    report = json.loads((bundle / "build-report.json").read_text())
    hunks = {(h["path"], h["decision"]): h for h in report["hunks"] if h["classifier"] == "git"}
    s1, s2 = rr.shas["S1"][:7], rr.shas["S2"][:7]
    by_path: dict[str, list[dict]] = {}
    for h in report["hunks"]:
        by_path.setdefault(h["path"], []).append(h)
    guard_hunks = by_path[GUARD]
    assert [h["decision"] for h in guard_hunks] == ["kept", "kept"]
    # the verify() hunk mixes N1, S1 and N2 lines; the class end S1's and N3's methods
    assert all(h["split"] for h in guard_hunks)
    assert all(h["commits"] == [s1] for h in guard_hunks)
    assert "Reject malformed session tokens" in guard_hunks[0]["reason"]
    assert "Use strict comparison" in guard_hunks[0]["reason"]
    assert "Align assignment" in guard_hunks[0]["reason"]
    assert "Add WP_Session_Guard::destroy_all()" in guard_hunks[1]["reason"]
    listing = by_path[SESSION_LIST]
    assert [(h["decision"], h["split"], h["commits"]) for h in listing] == [
        ("kept", False, [s2]),
        ("kept", False, [s2]),
    ]
    assert "(CVE-2026-41001)" in listing[0]["reason"]
    assert [h["decision"] for h in by_path[VERSION_FILE]] == ["dropped"]
    assert hunks  # the git classifier decided


def test_show_prints_the_commits(built: tuple[ReplayRange, Path]) -> None:
    rr, bundle = built
    result = CliRunner().invoke(cli, ["show", str(bundle)])
    assert result.exit_code == 0, result.output
    assert f"commits: {rr.shas['S1'][:7]}" in result.output


def test_a_later_commit_rewriting_a_security_line_stops_the_build(tmp_path: Path) -> None:
    rr = write_replay_range(tmp_path / "range", later=["R1"])
    code, output = _build(rr, tmp_path / "patches")
    assert code == 1
    assert "do not give what NEW ships" in output
    assert f"a line security commit {rr.shas['S1'][:7]}" in output
    assert f"commit {rr.shas['R1'][:7]}: Sessions: Simplify" in output
    assert "removed or rewrote it" in output
    assert not (tmp_path / "patches" / "sessions").exists()


def test_a_later_revert_stops_the_build(tmp_path: Path) -> None:
    rr = write_replay_range(tmp_path / "range", later=["R2"])
    code, output = _build(rr, tmp_path / "patches")
    assert code == 1
    assert f"commit {rr.shas['R2'][:7]}: Sessions: Revert the label change" in output
    assert not (tmp_path / "patches" / "sessions").exists()


def test_a_security_commit_that_does_not_replay_leaves_its_hunks_undecided(
    tmp_path: Path,
) -> None:
    # the vendor's OLD release prints the label differently than the repository's 6.4.2
    vendor = session_list(frozenset()).replace(
        "\techo '<td>' . $session['label'] . '</td>';",
        "\techo '<td>' . $session['label'] . '</td>'; // vendor build",
    )
    rr = write_replay_range(tmp_path / "range", vendor_old={SESSION_LIST: vendor})
    code, output = _build(rr, tmp_path / "patches")
    assert code == 1
    assert "undecided" in output
    assert f"security commit {rr.shas['S2'][:7]}" in output
    assert "does not replay on OLD's wp-includes/session-list.php: 3-way merge conflict" in output
    # the guard file's hunks are still decided by replay; kept with --undecided drop
    code, output = _build(rr, tmp_path / "patches", "--undecided", "drop")
    assert code == 0, output
    diff = (tmp_path / "patches" / "sessions" / "patch.diff").read_text()
    assert "is_valid_format" in diff and "esc_session_label" not in diff
    assert guard(frozenset({"S1"})) != guard(frozenset())


# -- the 3-way merge with provenance -------------------------------------------------------


def _lines(*xs: str) -> list[bytes]:
    return [f"{x}\n".encode() for x in xs]


def test_merge_applies_a_change_next_to_an_adjacent_change_of_ours() -> None:
    base = _lines("a", "b", "c", "d")
    ours = _lines("a", "B", "c", "d")  # ours changed line 2
    theirs = _lines("a", "b", "C", "d")  # the commit changes line 3 (adjacent)
    m = merge_tagged(base, ours, ["o1", "o2", "o3", "o4"], theirs, "sec")
    assert not m.conflicts
    assert m.lines == _lines("a", "B", "C", "d")
    assert m.tags == ["o1", "o2", "sec", "o4"]
    assert m.removed == ["o3"]


def test_merge_conflicts_where_ours_changed_the_same_lines() -> None:
    base = _lines("a", "b", "c")
    m = merge_tagged(base, _lines("a", "X", "c"), [1, 2, 3], _lines("a", "Y", "c"), "sec")
    assert len(m.conflicts) == 1 and m.lines == _lines("a", "X", "c")
    assert "changes lines 2-2" in m.conflicts[0].describe()


def test_merge_conflicts_on_insertions_at_the_same_point() -> None:
    base = _lines("a", "b")
    ours = _lines("a", "mine", "b")
    m = merge_tagged(base, ours, [1, 2, 3], _lines("a", "theirs", "b"), "sec")
    assert m.conflicts and "inserts lines after line 1" in m.conflicts[0].describe()


def test_merge_places_an_insertion_next_to_a_changed_neighbour() -> None:
    base = _lines("a", "b", "c")
    ours = _lines("a", "B", "c")
    m = merge_tagged(base, ours, [1, 2, 3], _lines("a", "b", "new", "c"), "sec")
    assert not m.conflicts
    assert m.lines == _lines("a", "B", "new", "c") and m.tags == [1, 2, "sec", 3]
