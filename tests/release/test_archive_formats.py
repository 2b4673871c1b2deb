"""open_release on benign input: every format, top-folder stripping, folders, modes."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tarfile
from pathlib import Path

import pytest

from patchd.release.archive import detect_format, open_release, strip_single_folder
from tests.release.helpers import snapshot, tar_entry, tar_file, write_tar, write_zip, zip_info

FILES = {
    "index.php": b"<?php\nrequire 'lib/boot.php';\n",
    "lib/boot.php": b"<?php\r\n// crlf\r\nreturn 1;",
    "lib/empty.txt": b"",
    "assets/logo.bin": bytes(range(256)) * 10,
    "caf\udce9.txt": b"latin-1 name\n",  # non-UTF-8 byte 0xE9 in the name
}


def _tree(root: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def _contents(root: Path) -> dict[str, bytes]:
    return {k: v[1] for k, v in snapshot(root).items() if v[0] == "file"}


@pytest.fixture
def release_dir(tmp_path: Path) -> Path:
    return _tree(tmp_path / "src" / "cms-1.2.3", FILES).parent


@pytest.mark.parametrize(
    ("suffix", "fmt", "tar_flag"),
    [
        (".tar", "tar", ""),
        (".tar.gz", "gz", "z"),
        (".tgz", "gz", "z"),
        (".tar.bz2", "bz2", "j"),
        (".tar.xz", "xz", "J"),
    ],
)
def test_tar_formats_made_by_gnu_tar(
    tmp_path: Path, release_dir: Path, suffix: str, fmt: str, tar_flag: str
) -> None:
    arc = tmp_path / f"cms-1.2.3{suffix}"
    subprocess.run(
        ["tar", f"c{tar_flag}f", str(arc), "-C", str(release_dir), "cms-1.2.3"], check=True
    )
    assert detect_format(arc) == fmt
    root = open_release(arc, tmp_path / "work")
    assert root.name == "cms-1.2.3" and root.parent.parent == tmp_path / "work"
    assert _contents(root) == FILES


def test_zip_made_by_zipfile(tmp_path: Path) -> None:
    # NOTE: zip has no way to carry non-UTF-8 names (they read back as cp437): left out.
    files = {k: v for k, v in FILES.items() if k.isascii()}
    src = _tree(tmp_path / "src" / "cms-1.2.3", files).parent
    arc = tmp_path / "cms.zip"
    shutil.make_archive(str(arc.with_suffix("")), "zip", src)
    assert detect_format(arc) == "zip"
    root = open_release(arc, tmp_path / "work")
    assert root.name == "cms-1.2.3"
    assert _contents(root) == files


def test_no_strip_with_two_top_level_entries(tmp_path: Path) -> None:
    arc = write_tar(tmp_path / "t.tar.gz", [tar_file("a/x.php"), tar_file("b.php")], "gz")
    root = open_release(arc, tmp_path / "work")
    assert root.parent == tmp_path / "work"
    assert sorted(os.listdir(root)) == ["a", "b.php"]


def test_no_strip_for_single_top_level_file(tmp_path: Path) -> None:
    arc = write_zip(tmp_path / "z.zip", [(zip_info("only.php"), b"<?php\n")])
    root = open_release(arc, tmp_path / "work")
    assert os.listdir(root) == ["only.php"]


def test_dot_slash_names_and_root_entry(tmp_path: Path) -> None:
    arc = write_tar(
        tmp_path / "t.tar",
        [tar_entry("./", tarfile.DIRTYPE, mode=0o755), tar_file("./pkg/a.php", b"a\n")],
    )
    root = open_release(arc, tmp_path / "work")
    assert root.name == "pkg" and (root / "a.php").read_bytes() == b"a\n"


def test_each_extraction_gets_a_fresh_folder(tmp_path: Path) -> None:
    arc = write_tar(tmp_path / "t.tar", [tar_file("pkg/a.php")])
    first = open_release(arc, tmp_path / "work")
    second = open_release(arc, tmp_path / "work")
    assert first != second and first.exists() and second.exists()


def test_directory_input_used_in_place(release_dir: Path) -> None:
    root = open_release(release_dir, release_dir.parent / "unused")
    assert root == release_dir / "cms-1.2.3"
    assert not (release_dir.parent / "unused").exists()


def test_directory_with_lone_symlink_not_stripped(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "rel").mkdir()
    (tmp_path / "rel" / "link").symlink_to(tmp_path / "real")
    assert strip_single_folder(tmp_path / "rel") == tmp_path / "rel"


def test_setuid_setgid_sticky_stripped(tmp_path: Path) -> None:
    arc = write_tar(
        tmp_path / "t.tar",
        [
            tar_entry("pkg/", tarfile.DIRTYPE, mode=0o3777),
            tar_file("pkg/suid", b"#!/bin/sh\n", mode=0o4755),
            tar_file("pkg/sgid", b"x", mode=0o2644),
            tar_file("pkg/world", b"x", mode=0o666),
        ],
    )
    root = open_release(arc, tmp_path / "work")
    assert stat.S_IMODE(os.stat(root).st_mode) == 0o755
    assert stat.S_IMODE(os.stat(root / "suid").st_mode) == 0o755
    assert stat.S_IMODE(os.stat(root / "sgid").st_mode) == 0o644
    assert stat.S_IMODE(os.stat(root / "world").st_mode) == 0o644


def test_zip_setuid_stripped(tmp_path: Path) -> None:
    arc = write_zip(
        tmp_path / "z.zip", [(zip_info("pkg/run", unix_mode=stat.S_IFREG | 0o4755), b"x")]
    )
    root = open_release(arc, tmp_path / "work")
    assert stat.S_IMODE(os.stat(root / "run").st_mode) == 0o755


def test_large_member_streams_exactly(tmp_path: Path) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)
    arc = write_tar(tmp_path / "t.tar.xz", [tar_file("pkg/blob.bin", data)], "xz")
    root = open_release(arc, tmp_path / "work")
    assert (root / "blob.bin").read_bytes() == data
