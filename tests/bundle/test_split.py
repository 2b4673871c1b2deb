"""split_hunk: kept sub-hunks apply to the old file and make exactly the kept changes."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from patchd.bundle.split import renumber, split_hunk
from patchd.engine.model import Hunk, HunkLine
from patchd.release.linediff import diff_lines
from patchd.release.tree import ReleaseHunk
from tests.bundle.helpers import release_hunk, render


def _lines(n: int) -> list[bytes]:
    return [f"line {i}\n".encode() for i in range(1, n + 1)]


def _rh(old: list[bytes], new: list[bytes]) -> ReleaseHunk:
    hunks = diff_lines(old, new, context=3)
    assert len(hunks) == 1, hunks
    return ReleaseHunk("f.php@x", "f.php", hunks[0])


def _keeper(*sec_old: int) -> Callable[[int, HunkLine], bool]:
    """Keep added lines mentioning SEC and the removal of old lines ``sec_old`` (1-based)."""
    removed = {f"line {n}\n".encode() for n in sec_old}

    def keep(_i: int, ln: HunkLine) -> bool:
        return b"SEC" in ln.data if ln.kind == "+" else ln.data in removed

    return keep


def apply_strict(old: list[bytes], hunks: list[Hunk]) -> list[bytes]:
    """Apply hunks exactly at their old_start; also check each new_start."""
    out: list[bytes] = []
    pos = 0  # 0-based index into old
    for h in sorted(hunks, key=lambda h: h.old_start):
        first = h.old_start - 1 if h.old_len else h.old_start
        assert first >= pos
        out.extend(old[pos:first])
        assert old[first : first + h.old_len] == h.old_lines, h
        new_first = len(out) + 1
        assert h.new_start == (new_first if h.new_len else new_first - 1), h
        out.extend(h.new_lines)
        pos = first + h.old_len
    out.extend(old[pos:])
    return out


def test_mixed_hunk_splits_and_kept_part_applies_with_gnu_patch(tmp_path: Path) -> None:
    old = _lines(30)
    new = list(old)
    new[9] = b"SEC fixed line 10\n"  # security change
    new[13] = b"unrelated line 14\n"  # unrelated change, 3 unchanged lines between
    rh = _rh(old, new)
    result = split_hunk(rh, _keeper(10))
    assert result is not None
    kept, dropped = result
    expected_kept = list(old)
    expected_kept[9] = new[9]
    expected_dropped = list(old)
    expected_dropped[13] = new[13]
    for hunks, expected in ((kept, expected_kept), (dropped, expected_dropped)):
        work = tmp_path / ("k" if hunks is kept else "d")
        work.mkdir()
        (work / "f.php").write_bytes(b"".join(old))
        proc = subprocess.run(
            ["patch", "-p1", "--fuzz=0", "--batch", "--no-backup-if-mismatch"],
            cwd=work,
            input=render("f.php", hunks),
            capture_output=True,
            check=True,
        )
        assert b"offset" not in proc.stdout, proc.stdout
        assert (work / "f.php").read_bytes() == b"".join(expected)


def test_far_apart_changes_become_separate_hunks_with_correct_counts() -> None:
    old = _lines(40)
    new = list(old)
    new[4:5] = [b"SEC a\n", b"SEC b\n"]  # line 5 replaced by two lines
    del new[12]  # unrelated deletion of line 13 ... shifts later lines
    new.insert(19, b"SEC inserted\n")
    hunks = diff_lines(old, new, context=3)
    kept_all: list[Hunk] = []
    for h in hunks:
        parts = split_hunk(ReleaseHunk("x", "f.php", h), _keeper(5))
        assert parts is not None
        kept_all.extend(parts[0])
    kept_all = renumber(kept_all)
    expected = list(old)
    expected[4:5] = [b"SEC a\n", b"SEC b\n"]
    expected.insert(20, b"SEC inserted\n")
    assert apply_strict(old, kept_all) == expected


def test_adjacent_interleaved_changes_cannot_be_split() -> None:
    rh = release_hunk("f.php", [" a", "-line 2", "+SEC b", "+other", " c"])
    assert split_hunk(rh, _keeper(2)) is None


def test_homogeneous_hunk_is_kept_whole() -> None:
    rh = release_hunk("f.php", [" a", "-line 8", "+SEC b", " c"], old_start=7)
    result = split_hunk(rh, _keeper(8))
    assert result is not None
    kept, dropped = result
    assert dropped == []
    assert [(h.old_start, h.old_len, h.new_len) for h in kept] == [(7, 3, 3)]
    assert kept[0].lines == rh.hunk.lines


def test_one_unchanged_line_between_is_enough() -> None:
    old = _lines(10)
    new = list(old)
    new[3] = b"SEC 4\n"
    new[5] = b"other 6\n"
    result = split_hunk(_rh(old, new), _keeper(4))
    assert result is not None
    kept, dropped = result
    exp = list(old)
    exp[3] = b"SEC 4\n"
    assert apply_strict(old, kept) == exp
    exp2 = list(old)
    exp2[5] = b"other 6\n"
    assert apply_strict(old, dropped) == exp2


def test_removed_security_line_and_file_start() -> None:
    old = _lines(8)
    new = [b"other first\n", *old[1:11]]
    del new[new.index(b"line 3\n")]
    # line 1 changed (unrelated) and "line 3" removed: keep_line marks removal of line 3
    rh = _rh(old, new)
    result = split_hunk(rh, lambda _i, ln: ln.data == b"line 3\n")
    assert result is not None
    exp = [ln for ln in old if ln != b"line 3\n"]
    assert apply_strict(old, result[0]) == exp


@st.composite
def _edits(draw: st.DrawFn) -> tuple[list[bytes], list[tuple[int, str, bool]]]:
    n = draw(st.integers(8, 40))
    positions = sorted(draw(st.sets(st.integers(0, n - 1), min_size=1, max_size=8)))
    spaced: list[int] = []
    for p in positions:
        if not spaced or p - spaced[-1] >= 2:
            spaced.append(p)
    ops = [
        (p, draw(st.sampled_from(["replace", "delete", "insert"])), draw(st.booleans()))
        for p in spaced
    ]
    return _lines(n), ops


def _apply_ops(old: list[bytes], ops: list[tuple[int, str, bool]], only_keep: bool) -> list[bytes]:
    out: list[bytes] = []
    by_pos = {p: (kind, keep) for p, kind, keep in ops}
    for i, ln in enumerate(old):
        kind, keep = by_pos.get(i, (None, False))
        if kind is None or (only_keep and not keep):
            out.append(ln)
            continue
        tag = b"SEC" if keep else b"OTHER"
        if kind == "replace":
            out.append(tag + b" replaced " + ln)
        elif kind == "insert":
            out.extend([tag + b" inserted before " + ln, ln])
    return out


@settings(max_examples=60, deadline=None)
@given(_edits())
def test_property_kept_subhunks_make_exactly_the_kept_changes(
    case: tuple[list[bytes], list[tuple[int, str, bool]]],
) -> None:
    old, ops = case
    new = _apply_ops(old, ops, only_keep=False)
    keep_old = {old[p] for p, _k, keep in ops if keep}

    def keep_line(_i: int, ln: HunkLine) -> bool:
        return ln.data.startswith(b"SEC") if ln.kind == "+" else ln.data in keep_old

    kept: list[Hunk] = []
    for h in diff_lines(old, new, context=3):
        parts = split_hunk(ReleaseHunk("x", "f", h), keep_line)
        assert parts is not None
        kept.extend(parts[0])
    assert apply_strict(old, renumber(kept)) == _apply_ops(old, ops, only_keep=True)
