"""SafeRoot: fd-relative reads that refuse symlinks, FIFOs, devices and escaping paths."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from patchd.errors import UnsafePathError
from patchd.safefs import MAX_SYMLINK_HOPS, DirEntry, SafeRoot, join_rel, split_relpath


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """An account root with a file, a folder, and an outside secret next to it."""
    root = tmp_path / "acct"
    (root / "html" / "sub").mkdir(parents=True)
    (root / "html" / "index.php").write_bytes(b"<?php echo 1;\n")
    (tmp_path / "secret").write_bytes(b"TOP SECRET\n")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "f.php").write_bytes(b"outside\n")
    return root


def test_reads_regular_file(tree: Path) -> None:
    with SafeRoot(tree) as root:
        assert root.read_bytes("html/index.php", max_size=100) == b"<?php echo 1;\n"
        assert root.read_bytes("./html//index.php", max_size=100) == b"<?php echo 1;\n"
        assert root.read_head("html/index.php", 5) == b"<?php"
        assert root.exists("html/index.php")
        assert root.is_file("html/index.php")
        assert root.is_dir("html") and root.is_dir("") and not root.is_dir("html/index.php")
        assert not root.exists("html/missing.php")


@pytest.mark.parametrize("bad", ["/etc/passwd", "../secret", "html/../../secret", "a\x00b"])
def test_refuses_malformed_paths(tree: Path, bad: str) -> None:
    with SafeRoot(tree) as root:
        with pytest.raises(UnsafePathError):
            root.read_bytes(bad, max_size=100)
        with pytest.raises(UnsafePathError):
            root.exists(bad)
        with pytest.raises(UnsafePathError):
            root.listdir(bad)


def test_refuses_final_symlink(tree: Path) -> None:
    (tree / "html" / "link.php").symlink_to(tree.parent / "secret")
    with SafeRoot(tree) as root:
        with pytest.raises(UnsafePathError, match="symlink"):
            root.read_bytes("html/link.php", max_size=100)
        with pytest.raises(UnsafePathError, match="symlink"):
            root.read_head("html/link.php", 10)
        assert root.exists("html/link.php")  # the link itself exists
        assert root.is_symlink("html/link.php") and not root.is_file("html/link.php")
        assert root.readlink("html/link.php") == str(tree.parent / "secret")


def test_refuses_symlink_inside_root_too(tree: Path) -> None:
    (tree / "html" / "alias.php").symlink_to("index.php")
    with SafeRoot(tree) as root, pytest.raises(UnsafePathError, match="symlink"):
        root.read_bytes("html/alias.php", max_size=100)


def test_refuses_intermediate_symlink(tree: Path) -> None:
    (tree / "html" / "out").symlink_to(tree.parent / "outside")
    with SafeRoot(tree) as root:
        with pytest.raises(UnsafePathError, match="'html/out' is a symlink"):
            root.read_bytes("html/out/f.php", max_size=100)
        with pytest.raises(UnsafePathError, match="symlink"):
            root.listdir("html/out")
        with pytest.raises(UnsafePathError, match="symlink"):
            root.open_dir("html/out")
        assert not root.exists("html/out/f.php")
        assert not root.is_dir("html/out")


def test_refuses_fifo_without_hanging(tree: Path) -> None:
    os.mkfifo(tree / "html" / "pipe.php")
    result: list[BaseException] = []

    def read() -> None:
        try:
            with SafeRoot(tree) as root:
                root.read_bytes("html/pipe.php", max_size=100)
        except BaseException as exc:
            result.append(exc)

    t = threading.Thread(target=read, daemon=True)
    t.start()
    t.join(5)
    assert not t.is_alive(), "reading a FIFO hung"
    assert isinstance(result[0], UnsafePathError)
    assert "not a regular file (FIFO)" in str(result[0])


def test_refuses_folder_and_too_large(tree: Path) -> None:
    (tree / "html" / "big.php").write_bytes(b"x" * 1000)
    with SafeRoot(tree) as root:
        with pytest.raises(UnsafePathError, match=r"not a regular file \(folder\)"):
            root.read_bytes("html/sub", max_size=100)
        with pytest.raises(UnsafePathError, match="too large"):
            root.read_bytes("html/big.php", max_size=999)
        assert root.read_bytes("html/big.php", max_size=1000) == b"x" * 1000
        assert root.read_head("html/big.php", 10) == b"x" * 10


def test_file_where_folder_expected(tree: Path) -> None:
    with SafeRoot(tree) as root:
        with pytest.raises(UnsafePathError, match=r"'html/index\.php' is a file, not a folder"):
            root.listdir("html/index.php")
        assert not root.exists("html/index.php/x")


def test_listdir_kinds_and_non_utf8_names(tree: Path) -> None:
    os.mkfifo(tree / "html" / "pipe")
    (tree / "html" / "ln").symlink_to("/etc")
    raw = os.fsencode(tree / "html") + b"/caf\xe9\nx.php"
    with open(raw, "wb") as fh:
        fh.write(b"latin1 name")
    with SafeRoot(tree) as root:
        listing = root.listdir("html")
        name = os.fsdecode(b"caf\xe9\nx.php")
        assert listing == sorted(
            [
                DirEntry("index.php", "file"),
                DirEntry("sub", "dir"),
                DirEntry("pipe", "other"),
                DirEntry("ln", "symlink"),
                DirEntry(name, "file"),
            ]
        )
        assert root.read_bytes(f"html/{name}", max_size=100) == b"latin1 name"


def test_stat_file_does_not_follow(tree: Path) -> None:
    (tree / "html" / "ln").symlink_to(tree.parent / "secret")
    with SafeRoot(tree) as root:
        st = root.stat_file("html/index.php")
        assert st.size == 14 and st.nlink == 1 and st.uid == os.getuid()
        lst = root.stat_file("html/ln")
        assert lst.ino == os.lstat(tree / "html" / "ln").st_ino


def test_resolve_symlink_inside(tree: Path) -> None:
    h = tree / "html"
    (tree / "typo3_src-12.4.10" / "typo3").mkdir(parents=True)
    (tree / "typo3_src").symlink_to("typo3_src-12.4.10")
    (tree / "typo3").symlink_to("typo3_src/typo3")
    (h / "abs_in").symlink_to(tree / "typo3_src-12.4.10")
    (h / "abs_out").symlink_to("/var/www/shared/typo3_src-12.4.10")
    (h / "up_out").symlink_to("../../outside")
    (h / "up_in").symlink_to("../typo3")
    (h / "dangling").symlink_to("nothere/x")
    with SafeRoot(tree) as root:
        assert root.resolve_symlink_inside("typo3_src") == "typo3_src-12.4.10"
        assert root.resolve_symlink_inside("typo3") == "typo3_src-12.4.10/typo3"
        assert root.resolve_symlink_inside("html/abs_in") == "typo3_src-12.4.10"
        assert root.resolve_symlink_inside("html/abs_out") is None
        assert root.resolve_symlink_inside("html/up_out") is None
        assert root.resolve_symlink_inside("html/up_in") == "typo3_src-12.4.10/typo3"
        assert root.resolve_symlink_inside("html/dangling") == "html/nothere/x"
        assert root.resolve_symlink_inside("html/index.php") == "html/index.php"
        assert root.resolve_symlink_inside("") == ""


def test_resolve_symlink_loops_and_long_chains(tree: Path) -> None:
    (tree / "a").symlink_to("b")
    (tree / "b").symlink_to("a")
    for i in range(MAX_SYMLINK_HOPS + 5):
        (tree / f"c{i}").symlink_to(f"c{i + 1}")
    with SafeRoot(tree) as root:
        with pytest.raises(UnsafePathError, match="symlinks in a chain"):
            root.resolve_symlink_inside("a")
        with pytest.raises(UnsafePathError, match="symlinks in a chain"):
            root.resolve_symlink_inside("c0")
        assert root.resolve_symlink_inside(f"c{10}") == f"c{MAX_SYMLINK_HOPS + 5}"


def test_root_must_be_absolute_and_closes(tree: Path) -> None:
    with pytest.raises(UnsafePathError, match="absolute"):
        SafeRoot("relative/root")
    root = SafeRoot(tree)
    root.close()
    root.close()
    with pytest.raises(ValueError, match="closed"):
        root.listdir("")


def test_no_descriptor_leak(tree: Path) -> None:
    before = len(os.listdir("/proc/self/fd"))
    with SafeRoot(tree) as root:
        for _ in range(50):
            root.listdir("html")
            root.read_bytes("html/index.php", max_size=100)
            root.exists("html/nope/x")
            with pytest.raises(UnsafePathError):
                root.read_bytes("html/sub", max_size=10)
    assert len(os.listdir("/proc/self/fd")) == before


def test_helpers() -> None:
    assert split_relpath("./a//b/.") == ["a", "b"]
    assert split_relpath("") == []
    assert join_rel("", "a/", "b") == "a/b"


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_caching_folders_reads_the_same_and_closes_its_descriptors(tree: Path) -> None:
    (tree / "a/b/c").mkdir(parents=True)
    (tree / "a/b/c/f.txt").write_text("deep\n")
    (tree / "a/b/link").symlink_to("c")
    before = _open_fds()
    with SafeRoot(tree) as root:
        plain = (root.read_bytes("a/b/c/f.txt", max_size=99), root.listdir("a/b"))
        with root.caching_folders():
            for _ in range(3):
                assert (root.read_bytes("a/b/c/f.txt", max_size=99), root.listdir("a/b")) == plain
                assert root.is_dir("a/b/c") and not root.is_dir("a/b/link")
                with pytest.raises(UnsafePathError, match="symlink"):
                    root.read_bytes("a/b/link/f.txt", max_size=99)
                with pytest.raises(FileNotFoundError):
                    root.read_bytes("a/missing/f.txt", max_size=99)
            assert _open_fds() > before + 1  # the root and cached folders
        assert _open_fds() == before + 1  # only the root's descriptor is left
    assert _open_fds() == before


def test_caching_folders_keeps_at_most_its_budget(
    tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import patchd.safefs as safefs

    monkeypatch.setattr(safefs, "DIR_CACHE_MAX", 2)
    (tree / "a/b/c/d").mkdir(parents=True)
    (tree / "a/b/c/d/f").write_text("x")
    before = _open_fds()
    with SafeRoot(tree) as root, root.caching_folders():
        assert root.read_bytes("a/b/c/d/f", max_size=9) == b"x"
        assert root.read_bytes("a/b/c/d/f", max_size=9) == b"x"
        assert _open_fds() == before + 1 + 2
    assert _open_fds() == before
