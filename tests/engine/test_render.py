"""render_patch: GNU conventions, round trip through parse_diff, and GNU patch accepts it."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from patchd.engine.apply import apply_file
from patchd.engine.model import FilePatch
from patchd.engine.parse import parse_diff
from patchd.engine.render import render_patch

from .gnu import make_filepatch

LINES = st.sampled_from([b"a\n", b"b\n", b"c\r\n", b"\xff\n", b"x y\n", b"\n"])


@st.composite
def file_patches(draw: st.DrawFn) -> list[FilePatch]:
    names = st.text(
        alphabet=st.sampled_from([*'abc_-. \t"\\\u00e9', "\udcff"]), min_size=1, max_size=8
    ).filter(lambda n: n.strip(" .") != "" and "/" not in n)
    out: list[FilePatch] = []
    used: set[str] = set()
    for _ in range(draw(st.integers(1, 3))):
        name = "d/" + draw(names)
        if name in used:
            continue
        used.add(name)
        old = b"".join(draw(st.lists(LINES, max_size=12)))
        new = b"".join(draw(st.lists(LINES, max_size=12)))
        if draw(st.booleans()) and new:
            new = new[:-1]  # no final newline
        fp = make_filepatch(name, old, new, context=draw(st.sampled_from([0, 1, 3])))
        if fp is not None:
            out.append(fp)
    if not out:
        out.append(FilePatch(None, "d/empty", ()))
    return out


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(file_patches())
def test_round_trip(patches: list[FilePatch]) -> None:
    parsed = parse_diff(render_patch(patches))
    assert [p.without_positions() for p in parsed] == patches
    # and stable once positions are attached
    assert parse_diff(render_patch(parsed)) == parsed


def test_matches_gnu_diff_output_exactly(tmp_path: Path) -> None:
    old = b"".join(b"%d\n" % i for i in range(1, 30)) + b"last"
    new = old.replace(b"3\n", b"").replace(b"20\n", b"20\ntwenty\n").replace(b"last", b"end\n")
    (tmp_path / "old").write_bytes(old)
    (tmp_path / "new").write_bytes(new)
    for args in (["-u"], ["-U0"], ["-U1"]):
        proc = subprocess.run(
            ["diff", *args, "--label", "a/f", "--label", "b/f", "old", "new"],
            cwd=tmp_path,
            capture_output=True,
            check=False,
        )
        assert proc.returncode == 1
        assert render_patch(parse_diff(proc.stdout)) == proc.stdout


def test_created_deleted_and_quoted_files_apply_with_gnu_patch(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "gone.php").write_bytes(b"<?php\nold();\n")
    odd = "sp ace\tcaf\u00e9\udcff.php"
    odd_path = os.fsencode(tree) + b"/" + odd.encode("utf-8", "surrogateescape")
    with open(odd_path, "wb") as fh:
        fh.write(b"x\n")
    patches = [
        FilePatch(None, "new.php", make_filepatch("n", b"", b"<?php\nnew();\n").hunks),  # type: ignore[union-attr]
        FilePatch("gone.php", None, make_filepatch("g", b"<?php\nold();\n", b"").hunks),  # type: ignore[union-attr]
        FilePatch(None, "empty.txt", ()),
        make_filepatch(odd, b"x\n", b"y\n"),
    ]
    diff = render_patch(patches)  # type: ignore[arg-type]
    assert b'"a/sp ace\\tcaf\\303\\251\\377.php"' in diff
    assert parse_diff(diff) == parse_diff(diff)
    (tmp_path / "p.diff").write_bytes(diff)
    proc = subprocess.run(
        ["patch", "-p1", "-f", "--no-backup-if-mismatch", "-i", str(tmp_path / "p.diff")],
        cwd=tree,
        capture_output=True,
        check=False,
        env={"PATH": "/usr/bin:/bin", "LC_ALL": "C"},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (tree / "new.php").read_bytes() == b"<?php\nnew();\n"
    assert not (tree / "gone.php").exists()
    assert (tree / "empty.txt").read_bytes() == b""
    with open(odd_path, "rb") as fh:
        assert fh.read() == b"y\n"
    # the engine agrees on every file
    for fp in parse_diff(diff):
        before = {"gone.php": b"<?php\nold();\n", odd: b"x\n"}.get(fp.path)
        assert apply_file(fp, before).ok


def test_zero_length_ranges_and_omitted_counts() -> None:
    fp = make_filepatch("f", b"a\nb\n", b"a\nnew\nb\n", context=0)
    assert render_patch([fp]) == b"--- a/f\n+++ b/f\n@@ -1,0 +2 @@\n+new\n"  # type: ignore[list-item]
    fp = make_filepatch("f", b"a\nb", b"a\n", context=0)
    assert render_patch([fp]) == (  # type: ignore[list-item]
        b"--- a/f\n+++ b/f\n@@ -2 +1,0 @@\n-b\n\\ No newline at end of file\n"
    )
