"""diff_trees on small hand-made trees, and random tree pairs checked with GNU patch."""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import subprocess
from pathlib import Path

import pytest

from patchd.engine.apply import apply_file
from patchd.engine.model import Hunk, HunkLine
from patchd.engine.parse import parse_diff
from patchd.errors import UnsafePathError
from patchd.release.linediff import diff_lines, split_lines
from patchd.release.tree import FileChange, ReleaseDiff, ReleaseHunk, diff_trees
from tests.release.helpers import render, snapshot


def _tree(root: Path, files: dict[str, bytes]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _patch_applies(tmp_path: Path, old: Path, new: Path, diff: ReleaseDiff) -> None:
    """Render every text change, apply it with GNU patch to a copy of old, compare to new."""
    work = tmp_path / "applied"
    shutil.copytree(old, work, symlinks=True)
    text = render(fc.to_file_patch() for fc in diff.files if fc.kind != "binary")
    subprocess.run(
        ["patch", "-p1", "-s", "-f", "--no-backup-if-mismatch"],
        input=text,
        cwd=work,
        check=True,
    )
    # binary changes cannot travel in a text diff: those paths keep their old state
    binary = {fc.path for fc in diff.files if fc.kind == "binary"}
    old_snap, new_snap = snapshot(old), snapshot(new)
    want = {k: v for k, v in new_snap.items() if v[0] != "dir" and k not in binary}
    want.update({k: v for k, v in old_snap.items() if k in binary})
    got = {k: v for k, v in snapshot(work).items() if v[0] != "dir"}
    assert got == want
    # the engine applies the same FilePatches to the old bytes and gives the new bytes
    for fc in diff.files:
        if fc.kind == "binary":
            continue
        before = (old / fc.path).read_bytes() if fc.kind != "added" else None
        outcome = apply_file(fc.to_file_patch(), before)
        assert outcome.ok, (fc.path, outcome.reason)
        if fc.kind == "removed":
            assert outcome.deleted
        else:
            assert outcome.content == (new / fc.path).read_bytes()
    # the engine's strict parser reads the same hunks back
    parsed = parse_diff(text)
    mine = [fc.to_file_patch() for fc in diff.files if fc.kind != "binary"]
    assert [(fp.old_path, fp.new_path, [_shape(h) for h in fp.hunks]) for fp in parsed] == [
        (fp.old_path, fp.new_path, [_shape(h) for h in fp.hunks]) for fp in mine
    ]


def _shape(h: Hunk) -> tuple[int, int, int, int, tuple[HunkLine, ...]]:
    return (h.old_start, h.old_len, h.new_start, h.new_len, h.lines)


def test_hand_made_trees(tmp_path: Path) -> None:
    old = _tree(
        tmp_path / "old",
        {
            "same.php": b"<?php\necho 1;\n",
            "gone.php": b"<?php\nold();\n",
            "mod.php": b"".join(b"line %d\n" % i for i in range(20)),
            "crlf.php": b"<?php\r\n$a = 1;\r\n$b = 2;\r\n",
            "nofinal.js": b"a\nb\nc",
            "latin1.php": "<?php\n$x = 'Gr\u00fc\u00dfe';\n".encode("latin-1"),
            "img.png": b"\x89PNG\r\n\x1a\n\x00\x00data",
            "noise.bin": bytes([0x81, 0x8D, 0x41]) * 100,
            "caf\udce9.php": b"<?php\n1;\n",
            "olddir/x.txt": b"x\n",
        },
    )
    new = _tree(
        tmp_path / "new",
        {
            "same.php": b"<?php\necho 1;\n",
            "added.php": b"<?php\nnew();\n",
            "mod.php": b"".join(b"line %d\n" % i for i in range(20)).replace(
                b"line 10\n", b"line ten\n"
            ),
            "crlf.php": b"<?php\r\n$a = 1;\r\n$b = 3;\r\n",
            "nofinal.js": b"a\nB\nc",
            "latin1.php": "<?php\n$x = 'Gr\u00fc\u00df Gott';\n".encode("latin-1"),
            "img.png": b"\x89PNG\r\n\x1a\n\x00\x00DATA",
            "noise.bin": bytes([0x81, 0x8D, 0x42]) * 100,
            "caf\udce9.php": b"<?php\n2;\n",
            "newdir/sub/y.txt": b"y\n",
        },
    )
    diff = diff_trees(old, new)
    kinds = {fc.path: fc.kind for fc in diff.files}
    assert kinds == {
        "added.php": "added",
        "caf\udce9.php": "modified",
        "crlf.php": "modified",
        "gone.php": "removed",
        "img.png": "binary",
        "latin1.php": "modified",
        "mod.php": "modified",
        "newdir/sub/y.txt": "added",
        "noise.bin": "binary",
        "nofinal.js": "modified",
        "olddir/x.txt": "removed",
    }
    assert [fc.path for fc in diff.files] == sorted(kinds)
    assert diff.dirs_added == ("newdir", "newdir/sub")
    assert diff.dirs_removed == ("olddir",)

    by = {fc.path: fc for fc in diff.files}
    assert by["added.php"].old_sha256 is None
    assert by["added.php"].new_sha256 == _sha(b"<?php\nnew();\n")
    assert by["gone.php"].new_sha256 is None
    assert by["img.png"].hunks == ()
    assert by["img.png"].old_sha256 == _sha(b"\x89PNG\r\n\x1a\n\x00\x00data")

    (crlf,) = by["crlf.php"].hunks
    assert [(ln.kind, ln.data) for ln in crlf.hunk.lines] == [
        (" ", b"<?php\r\n"),
        (" ", b"$a = 1;\r\n"),
        ("-", b"$b = 2;\r\n"),
        ("+", b"$b = 3;\r\n"),
    ]
    (nofinal,) = by["nofinal.js"].hunks
    assert nofinal.hunk.lines[-1].data == b"c"
    (mod,) = by["mod.php"].hunks
    assert (mod.hunk.old_start, mod.hunk.old_len, mod.hunk.new_start, mod.hunk.new_len) == (
        8,
        7,
        8,
        7,
    )
    assert mod.id == f"mod.php@8-{mod.hunk.digest[:10]}"
    assert diff.hunk(mod.id) is mod
    _patch_applies(tmp_path, old, new, diff)


def test_ids_are_stable_and_content_bound(tmp_path: Path) -> None:
    base = b"".join(b"l%d\n" % i for i in range(40))
    old = _tree(tmp_path / "old", {"f.php": base})
    new = _tree(tmp_path / "new", {"f.php": base.replace(b"l5\n", b"L5\n")})
    first = [h.id for h in diff_trees(old, new).hunks]
    assert first == [h.id for h in diff_trees(old, new).hunks]
    (new / "f.php").write_bytes(base.replace(b"l5\n", b"LL5\n"))
    second = [h.id for h in diff_trees(old, new).hunks]
    assert first[0].split("-")[0] == second[0].split("-")[0] == "f.php@3"
    assert first != second


def test_symlinks_reported_as_binary_never_followed(tmp_path: Path) -> None:
    outside = _tree(tmp_path / "outside", {"secret.txt": b"secret\n"})
    old = _tree(tmp_path / "old", {"a.php": b"a\n"})
    new = _tree(tmp_path / "new", {"a.php": b"a\n"})
    (old / "link").symlink_to(outside / "secret.txt")
    (new / "link").symlink_to(outside)
    (new / "dirlink").symlink_to(outside)
    (old / "same").symlink_to("a.php")
    (new / "same").symlink_to("a.php")
    diff = diff_trees(old, new)
    assert [(fc.path, fc.kind) for fc in diff.files] == [("dirlink", "binary"), ("link", "binary")]
    link = diff.files[1]
    assert link.old_sha256 == _sha(b"symlink\x00" + os.fsencode(outside / "secret.txt"))
    assert diff.files[0].old_sha256 is None
    with pytest.raises(ValueError, match="binary"):
        link.to_file_patch()


def test_file_replaced_by_symlink_is_binary(tmp_path: Path) -> None:
    old = _tree(tmp_path / "old", {"a.php": b"a\n"})
    new = _tree(tmp_path / "new", {"b.php": b"a\n"})
    (new / "a.php").symlink_to("b.php")
    kinds = {fc.path: fc.kind for fc in diff_trees(old, new).files}
    assert kinds == {"a.php": "binary", "b.php": "added"}


def test_fifo_in_release_dir_raises(tmp_path: Path) -> None:
    old = _tree(tmp_path / "old", {"a.php": b"a\n"})
    new = _tree(tmp_path / "new", {"a.php": b"a\n"})
    os.mkfifo(new / "pipe")
    with pytest.raises(UnsafePathError, match="not a regular file"):
        diff_trees(old, new)


def test_empty_added_file_has_no_hunks(tmp_path: Path) -> None:
    old = _tree(tmp_path / "old", {})
    new = _tree(tmp_path / "new", {"empty.txt": b""})
    (fc,) = diff_trees(old, new).files
    assert fc == FileChange("empty.txt", "added", None, _sha(b""), ())


def test_large_equal_and_changed_files(tmp_path: Path) -> None:
    big = b"".join(b"row %d %s\n" % (i, b"x" * 60) for i in range(300_000))  # > 16 MiB
    old = _tree(tmp_path / "old", {"same.sql": big, "big.sql": big})
    new = _tree(tmp_path / "new", {"same.sql": big, "big.sql": big.replace(b"row 77 ", b"r 77 ")})
    diff = diff_trees(old, new)
    assert [(fc.path, len(fc.hunks)) for fc in diff.files] == [("big.sql", 1)]


@pytest.mark.parametrize(("gap", "hunks"), [(5, 1), (6, 1), (7, 2), (8, 2)])
def test_grouping_like_diff_u(tmp_path: Path, gap: int, hunks: int) -> None:
    old = [b"%d\n" % i for i in range(30)]
    new = list(old)
    new[5] = b"five\n"
    new[5 + gap + 1] = b"other\n"
    got = diff_lines(old, new)
    assert len(got) == hunks
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_bytes(b"".join(old))
    b.write_bytes(b"".join(new))
    out = subprocess.run(["diff", "-u", str(a), str(b)], capture_output=True).stdout
    assert out.count(b"\n@@ ") == hunks


def test_subset_patch_recomputes_new_starts(tmp_path: Path) -> None:
    base = [b"l%d\n" % i for i in range(60)]
    changed = list(base)
    changed[5:6] = [b"A\n", b"B\n", b"C\n"]  # +2 lines, first hunk
    changed[42] = b"X\n"  # second hunk (index shifted by 2)
    old = _tree(tmp_path / "old", {"f.php": b"".join(base)})
    new = _tree(tmp_path / "new", {"f.php": b"".join(changed)})
    (fc,) = diff_trees(old, new).files
    first, second = fc.hunks
    assert second.hunk.new_start == second.hunk.old_start + 2
    only_second = fc.to_file_patch([second])
    assert only_second.hunks[0].new_start == second.hunk.old_start
    assert only_second.old_path == only_second.new_path == "f.php"
    work = tmp_path / "w"
    shutil.copytree(old, work)
    subprocess.run(["patch", "-p1", "-s", "-f"], input=render([only_second]), cwd=work, check=True)
    expected = list(base)
    expected[40] = b"X\n"
    assert (work / "f.php").read_bytes() == b"".join(expected)
    with pytest.raises(ValueError, match="not of this file"):
        fc.to_file_patch([first, ReleaseHunk("other.php@1-0000000000", "other.php", second.hunk)])


def test_split_lines_keeps_eols() -> None:
    assert split_lines(b"a\r\nb\n\nc") == [b"a\r\n", b"b\n", b"\n", b"c"]
    assert split_lines(b"") == []
    assert split_lines(b"\r") == [b"\r"]


_VOCAB = [b"a\n", b"b\n", b"}\n", b"\n", b"x\r\n", b"return $x;\n", b"\tfoo();\n", b"<?php\n"]


def _random_file(rng: random.Random) -> bytes:
    lines = [rng.choice(_VOCAB) for _ in range(rng.randint(1, 60))]
    data = b"".join(lines)
    if rng.random() < 0.2:
        data = data.rstrip(b"\r\n") or b"z"
    return data


def _mutate(rng: random.Random, data: bytes) -> bytes:
    lines = split_lines(data)
    for _ in range(rng.randint(1, 6)):
        op = rng.choice("idr")
        at = rng.randint(0, len(lines))
        if op == "i":
            lines[at:at] = [rng.choice(_VOCAB) for _ in range(rng.randint(1, 4))]
        elif op == "d" and lines:
            del lines[at : at + rng.randint(1, 3)]
        elif lines:
            lines[min(at, len(lines) - 1)] = rng.choice(_VOCAB)
    out = b"".join(lines)
    if rng.random() < 0.15:
        out = out.rstrip(b"\r\n")
    return out or b"z\n"


@pytest.mark.parametrize("seed", range(8))
def test_random_tree_pairs_apply_with_gnu_patch(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    old_files = {f"d{i % 4}/f{i}.php": _random_file(rng) for i in range(30)}
    new_files: dict[str, bytes] = {}
    for path, data in old_files.items():
        roll = rng.random()
        if roll < 0.1:
            continue  # removed
        new_files[path] = _mutate(rng, data) if roll < 0.6 else data
    for i in range(rng.randint(0, 4)):
        new_files[f"new{i}/g.php"] = _random_file(rng)
    old = _tree(tmp_path / "old", old_files)
    new = _tree(tmp_path / "new", new_files)
    diff = diff_trees(old, new)
    changed = {
        p for p in old_files.keys() | new_files.keys() if old_files.get(p) != new_files.get(p)
    }
    assert {fc.path for fc in diff.files} == changed
    for context in (0, 1, 3):
        for fc in diff_trees(old, new, context=context).files:
            for rh in fc.hunks:
                h = rh.hunk
                assert len(h.old_lines) == h.old_len and len(h.new_lines) == h.new_len
    _patch_applies(tmp_path, old, new, diff)
