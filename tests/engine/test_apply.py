"""apply_file / apply_patch: placement, statuses, reasons, whole-file cases, byte exactness."""

from __future__ import annotations

import pytest

from patchd.engine.apply import HunkStatus, apply_file, apply_patch
from patchd.engine.model import FilePatch
from patchd.engine.parse import parse_diff

from .gnu import make_filepatch

OLD = b"".join(b"line %d\n" % i for i in range(1, 21))
NEW = OLD.replace(b"line 5\n", b"line five\n").replace(b"line 15\n", b"line 15\nextra\n")


def patch_for(old: bytes, new: bytes, path: str = "f", context: int = 3) -> FilePatch:
    fp = make_filepatch(path, old, new, context=context)
    assert fp is not None
    return fp


def test_exact_application() -> None:
    out = apply_file(patch_for(OLD, NEW), OLD)
    assert out.ok and out.content == NEW
    assert [h.status for h in out.hunks] == [HunkStatus.APPLIED, HunkStatus.APPLIED]
    assert [h.line for h in out.hunks] == [2, 13]
    assert out.failed_hunks == ()


def test_offset_is_found_and_carried_to_later_hunks() -> None:
    target = b"new 1\nnew 2\n" + OLD
    out = apply_file(patch_for(OLD, NEW), target)
    assert out.ok and out.content == b"new 1\nnew 2\n" + NEW
    assert [(h.status, h.offset, h.line) for h in out.hunks] == [
        (HunkStatus.OFFSET, 2, 4),
        (HunkStatus.OFFSET, 2, 15),
    ]


def test_hunk_with_less_leading_context_is_pinned_to_the_file_start() -> None:
    # NOTE: GNU semantics: a hunk at line 1 with fewer leading than trailing context lines
    # can only match at the start of the file, so lines added above make it fail.
    new = OLD.replace(b"line 2\n", b"line two\n")
    fp = patch_for(OLD, new)
    assert fp.hunks[0].old_start == 1
    out = apply_file(fp, b"added\n" + OLD)
    assert out.hunks[0].status is HunkStatus.FAILED
    assert apply_file(fp, OLD + b"added\n").content == new + b"added\n"


def test_changed_context_fails_with_reason_and_content_none() -> None:
    target = OLD.replace(b"line 14\n", b"customer edit\n")
    out = apply_file(patch_for(OLD, NEW), target)
    assert not out.ok and out.content is None
    first, second = out.hunks
    assert first.status is HunkStatus.APPLIED
    assert second.status is HunkStatus.FAILED
    assert second.reason == "hunk #2 does not match: context differs at line 14"
    assert out.failed_hunks == (second,)
    assert out.reason == second.reason


def test_already_applied_hunks_and_file() -> None:
    out = apply_file(patch_for(OLD, NEW), NEW)
    assert not out.ok and out.already_applied
    assert [h.reason for h in out.hunks] == ["hunk #1 already applied", "hunk #2 already applied"]
    partly = NEW.replace(b"line five\n", b"line 5\n")  # only hunk 2 is in the file
    out = apply_file(patch_for(OLD, NEW), partly)
    assert [h.status for h in out.hunks] == [HunkStatus.APPLIED, HunkStatus.ALREADY_APPLIED]
    assert not out.already_applied


def test_reverse_round_trip() -> None:
    fp = patch_for(OLD, NEW)
    forward = apply_file(fp, OLD)
    assert forward.content == NEW
    back = apply_file(fp, forward.content, reverse=True)
    assert back.ok and back.content == OLD
    assert apply_file(fp, OLD, reverse=True).already_applied


def test_fuzz_ignores_outer_context_lines() -> None:
    fp = patch_for(OLD, NEW)
    target = OLD.replace(b"line 13\n", b"line thirteen\n")  # first context line of hunk 2
    assert not apply_file(fp, target).ok
    out = apply_file(fp, target, fuzz=1)
    assert out.ok
    assert out.hunks[1].status is HunkStatus.FUZZ and out.hunks[1].fuzz == 1
    # NOTE: GNU keeps the file's own version of a fuzzed context line.
    assert out.content == NEW.replace(b"line 13\n", b"line thirteen\n")
    with pytest.raises(ValueError):
        apply_file(fp, target, fuzz=-1)


def test_crlf_is_exact_no_line_ending_conversion() -> None:
    old, new = OLD.replace(b"\n", b"\r\n"), NEW.replace(b"\n", b"\r\n")
    out = apply_file(patch_for(old, new), old)
    assert out.ok and out.content == new
    # an LF diff does not apply to a CRLF file
    assert not apply_file(patch_for(OLD, NEW), old).ok


def test_no_final_newline_both_ways() -> None:
    old, new = b"a\nb\nc", b"a\nb\nc\n"
    assert apply_file(patch_for(old, new), old).content == new
    assert apply_file(patch_for(new, old), new).content == old


def test_non_utf8_bytes() -> None:
    old = b"\xff\xfe\n\x80 latin\x00\nz\n"
    new = b"\xff\xfe\ncaf\xe9\nz\n"
    assert apply_file(patch_for(old, new), old).content == new


def test_new_file_cases() -> None:
    [fp] = parse_diff(b"--- /dev/null\n+++ b/n.php\n@@ -0,0 +1,2 @@\n+<?php\n+x();\n")
    assert apply_file(fp, None).content == b"<?php\nx();\n"
    assert apply_file(fp, b"").content == b"<?php\nx();\n"
    exists = apply_file(fp, b"other\n")
    assert not exists.ok and exists.error == "file already exists"
    assert exists.hunks[0].status is HunkStatus.FAILED
    same = apply_file(fp, b"<?php\nx();\n")
    assert same.already_applied and not same.ok


def test_deleted_file_cases() -> None:
    [fp] = parse_diff(b"--- a/d.php\n+++ /dev/null\n@@ -1,2 +0,0 @@\n-<?php\n-x();\n")
    out = apply_file(fp, b"<?php\nx();\n")
    assert out.ok and out.deleted and out.content is None
    differs = apply_file(fp, b"<?php\nx();\nmore();\n")
    assert not differs.ok and "content differs" in (differs.error or "")
    gone = apply_file(fp, None)
    assert gone.already_applied and not gone.ok


def test_missing_file_for_a_modification() -> None:
    out = apply_file(patch_for(OLD, NEW), None)
    assert not out.ok and out.error == "file missing"
    assert all(h.status is HunkStatus.FAILED for h in out.hunks)


def test_empty_new_file_from_git_header() -> None:
    [fp] = parse_diff(b"diff --git a/e b/e\nnew file mode 100644\n")
    out = apply_file(fp, None)
    assert out.ok and out.content == b""


def test_nearest_match_wins_and_forward_on_a_tie() -> None:
    # "x" blocks at lines 2-4 and 8-10; the hunk says line 6: both are 4 away.
    block = b"c1\nX\nc2\n"
    old = b"0\n" + block + b"m\nm\nm\n" + block
    fp = FilePatch(
        "f",
        "f",
        parse_diff(b"--- a/f\n+++ b/f\n@@ -6,3 +6,3 @@\n c1\n-X\n+Y\n c2\n")[0].hunks,
    )
    out = apply_file(fp, old)
    assert out.hunks[0].offset == 2  # forward (+2 to line 8) before backward (-4)
    assert out.content == b"0\n" + block + b"m\nm\nm\n" + b"c1\nY\nc2\n"


def test_apply_patch_over_a_mapping() -> None:
    a, b = patch_for(OLD, NEW, "a.php"), patch_for(b"x\n", b"y\n", "b.php")
    outcomes = apply_patch([a, b], {"a.php": OLD})
    assert [o.path for o in outcomes] == ["a.php", "b.php"]
    assert outcomes[0].ok and outcomes[1].error == "file missing"
