"""Selective extraction for backport releases (issue 13: ten backports within 3x of a build):
only the wanted files are written, every member is still read and checked, and the
release is recognised exactly as from a whole extraction."""

from __future__ import annotations

import os
import tarfile
from pathlib import Path

import pytest

from patchd.bundle.builder import DETECTION_FILES, open_backport
from patchd.release.archive import open_release_links
from patchd.releases import detect_release
from patchd_fixtures.families import FAMILIES
from patchd_fixtures.releases import write_release_archive
from tests.release.helpers import tar_entry, tar_file, write_tar


def _files(root: Path) -> set[str]:
    out = set()
    for folder, _dirs, files in os.walk(root):
        for name in files:
            out.add(os.path.relpath(os.path.join(folder, name), root))
    return out


def test_only_wanted_files_are_written(tmp_path: Path) -> None:
    archive = write_tar(
        tmp_path / "r.tar.gz",
        [
            tar_file("pkg/a.php", b"a\n"),
            tar_file("pkg/sub/b.php", b"b\n"),
            tar_file("pkg/sub/c.php", b"c\n"),
            tar_entry("pkg/link", tarfile.SYMTYPE, linkname="sub"),
        ],
        "gz",
    )
    root, links = open_release_links(archive, tmp_path / "w", wanted={"sub/b.php"}.__contains__)
    assert root.name == "pkg"
    assert _files(root) == {"sub/b.php"}
    assert (root / "sub/b.php").read_bytes() == b"b\n"
    assert links == {"link": "sub"}  # links are recorded as in a whole extraction


def test_a_skipped_top_level_file_keeps_the_root(tmp_path: Path) -> None:
    archive = write_tar(
        tmp_path / "r.tar", [tar_file("pkg/a.php"), tar_file("README", b"readme\n")]
    )
    root, _ = open_release_links(archive, tmp_path / "w", wanted={"pkg/a.php"}.__contains__)
    whole, _ = open_release_links(archive, tmp_path / "w2")
    # NOTE: README is not written, but the archive has two top-level entries: no strip
    assert root.name != "pkg" and whole.name != "pkg"
    assert _files(root) == {"pkg/a.php"}


def test_a_hardlink_to_a_skipped_member_extracts_the_whole_archive(tmp_path: Path) -> None:
    archive = write_tar(
        tmp_path / "r.tar",
        [tar_file("pkg/orig.php", b"orig\n"), tar_entry("pkg/copy.php", tarfile.LNKTYPE,
                                                          linkname="pkg/orig.php")],
    )  # fmt: skip
    root, _ = open_release_links(archive, tmp_path / "w", wanted={"copy.php"}.__contains__)
    assert (root / "copy.php").read_bytes() == b"orig\n"
    assert _files(root) == {"orig.php", "copy.php"}


@pytest.mark.parametrize(
    ("family", "version"),
    [(name, v) for name, fam in sorted(FAMILIES.items()) for v in fam.versions],
)
def test_a_backport_release_is_recognised_as_from_a_whole_extraction(
    tmp_path: Path, family: str, version: str
) -> None:
    archive = write_release_archive(family, version, tmp_path / "rel")
    whole, _ = open_release_links(archive, tmp_path / "whole")
    expected = detect_release(whole)
    rel = open_backport(archive, tmp_path / "work", frozenset(), expected.cms)
    assert (rel.installation.cms, rel.version) == (expected.cms, expected.version)
    # and only detection files were written (the partial tree was enough)
    written = _files(rel.root)
    assert written and written <= DETECTION_FILES, written - DETECTION_FILES
