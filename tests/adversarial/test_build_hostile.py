"""Hostile release archives through ``patchd build`` (the CLI, not just ``open_release``).

Each archive is a real-looking WordPress release (every file of the fixture 6.4.2 under
``wordpress/``) plus one hostile member, in tar.gz or zip. ``patchd build`` must exit 2
naming the archive and the member, leave its work folder empty, write no bundle, and
change nothing outside the work folder (a sentinel folder beside it, ``/tmp``, ``/etc``).
The same archive is refused as OLD and as NEW. Every case of ``open_release`` itself is
in ``tests/release/test_archive_hostile.py``.
"""

from __future__ import annotations

import os
import stat
import tarfile
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from patchd.cli.main import cli
from patchd_fixtures.families import release_tree
from patchd_fixtures.releases import write_release_archive
from tests.adversarial.trees import tree_state
from tests.release.helpers import tar_entry, tar_file, write_tar, write_zip, zip_info

ESCAPE = f"/tmp/patchd-adv-escape-{uuid.uuid4().hex}"
ZEROS = b"\0" * (50 * 1024 * 1024)  # 50 MB of zeros: about 50 KB compressed
Members = list[tuple[object, bytes]]


def _tar_release(path: Path, extra: Members) -> Path:
    base = [
        tar_file(f"wordpress/{rel}", data)
        for rel, data in release_tree("wordpress", "6.4.2").items()
    ]
    return write_tar(path, [*base, *extra], "gz")  # type: ignore[list-item]


def _zip_release(path: Path, extra: Members) -> Path:
    base = [
        (zip_info(f"wordpress/{rel}"), data)
        for rel, data in release_tree("wordpress", "6.4.2").items()
    ]
    return write_zip(path, [*base, *extra])  # type: ignore[list-item]


def _device() -> Members:
    info, data = tar_entry("wordpress/wp-includes/null", tarfile.CHRTYPE, mode=0o666)
    info.devmajor, info.devminor = 1, 3
    return [(info, data)]


#: case -> (archive writer, hostile members, member named in the error, words)
CASES: dict[str, tuple[Callable[[Path, Members], Path], Members, str, str]] = {
    "zip-slip": (
        _zip_release,
        [(zip_info("wordpress/../../evil.php"), b"<?php system($_GET['c']);\n")],
        "evil.php",
        "'..'",
    ),
    "zip-absolute": (_zip_release, [(zip_info(ESCAPE), b"x")], ESCAPE, "absolute"),
    "tar-absolute": (_tar_release, [tar_file(ESCAPE)], ESCAPE, "absolute"),
    "tar-etc": (_tar_release, [tar_file("/etc/patchd-adv-x")], "/etc/patchd-adv-x", "absolute"),
    "tar-hardlink-out": (
        _tar_release,
        [tar_entry("wordpress/wp-config.php", tarfile.LNKTYPE, linkname="/etc/passwd")],
        "wordpress/wp-config.php",
        "hardlink",
    ),
    # NOTE: a hardlink to an earlier file member is read as a copy (issue 12); one to a
    # member that is not there (or comes later) is refused.
    "tar-hardlink-missing": (
        _tar_release,
        [tar_entry("wordpress/x.php", tarfile.LNKTYPE, linkname="wordpress/missing.php")],
        "wordpress/x.php",
        "no earlier file member",
    ),
    "tar-device": (_tar_release, _device(), "wordpress/wp-includes/null", "device"),
    "zip-device": (
        _zip_release,
        [(zip_info("wordpress/null", unix_mode=stat.S_IFCHR | 0o666), b"")],
        "wordpress/null",
        "special type",
    ),
    "tar-bomb": (_tar_release, [tar_file("wordpress/zeros.bin", ZEROS)], "zeros.bin", "ratio"),
    "zip-bomb": (_zip_release, [(zip_info("wordpress/zeros.bin"), ZEROS)], "zeros.bin", "ratio"),
    "tar-duplicate": (
        _tar_release,
        [tar_file("wordpress/index.php", b"<?php // second copy\n")],
        "wordpress/index.php",
        "duplicate",
    ),
    "zip-duplicate": (
        _zip_release,
        [(zip_info("wordpress/index.php"), b"<?php // second copy\n")],
        "wordpress/index.php",
        "duplicate",
    ),
    "tar-symlink-then-beneath": (
        _tar_release,
        [
            tar_entry("wordpress/up", tarfile.SYMTYPE, linkname="../../sentinel"),
            tar_file("wordpress/up/keep.txt", b"overwritten\n"),
        ],
        "wordpress/up",
        "symlink",
    ),
}


@pytest.fixture(scope="module")
def new_release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_release_archive("wordpress", "6.4.3", tmp_path_factory.mktemp("new"))


@pytest.fixture(scope="module")
def archives(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("hostile")
    out = {}
    for case, (writer, extra, _member, _words) in CASES.items():
        ext = "zip" if writer is _zip_release else "tar.gz"
        out[case] = writer(folder / f"{case}.{ext}", extra)
    return out


@pytest.mark.parametrize("side", ["old", "new"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_build_refuses_hostile_archive(
    case: str, side: str, archives: dict[str, Path], new_release: Path, tmp_path: Path
) -> None:
    _writer, _extra, member, words = CASES[case]
    hostile = archives[case]
    work, sentinel, out = tmp_path / "work", tmp_path / "sentinel", tmp_path / "out"
    sentinel.mkdir()
    (sentinel / "keep.txt").write_bytes(b"keep\n")
    before = tree_state(tmp_path)
    pair = [hostile, new_release] if side == "old" else [new_release, hostile]
    args = ["build", *map(str, pair), "--workdir", str(work), "--out", str(out)]
    result = CliRunner().invoke(cli, args)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert result.exit_code == 2, result.output
    assert hostile.name in result.output and member in result.output, result.output
    assert words in result.output, result.output
    assert not out.exists()
    assert not work.exists() or os.listdir(work) == [], os.listdir(work)
    after = tree_state(tmp_path)
    # NOTE: "." changes only by its link count (the work folder appeared).
    assert {k for k in after if after[k] != before.get(k)} <= {b".", b"work"}
    assert not os.path.exists(ESCAPE) and not os.path.exists("/etc/patchd-adv-x")
    assert not (tmp_path.parent / "evil.php").exists()


def test_the_release_part_alone_builds(new_release: Path, tmp_path: Path) -> None:
    """Control: the same archive without the hostile member is a valid OLD release."""
    plain = _tar_release(tmp_path / "plain.tar.gz", [])
    args = ["build", str(plain), str(new_release), "--workdir", str(tmp_path / "w")]
    args += ["--undecided", "drop"]
    args += ["--auto", "--threshold", "0.5", "--out", str(tmp_path / "out")]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
