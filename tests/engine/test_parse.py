"""parse_diff: structure, bytes-exactness, git headers, and one test per malformed kind."""

from __future__ import annotations

import pytest

from patchd.engine.model import FilePatch, Hunk, HunkLine
from patchd.engine.parse import parse_diff
from patchd.errors import DiffParseError, UnsupportedDiffError

SIMPLE = b"""--- a/wp-includes/load.php\t2024-01-01 00:00:00
+++ b/wp-includes/load.php\t2024-01-02 00:00:00
@@ -1,3 +1,3 @@ function wp_load()
 <?php
-$x = $_GET['x'];
+$x = (int) $_GET['x'];
 return $x;
"""


def test_simple_diff_structure_and_positions() -> None:
    [fp] = parse_diff(SIMPLE)
    assert fp.old_path == fp.new_path == "wp-includes/load.php"
    assert fp.source_line == 1
    [hunk] = fp.hunks
    assert (hunk.old_start, hunk.old_len, hunk.new_start, hunk.new_len) == (1, 3, 1, 3)
    assert hunk.section == b" function wp_load()"
    assert hunk.source_line == 3
    assert [ln.kind for ln in hunk.lines] == [" ", "-", "+", " "]
    assert hunk.lines[1].data == b"$x = $_GET['x'];\n"


def test_crlf_and_no_newline_are_kept_exactly() -> None:
    diff = (
        b"--- a/f\n+++ b/f\n@@ -1,2 +1,2 @@\n a\r\n-b\r\n\\ No newline at end of file\n"
        b"+c\r\n+d\xff\n\\ No newline at end of file\n"
    )
    # header says +1,2 but three new lines: refused below; use a matching header here
    diff = diff.replace(b"+1,2", b"+1,3")
    [fp] = parse_diff(diff)
    lines = fp.hunks[0].lines
    assert lines == (
        HunkLine(" ", b"a\r\n"),
        HunkLine("-", b"b\r"),
        HunkLine("+", b"c\r\n"),
        HunkLine("+", b"d\xff"),
    )


def test_omitted_counts_default_to_one_and_zero_ranges() -> None:
    diff = b"--- a/f\n+++ b/f\n@@ -3 +2,0 @@\n-gone\n@@ -9,0 +9 @@\n+new\n"
    [fp] = parse_diff(diff)
    assert [(h.old_start, h.old_len, h.new_start, h.new_len) for h in fp.hunks] == [
        (3, 1, 2, 0),
        (9, 0, 9, 1),
    ]


def test_git_headers_new_and_deleted_files() -> None:
    diff = (
        b"diff --git a/new.php b/new.php\nnew file mode 100644\nindex 0000000..1111111\n"
        b"--- /dev/null\n+++ b/new.php\n@@ -0,0 +1 @@\n+<?php\n"
        b"diff --git a/old.php b/old.php\ndeleted file mode 100644\nindex 2222222..0000000\n"
        b"--- a/old.php\n+++ /dev/null\n@@ -1 +0,0 @@\n-<?php\n"
        b"diff --git a/empty.txt b/empty.txt\nnew file mode 100644\nindex 0000000..e69de29\n"
    )
    new, old, empty = parse_diff(diff)
    assert new.is_new and new.path == "new.php" and new.source_line == 4
    assert new.header[0].startswith(b"diff --git")
    assert old.is_deleted and old.path == "old.php"
    assert empty.is_new and empty.hunks == () and empty.source_line == 15


def test_preamble_and_trailer_text_is_allowed() -> None:
    diff = b"From abc Mon Sep 17 00:00:00 2001\nSubject: fix\n\n---\n x | 2 +-\n\n" + SIMPLE
    diff += b"-- \n2.39.2\n\n"
    [fp] = parse_diff(diff)
    assert fp.source_line == 7
    assert fp.header[1] == b"Subject: fix\n"


def test_quoted_names_are_unquoted() -> None:
    diff = b'--- "a/caf\\303\\251 x.php"\n+++ "b/caf\\303\\251 x.php"\n@@ -1 +1 @@\n-a\n+b\n'
    [fp] = parse_diff(diff)
    assert fp.path == "caf\u00e9 x.php"


def test_strip_zero_and_two() -> None:
    diff = b"--- x/y/f\n+++ x/y/f\n@@ -1 +1 @@\n-a\n+b\n"
    assert parse_diff(diff, strip=0)[0].path == "x/y/f"
    assert parse_diff(diff, strip=2)[0].path == "f"


def test_equality_ignores_header_but_not_positions() -> None:
    a = parse_diff(b"Index: f\n" + b"--- a/f\n+++ b/f\n@@ -1 +1 @@\n-a\n+b\n")[0]
    b = parse_diff(b"Other: f\n" + b"--- a/f\n+++ b/f\n@@ -1 +1 @@\n-a\n+b\n")[0]
    assert a == b
    assert a.without_positions() == FilePatch(
        "f", "f", (Hunk(1, 1, 1, 1, (HunkLine("-", b"a\n"), HunkLine("+", b"b\n"))),)
    )


H = b"--- a/f\n+++ b/f\n"


@pytest.mark.parametrize(
    ("diff", "line_no", "words"),
    [
        pytest.param(
            H + b"@@ -1,2 +1,2 @\n a\n-b\n+c\n", 3, "malformed hunk header", id="bad-header"
        ),
        pytest.param(H + b"@@ -x +1 @@\n-a\n+b\n", 3, "malformed hunk header", id="bad-number"),
        pytest.param(
            H + b"@@ -1,3 +1,2 @@\n a\n-b\n+c\n@@ -9 +9 @@\n-x\n+y\n",
            7,
            "shorter",
            id="too-few-lines",
        ),
        pytest.param(H + b"@@ -1 +1 @@\n-a\n+b\n+c\n", 6, "more lines", id="too-many-lines"),
        pytest.param(H + b"@@ -1,2 +1,2 @@\n a\n*b\n+c\n", 5, "invalid line", id="bad-line"),
        pytest.param(H + b"@@ -1,2 +1,2 @@\n a\n\n-b\n+c\n", 5, "invalid line", id="blank-line"),
        pytest.param(
            H + b"@@ -1 +1 @@\n-a\n+b\ngarbage\n@@ -5 +5 @@\n-c\n+d\n",
            6,
            "between hunks",
            id="garbage-between-hunks",
        ),
        pytest.param(H + b"@@ -1,3 +1,3 @@\n a\n-b\n", 3, "truncated", id="truncated"),
        pytest.param(b"--- a/f\0\n+++ b/f\n@@ -1 +1 @@\n-a\n+b\n", 1, "NUL", id="nul-header"),
        pytest.param(H + b"@@ -1 +1 @@\0\n-a\n+b\n", 3, "NUL", id="nul-hunk-header"),
        pytest.param(b"@@ -1 +1 @@\n-a\n+b\n", 1, "without file header", id="no-file-header"),
        pytest.param(b"--- a/f\nxx\n", 1, "not followed by '+++'", id="lonely-minus"),
        pytest.param(
            H + b"@@ -1 +1 @@\n\\ No newline at end of file\n-a\n+b\n",
            4,
            "misplaced",
            id="marker-first",
        ),
        pytest.param(
            H + b"@@ -1,2 +1,2 @@\n-a\n\\ No newline at end of file\n-b\n+c\n+d\n",
            6,
            "after the last line",
            id="line-after-no-eol",
        ),
        pytest.param(H + b"@@ -0,0 +0,0 @@\n", 3, "empty hunk", id="empty-hunk"),
        pytest.param(H + b"@@ -0,2 +1,2 @@\n-a\n-b\n+c\n+d\n", 3, "line 0", id="zero-start"),
        pytest.param(
            H + b"@@ -5 +5 @@\n-a\n+b\n@@ -3 +3 @@\n-c\n+d\n", 6, "overlaps", id="misordered-hunks"
        ),
        pytest.param(H, 2, "without hunks", id="no-hunks"),
        pytest.param(
            b"--- a/../../etc/passwd\n+++ b/../../etc/passwd\n@@ -1 +1 @@\n-a\n+b\n",
            1,
            "unsafe",
            id="dotdot",
        ),
        pytest.param(
            b"--- /etc/passwd\n+++ /etc/passwd\n@@ -1 +1 @@\n-a\n+b\n", 1, "unsafe", id="absolute"
        ),
        pytest.param(
            b"--- /dev/null\n+++ /dev/null\n@@ -0,0 +1 @@\n+a\n", 2, "/dev/null", id="both-dev-null"
        ),
        pytest.param(
            H + b"@@ -1 +1 @@\n-a\n+b\n" + H + b"@@ -3 +3 @@\n-a\n+b\n",
            6,
            "patched twice",
            id="same-file-twice",
        ),
        pytest.param(H + b"@@ -1 +1 @@\n-a\n+b", 5, "without end of line", id="no-final-eol"),
        pytest.param(b"", 1, "no file patches", id="empty"),
        pytest.param(
            b"diff --git a/f b/f\nindex 1111111..2222222 100644\n",
            1,
            "without any change",
            id="git-no-change",
        ),
    ],
)
def test_malformed_diffs_name_the_line(diff: bytes, line_no: int, words: str) -> None:
    with pytest.raises(DiffParseError) as info:
        parse_diff(diff, source="p.diff")
    assert not isinstance(info.value, UnsupportedDiffError)
    assert info.value.line_no == line_no, info.value
    assert words in info.value.message
    assert str(info.value).startswith(f"p.diff line {line_no}: ")


@pytest.mark.parametrize(
    ("diff", "line_no", "words"),
    [
        pytest.param(
            b"diff --git a/x b/x\nindex 1..2\nGIT binary patch\nliteral 5\n",
            3,
            "binary",
            id="git-binary",
        ),
        pytest.param(b"Binary files a/x.png and b/x.png differ\n", 1, "binary", id="binary"),
        pytest.param(
            b"diff --git a/x b/y\nsimilarity index 90%\nrename from x\nrename to y\n",
            3,
            "renamed",
            id="rename",
        ),
        pytest.param(
            b"diff --git a/x b/y\nsimilarity index 90%\ncopy from x\ncopy to y\n",
            3,
            "copied",
            id="copy",
        ),
        pytest.param(
            b"diff --git a/x b/x\nold mode 100644\nnew mode 100755\n", 2, "mode", id="mode-change"
        ),
        pytest.param(
            b"diff --git a/l b/l\nnew file mode 120000\nindex 0..1\n--- /dev/null\n"
            b"+++ b/l\n@@ -0,0 +1 @@\n+/etc/passwd\n\\ No newline at end of file\n",
            2,
            "symbolic links",
            id="symlink",
        ),
        pytest.param(
            b"diff --git a/l b/l\nindex 1111111..2222222 120000\n--- a/l\n+++ b/l\n"
            b"@@ -1 +1 @@\n-x\n+y\n",
            2,
            "symbolic links",
            id="symlink-index",
        ),
        pytest.param(
            b"*** a/f\n--- b/f\n***************\n*** 1 ****\n! a\n--- 1 ----\n! b\n",
            1,
            "context diffs",
            id="context",
        ),
        pytest.param(b"1c1\n< a\n---\n> b\n", 1, "ed-style", id="normal"),
        pytest.param(b"3a\n!rm -rf /\n.\nw\n", 1, "ed-style", id="ed"),
    ],
)
def test_unsupported_diffs_are_refused(diff: bytes, line_no: int, words: str) -> None:
    with pytest.raises(UnsupportedDiffError) as info:
        parse_diff(diff)
    assert info.value.line_no == line_no, info.value
    assert words in info.value.message


def test_hunk_with_nul_bytes_in_content_is_fine() -> None:
    [fp] = parse_diff(H + b"@@ -1 +1 @@\n-a\0b\n+c\n")
    assert fp.hunks[0].lines[0].data == b"a\0b\n"
