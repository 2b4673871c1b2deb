"""Hostile archives: each is refused with an ArchiveError naming the member, nothing is
written outside the work folder, and the partial extraction is removed."""

from __future__ import annotations

import gzip
import os
import stat
import tarfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from patchd.errors import ArchiveError
from patchd.release.archive import ArchiveLimits, open_release, open_release_links
from tests.release.helpers import (
    snapshot,
    tar_entry,
    tar_file,
    write_tar,
    write_zip,
    zip_info,
)


@dataclass(frozen=True)
class Area:
    """A test's folders: ``work`` for extraction, ``sentinel`` beside it, ``inputs``."""

    root: Path
    work: Path
    sentinel: Path
    inputs: Path
    #: None: full extraction; else a backport's selective extraction (issue 13), which
    #: must refuse every hostile archive the same way
    wanted: Callable[[str], bool] | None = None

    def refused(
        self,
        archive: Path,
        member: str,
        words: str,
        *,
        limits: ArchiveLimits | None = None,
    ) -> ArchiveError:
        """Assert the archive is refused naming ``member`` and saying ``words``."""
        before = snapshot(self.root)
        with pytest.raises(ArchiveError) as info:
            if limits is None:
                open_release_links(archive, self.work, wanted=self.wanted)
            else:
                open_release_links(archive, self.work, limits=limits, wanted=self.wanted)
        err = info.value
        assert err.archive == str(archive)
        assert err.member is not None and member in err.member, (err.member, member)
        assert words in err.message, err.message
        assert repr(err.member) in str(err)
        assert os.listdir(self.work) == [], "partial extraction left behind"
        assert snapshot(self.root) == before, "something changed outside the work folder"
        return err


@pytest.fixture(params=["full", "selective"])
def area(tmp_path: Path, request: pytest.FixtureRequest) -> Area:
    work, sentinel, inputs = tmp_path / "work", tmp_path / "sentinel", tmp_path / "in"
    for p in (work, sentinel, inputs):
        p.mkdir()
    (sentinel / "keep.txt").write_bytes(b"keep\n")
    wanted = None if request.param == "full" else (lambda path: path.endswith("version.php"))
    return Area(tmp_path, work, sentinel, inputs, wanted)


# -- traversal ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["../x", "a/../../x", "../../x", "pkg/../../../x"])
def test_tar_dotdot_refused(area: Area, name: str) -> None:
    arc = write_tar(area.inputs / "t.tar", [tar_file("pkg/ok.txt"), tar_file(name)])
    area.refused(arc, name, "'..'")


@pytest.mark.parametrize("name", ["../x", "a/../../x"])
def test_zip_dotdot_refused(area: Area, name: str) -> None:
    arc = write_zip(
        area.inputs / "z.zip", [(zip_info("pkg/ok.txt"), b"ok"), (zip_info(name), b"x")]
    )
    area.refused(arc, name, "'..'")


def test_tar_absolute_refused(area: Area) -> None:
    target = f"/tmp/patchd-escape-{uuid.uuid4().hex}"
    arc = write_tar(area.inputs / "t.tar.gz", [tar_file(target)], "gz")
    area.refused(arc, target, "absolute")
    assert not os.path.exists(target)


def test_tar_etc_refused(area: Area) -> None:
    arc = write_tar(area.inputs / "t.tar", [tar_file("/etc/patchd-test-x")])
    area.refused(arc, "/etc/patchd-test-x", "absolute")
    assert not os.path.exists("/etc/patchd-test-x")


def test_zip_absolute_refused(area: Area) -> None:
    target = f"/tmp/patchd-escape-{uuid.uuid4().hex}"
    arc = write_zip(area.inputs / "z.zip", [(zip_info(target), b"x")])
    area.refused(arc, target, "absolute")
    assert not os.path.exists(target)


def test_zip_slip_refused(area: Area) -> None:
    arc = write_zip(area.inputs / "z.zip", [(zip_info("../../evil.sh"), b"#!/bin/sh\n")])
    area.refused(arc, "../../evil.sh", "'..'")


def test_zip_backslash_traversal_refused(area: Area) -> None:
    name = "..\\..\\evil.php"
    arc = write_zip(area.inputs / "z.zip", [(zip_info(name), b"<?php\n")])
    area.refused(arc, name, "backslash")


def test_zip_nul_in_name_refused(area: Area) -> None:
    arc = write_zip(area.inputs / "z.zip", [(zip_info("okXevil.php"), b"x")])
    raw = arc.read_bytes()
    assert raw.count(b"okXevil.php") == 2  # local header and central directory
    arc.write_bytes(raw.replace(b"okXevil.php", b"ok\x00evil.php"))
    area.refused(arc, "ok\x00evil.php", "NUL")


def test_tar_nul_in_name_refused(area: Area) -> None:
    info, data = tar_file("okXevil.php")
    info.pax_headers = {"path": "ok\x00evil.php"}
    arc = write_tar(area.inputs / "t.tar", [(info, data)])
    area.refused(arc, "ok\x00evil.php", "NUL")


def test_newline_in_name_refused(area: Area) -> None:
    arc = write_tar(area.inputs / "t.tar", [tar_file("a\nb.php")])
    area.refused(arc, "a\nb.php", "control character")


def test_too_deep_refused(area: Area) -> None:
    name = "/".join(["d"] * 70) + "/f"
    arc = write_tar(area.inputs / "t.tar", [tar_file(name)])
    area.refused(arc, name, "deeper")


def test_too_long_name_refused(area: Area) -> None:
    name = "/".join(["d" * 200] * 6)
    arc = write_tar(area.inputs / "t.tar", [tar_file(name)])
    area.refused(arc, name, "longer than 1024")


def test_component_longer_than_name_max_refused(area: Area) -> None:
    name = "pkg/" + "n" * 300
    arc = write_tar(area.inputs / "t.tar", [tar_file(name)])
    area.refused(arc, name, "component longer")


# -- links and special members ------------------------------------------------------------


def test_tar_symlink_out_then_file_beneath_refused(area: Area) -> None:
    arc = write_tar(
        area.inputs / "t.tar",
        [
            tar_entry("pkg/evil", tarfile.SYMTYPE, linkname=str(area.sentinel)),
            tar_file("pkg/evil/pwned.txt", b"pwned\n"),
        ],
    )
    area.refused(arc, "pkg/evil", "leaves the release tree")
    assert sorted(os.listdir(area.sentinel)) == ["keep.txt"]


def test_tar_relative_symlink_out_refused(area: Area) -> None:
    arc = write_tar(
        area.inputs / "t.tar",
        [
            tar_entry("pkg/up", tarfile.SYMTYPE, linkname="../../sentinel"),
            tar_file("pkg/up/pwned.txt"),
        ],
    )
    area.refused(arc, "pkg/up", "leaves the release tree")


def test_tar_symlink_inside_tree_is_recorded_never_created(area: Area) -> None:
    """Vendors ship relative links (issue 12): recorded with their target, not created."""
    arc = write_tar(
        area.inputs / "t.tar",
        [
            tar_file("pkg/real.php"),
            tar_entry("pkg/alias.php", tarfile.SYMTYPE, linkname="real.php"),
            tar_entry("pkg/public_html/plugins", tarfile.SYMTYPE, linkname="../plugins"),
        ],
    )
    root, links = open_release_links(arc, area.work)
    assert links == {"alias.php": "real.php", "public_html/plugins": "../plugins"}
    assert not any(p.is_symlink() for p in area.work.rglob("*"))
    assert not (root / "alias.php").exists() and (root / "public_html").is_dir()


def test_member_beneath_a_recorded_symlink_refused(area: Area) -> None:
    arc = write_tar(
        area.inputs / "t.tar",
        [
            tar_entry("pkg/plugins", tarfile.SYMTYPE, linkname="real"),
            tar_file("pkg/plugins/pwned.php", b"<?php\n"),
        ],
    )
    area.refused(arc, "pkg/plugins/pwned.php", "beneath symlink member 'pkg/plugins'")


def test_member_at_a_recorded_symlink_path_refused(area: Area) -> None:
    arc = write_tar(
        area.inputs / "t.tar",
        [tar_entry("pkg/a", tarfile.SYMTYPE, linkname="b"), tar_file("pkg/a", b"x\n")],
    )
    area.refused(arc, "pkg/a", "duplicate member")


def test_symlink_split_over_two_archives(area: Area) -> None:
    first = write_tar(
        area.inputs / "1.tar",
        [tar_entry("evil", tarfile.SYMTYPE, linkname=str(area.sentinel))],
    )
    second = write_tar(area.inputs / "2.tar", [tar_file("evil/pwned.txt", b"pwned\n")])
    area.refused(first, "evil", "leaves the release tree")
    root = open_release(second, area.work)
    # the second archive lands in its own fresh folder: "evil" is a plain folder there
    assert root.is_relative_to(area.work)
    assert (root / "pwned.txt").read_bytes() == b"pwned\n"
    assert not any(p.is_symlink() for p in area.work.rglob("*"))
    assert sorted(os.listdir(area.sentinel)) == ["keep.txt"]


def test_zip_symlink_out_refused(area: Area) -> None:
    link = zip_info("pkg/evil", unix_mode=stat.S_IFLNK | 0o777)
    arc = write_zip(
        area.inputs / "z.zip",
        [(link, str(area.sentinel).encode()), (zip_info("pkg/evil/pwned.txt"), b"pwned")],
    )
    area.refused(arc, "pkg/evil", "leaves the release tree")


def test_symlink_chain_longer_than_path_max_refused(area: Area) -> None:
    # The CVE-2025-4517 shape: long folder names with short links to them, so that
    # resolving the chain passes PATH_MAX, then a link climbing out and a file beneath it.
    comp = "d" * 247
    steps = "abcdefghijklmnop"
    members = []
    path = ""
    for step in steps:
        members.append(tar_entry(os.path.join(path, comp), tarfile.DIRTYPE, mode=0o755))
        members.append(tar_entry(os.path.join(path, step), tarfile.SYMTYPE, linkname=comp))
        path = os.path.join(path, comp)
    link_path = os.path.join(*steps, "l" * 254)
    members.append(tar_entry(link_path, tarfile.SYMTYPE, linkname="../" * len(steps)))
    members.append(tar_entry("escape", tarfile.SYMTYPE, linkname=link_path + "/../" * 2))
    members.append(tar_file("escape/pwned.txt", b"pwned\n"))
    arc = write_tar(area.inputs / "t.tar", members)
    # NOTE: links are recorded, never created: the chain's first member beneath a
    # recorded link is refused, whatever the limits.
    area.refused(arc, "/".join([comp] * 5), "member name longer than 1024 bytes")
    wide = ArchiveLimits(max_path_length=16384, max_depth=200)
    area.refused(arc, link_path, "beneath symlink member 'a'", limits=wide)


def test_long_symlink_target_refused(area: Area) -> None:
    target = "/".join(["x" * 100] * 50)  # 5 KB, longer than PATH_MAX
    arc = write_tar(area.inputs / "t.tar", [tar_entry("pkg/l", tarfile.SYMTYPE, linkname=target)])
    area.refused(arc, "pkg/l", "symlink target longer")


def test_hardlink_to_outside_refused(area: Area) -> None:
    arc = write_tar(
        area.inputs / "t.tar",
        [tar_entry("pkg/keep.txt", tarfile.LNKTYPE, linkname=str(area.sentinel / "keep.txt"))],
    )
    area.refused(arc, "pkg/keep.txt", "hardlink")


def test_hardlink_inside_reads_as_its_target(area: Area) -> None:
    arc = write_tar(
        area.inputs / "t.tar",
        [
            tar_file("pkg/a.txt", b"shared\n"),
            tar_entry("pkg/b.txt", tarfile.LNKTYPE, linkname="pkg/a.txt"),
        ],
    )
    root = open_release(arc, area.work)
    assert (root / "b.txt").read_bytes() == b"shared\n"
    assert os.stat(root / "a.txt").st_ino != os.stat(root / "b.txt").st_ino  # a copy


def test_hardlink_to_a_later_or_missing_member_refused(area: Area) -> None:
    arc = write_tar(
        area.inputs / "t.tar",
        [tar_entry("pkg/b.txt", tarfile.LNKTYPE, linkname="pkg/a.txt"), tar_file("pkg/a.txt")],
    )
    area.refused(arc, "pkg/b.txt", "no earlier file member")


def test_hardlink_to_a_symlink_member_refused(area: Area) -> None:
    arc = write_tar(
        area.inputs / "t.tar",
        [
            tar_entry("pkg/l", tarfile.SYMTYPE, linkname="x"),
            tar_entry("pkg/h", tarfile.LNKTYPE, linkname="pkg/l"),
        ],
    )
    area.refused(arc, "pkg/h", "no earlier file member")


def test_fifo_member_refused(area: Area) -> None:
    arc = write_tar(area.inputs / "t.tar", [tar_entry("pkg/fifo", tarfile.FIFOTYPE)])
    area.refused(arc, "pkg/fifo", "FIFO")


def test_zip_fifo_member_refused(area: Area) -> None:
    arc = write_zip(
        area.inputs / "z.zip", [(zip_info("pkg/fifo", unix_mode=stat.S_IFIFO | 0o644), b"")]
    )
    area.refused(arc, "pkg/fifo", "special type")


@pytest.mark.parametrize("kind", [tarfile.CHRTYPE, tarfile.BLKTYPE])
def test_device_member_refused(area: Area, kind: bytes) -> None:
    info, data = tar_entry("pkg/null", kind)
    info.devmajor, info.devminor = 1, 3
    arc = write_tar(area.inputs / "t.tar", [(info, data)])
    area.refused(arc, "pkg/null", "device")


# -- duplicates and clashes ---------------------------------------------------------------


def test_tar_duplicate_member_refused(area: Area) -> None:
    arc = write_tar(
        area.inputs / "t.tar", [tar_file("pkg/a.php", b"1"), tar_file("pkg/a.php", b"2")]
    )
    area.refused(arc, "pkg/a.php", "duplicate")


def test_tar_duplicate_after_normalising_refused(area: Area) -> None:
    arc = write_tar(area.inputs / "t.tar", [tar_file("pkg/a.php", b"1"), tar_file("./pkg//a.php")])
    area.refused(arc, "pkg/a.php", "duplicate")


def test_zip_duplicate_member_refused(area: Area) -> None:
    arc = write_zip(
        area.inputs / "z.zip", [(zip_info("pkg/a.php"), b"1"), (zip_info("pkg/a.php"), b"2")]
    )
    area.refused(arc, "pkg/a.php", "duplicate")


def test_member_beneath_file_refused(area: Area) -> None:
    arc = write_tar(area.inputs / "t.tar", [tar_file("pkg/a"), tar_file("pkg/a/b")])
    area.refused(arc, "pkg/a/b", "beneath file")


def test_file_where_folder_is_refused(area: Area) -> None:
    arc = write_tar(area.inputs / "t.tar", [tar_file("pkg/a/b"), tar_file("pkg/a")])
    area.refused(arc, "pkg/a", "clashes with a folder")


# -- sizes and bombs ----------------------------------------------------------------------


def test_tar_too_many_members_refused(area: Area) -> None:
    arc = write_tar(area.inputs / "t.tar", [tar_file(f"pkg/f{i}") for i in range(6)])
    area.refused(arc, "pkg/f5", "more than 5 members", limits=ArchiveLimits(max_members=5))


def test_zip_too_many_members_refused(area: Area) -> None:
    arc = write_zip(area.inputs / "z.zip", [(zip_info(f"pkg/f{i}"), b"x") for i in range(6)])
    area.refused(arc, "pkg/f5", "more than 5 members", limits=ArchiveLimits(max_members=5))


def test_tar_huge_declared_size_refused(area: Area) -> None:
    info = tarfile.TarInfo("pkg/huge.bin")
    info.size = 10 * 2**30  # 10 GiB declared, no data follows
    arc = area.inputs / "t.tar.gz"
    arc.write_bytes(gzip.compress(info.tobuf(tarfile.PAX_FORMAT) + b"\0" * 1024))
    area.refused(arc, "pkg/huge.bin", "declared size")


def test_zip_huge_declared_size_refused(area: Area) -> None:
    arc = write_zip(area.inputs / "z.zip", [(zip_info("pkg/huge.bin"), b"small")])
    raw = bytearray(arc.read_bytes())
    central = raw.index(b"PK\x01\x02")
    raw[central + 24 : central + 28] = (0xFFFFFFF0).to_bytes(4, "little")
    arc.write_bytes(bytes(raw))
    area.refused(arc, "pkg/huge.bin", "declared size")


def test_declared_total_above_limit_refused(area: Area) -> None:
    arc = write_tar(area.inputs / "t.tar", [tar_file(f"pkg/f{i}", b"x" * 600) for i in range(3)])
    limits = ArchiveLimits(max_total_size=1000)
    area.refused(arc, "pkg/f1", "declared sizes add up", limits=limits)


ZEROS = b"\0" * (50 * 1024 * 1024)


def test_tar_gz_ratio_bomb_refused(area: Area) -> None:
    arc = write_tar(area.inputs / "bomb.tar.gz", [tar_file("pkg/zeros.bin", ZEROS)], "gz")
    assert arc.stat().st_size < 200_000
    area.refused(arc, "pkg/zeros.bin", "compression ratio")


def test_zip_ratio_bomb_refused(area: Area) -> None:
    arc = write_zip(area.inputs / "bomb.zip", [(zip_info("pkg/zeros.bin"), ZEROS)])
    area.refused(arc, "pkg/zeros.bin", "compression ratio")


def test_member_larger_than_limit_while_streaming(area: Area) -> None:
    arc = write_zip(area.inputs / "z.zip", [(zip_info("pkg/big.bin"), os.urandom(3000))])
    raw = bytearray(arc.read_bytes())
    # the declared sizes lie (say 100 bytes): the real bytes are what is counted
    for sig, off in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        at = raw.index(sig)
        raw[at + off : at + off + 4] = (100).to_bytes(4, "little")
    arc.write_bytes(bytes(raw))
    err = area.refused(arc, "pkg/big.bin", "", limits=ArchiveLimits(max_member_size=1000))
    assert "corrupt" in err.message or "unpacks" in err.message


# -- broken input -------------------------------------------------------------------------


def test_truncated_gzip_refused(area: Area) -> None:
    arc = write_tar(area.inputs / "t.tar.gz", [tar_file("pkg/a.txt", os.urandom(20000))], "gz")
    arc.write_bytes(arc.read_bytes()[:-2000])
    with pytest.raises(ArchiveError) as info:
        open_release(arc, area.work)
    assert "corrupt" in info.value.message or "cannot extract" in info.value.message
    assert os.listdir(area.work) == []


def test_garbage_after_end_refused(area: Area) -> None:
    arc = write_tar(area.inputs / "t.tar", [tar_file("pkg/a.txt")])
    arc.write_bytes(arc.read_bytes() + b"garbage" * 100)
    with pytest.raises(ArchiveError) as info:
        open_release(arc, area.work)
    assert "after the end" in info.value.message
    assert os.listdir(area.work) == []


def test_not_an_archive_refused(area: Area) -> None:
    bogus = area.inputs / "release.tar.gz"
    bogus.write_bytes(b"<html>404 not found</html>")
    with pytest.raises(ArchiveError, match="not a supported archive"):
        open_release(bogus, area.work)
    assert os.listdir(area.work) == []


def test_missing_source_refused(area: Area) -> None:
    with pytest.raises(ArchiveError, match="no such archive"):
        open_release(area.inputs / "nope.tar.gz", area.work)


def test_empty_archive_refused(area: Area) -> None:
    arc = write_tar(area.inputs / "t.tar", [])
    with pytest.raises(ArchiveError, match="no members"):
        open_release(arc, area.work)
    assert os.listdir(area.work) == []
