"""Brief, reproducible fuzzing of the diff parser, the archive reader and the inventory
loader (150 examples each, derandomized); ``bench/fuzz.py --minutes N`` runs longer with
random seeds. Crashes found by fuzzing are kept below as regression cases."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from patchd.engine.parse import parse_diff
from patchd.errors import ArchiveError, DiffParseError
from patchd.inventory import load_inventory
from patchd.release.archive import open_release
from tests.fuzz import props

CI = settings(
    max_examples=150,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,
)


@CI
@given(props.diff_inputs())
def test_fuzz_parse_diff(data: bytes) -> None:
    props.check_parse(data)


@CI
@given(props.archive_inputs())
def test_fuzz_open_release(case: tuple[str, bytes]) -> None:
    props.check_archive(*case)


@CI
@given(props.inventory_inputs())
def test_fuzz_load_inventory(data: bytes) -> None:
    props.check_inventory(data)


@pytest.mark.parametrize("seed", props.DIFF_SEEDS)
def test_diff_seeds_parse(seed: bytes) -> None:
    """The seeds are valid, so mutations start from real diffs."""
    assert parse_diff(seed)


@pytest.mark.parametrize("ext", [".tar.gz", ".tar", ".zip"])
def test_archive_seeds_extract(ext: str, tmp_path: Path) -> None:
    """The seeds are valid releases, so mutations start from archives that extract."""
    data = {".tar.gz": props.tar_seed("gz"), ".tar": props.tar_seed(""), ".zip": props.zip_seed()}
    source = tmp_path / f"seed{ext}"
    source.write_bytes(data[ext])
    root = open_release(source, tmp_path / "work", limits=props.FUZZ_LIMITS)
    assert (root / "wp-includes" / "version.php").is_file()


def test_inventory_seed_loads(tmp_path: Path) -> None:
    path = tmp_path / "accounts.yaml"
    path.write_text(props.INVENTORY_SEED)
    assert len(load_inventory(path).accounts) == 3


# -- regressions found by fuzzing --------------------------------------------------------


def test_zip_member_with_unsupported_method_is_an_archive_error(tmp_path: Path) -> None:
    """Found by bench/fuzz.py: a zip member declaring compression method 9 (deflate64) made
    zipfile raise NotImplementedError, which escaped ``open_release`` as a crash."""
    data = bytearray(props.zip_seed())
    central = data.rfind(b"PK\x01\x02")  # the last member's central directory entry
    data[central + 10 : central + 12] = (9).to_bytes(2, "little")
    source = tmp_path / "deflate64.zip"
    source.write_bytes(bytes(data))
    with pytest.raises(ArchiveError) as info:
        open_release(source, tmp_path / "work")
    assert "compression method 9" in str(info.value)
    assert "comment-template.php" in str(info.value)
    assert os.listdir(tmp_path / "work") == []
    props.check_archive(".zip", bytes(data))


def _zip_with(edit: Callable[[bytearray, int], None], tmp_path: Path) -> Path:
    data = bytearray(props.zip_seed())
    edit(data, data.rfind(b"PK\x01\x02"))
    source = tmp_path / "edited.zip"
    source.write_bytes(bytes(data))
    return source


def _newer_version(data: bytearray, central: int) -> None:
    data[central + 6 : central + 8] = (75).to_bytes(2, "little")


def _bad_utf8_name(data: bytearray, central: int) -> None:
    flags = int.from_bytes(data[central + 8 : central + 10], "little") | 0x800
    data[central + 8 : central + 10] = flags.to_bytes(2, "little")
    name = central + 46
    data[name] = 0xFF


@pytest.mark.parametrize("edit", [_newer_version, _bad_utf8_name], ids=["version-7.5", "utf8"])
def test_zip_that_zipfile_cannot_read_is_an_archive_error(
    edit: Callable[[bytearray, int], None], tmp_path: Path
) -> None:
    """Found by bench/fuzz.py: "zip file version 7.5" (NotImplementedError) escaped
    ``open_release``; a name flagged UTF-8 that is not would raise UnicodeDecodeError."""
    source = _zip_with(edit, tmp_path)
    with pytest.raises(ArchiveError) as info:
        open_release(source, tmp_path / "work")
    assert "edited.zip" in str(info.value)
    assert os.listdir(tmp_path / "work") == []


@pytest.mark.parametrize("tail", [b"", b"--- /dev/null\n+++ /dev/null\n@@ -0,0 +0,0 @@\n"])
def test_git_block_both_new_and_deleted_is_a_parse_error(tail: bytes) -> None:
    """Found by bench/fuzz.py: 'new file mode' and 'deleted file mode' in one git block made
    a FilePatch without any name (an AssertionError escaped ``parse_diff``)."""
    diff = b"diff --git a/x b/x\nnew file mode 100644\ndeleted file mode 100644\n" + tail
    with pytest.raises(DiffParseError) as info:
        parse_diff(diff)
    assert "line 3" in str(info.value)
    props.check_parse(diff)
