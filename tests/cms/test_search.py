"""find_installations: depth bound, skip rules, symlinks, nesting, problems, speed."""

from __future__ import annotations

import os
import time
from pathlib import Path

from patchd.cms.interface import Installation, ScanProblem
from patchd.cms.search import find_installations
from patchd.safefs import SafeRoot
from tests.cms.trees import make_tree, typo3_core, wordpress


def _scan(base: Path, **kwargs: object) -> tuple[dict[str, Installation], list[ScanProblem]]:
    found: dict[str, Installation] = {}
    problems: list[ScanProblem] = []
    with SafeRoot(base) as root:
        for item in find_installations(root, **kwargs):  # type: ignore[arg-type]
            if isinstance(item, Installation):
                assert item.path not in found, f"reported twice: {item.path}"
                found[item.path] = item
            else:
                problems.append(item)
    return found, problems


def _rc(version: str = "1.6.6") -> dict[str, str | bytes]:
    return {"program/include/iniset.php": f"<?php\ndefine('RCMAIL_VERSION', '{version}');\n"}


def test_finds_root_and_nested_installations(tmp_path: Path) -> None:
    make_tree(tmp_path / "html", wordpress("6.4.3"))
    make_tree(tmp_path / "html/webmail", _rc())
    make_tree(tmp_path / "html/shop/old-blog", wordpress("5.0.1"))
    # inside the installation's own folders nothing is searched again
    make_tree(tmp_path / "html/wp-content/plugins/bundled", _rc("0.1"))
    found, problems = _scan(tmp_path)
    assert problems == []
    assert {p: (i.cms, i.version) for p, i in found.items()} == {
        "html": ("wordpress", "6.4.3"),
        "html/webmail": ("roundcube", "1.6.6"),
        "html/shop/old-blog": ("wordpress", "5.0.1"),
    }


def test_depth_bound(tmp_path: Path) -> None:
    make_tree(tmp_path / "a/b/c/d", _rc("1.0.0"))  # depth 4 from the root
    make_tree(tmp_path / "a/b/c/d/e", _rc("2.0.0"))  # depth 5
    found, _ = _scan(tmp_path)
    assert set(found) == {"a/b/c/d"}
    found, _ = _scan(tmp_path, max_depth=3)
    assert found == {}
    found, _ = _scan(tmp_path, max_depth=3, docroots=["a"])
    assert set(found) == {"a/b/c/d"}


def test_skip_rules(tmp_path: Path) -> None:
    for folder in ("cache", "node_modules", ".git", "vendor/x", "fileadmin/x"):
        make_tree(tmp_path / folder, _rc())
    make_tree(tmp_path / "site/wp-content/uploads/x", _rc())  # a tail rule (wp-content owned?)
    make_tree(tmp_path / "keep", _rc())
    make_tree(tmp_path / "backup", _rc())  # copies and backups are installations (issue 19)
    found, _ = _scan(tmp_path)
    assert set(found) == {"keep", "backup"}
    found, _ = _scan(tmp_path, skip_dirs=frozenset({"site/wp-content/uploads"}))
    assert "cache" in found and "site/wp-content/uploads/x" not in found
    found, _ = _scan(tmp_path, skip_dirs=frozenset())
    assert "site/wp-content/uploads/x" in found


def test_symlinked_folders_are_not_followed(tmp_path: Path) -> None:
    other = tmp_path / "other-account"
    make_tree(other / "wp", wordpress("4.0"))
    acct = tmp_path / "acct"
    make_tree(acct / "html", {"index.html": "hi"})
    os.symlink(other, acct / "html/linked")
    os.symlink(other / "wp", acct / "linked-wp")
    os.symlink(".", acct / "html/loop")
    found, problems = _scan(acct)
    assert found == {} and problems == []


def test_typo3_links_are_seen_but_not_walked(tmp_path: Path) -> None:
    shared = tmp_path / "shared/typo3_src-12.4.10"
    make_tree(shared, {f"typo3/{k}": v for k, v in typo3_core("12.4.10").items()})
    acct = tmp_path / "acct"
    make_tree(acct / "html", {"index.php": "", "typo3conf/LocalConfiguration.php": ""})
    os.symlink(shared, acct / "html/typo3_src")
    os.symlink("typo3_src/typo3", acct / "html/typo3")
    found, problems = _scan(acct)
    assert problems == []
    assert list(found) == ["html"]
    assert found["html"].version == "12.4.10"
    assert found["html"].facts["typo3_src_outside"] == "yes"


def test_composer_docroot_finds_project_root(tmp_path: Path) -> None:
    make_tree(
        tmp_path / "project",
        {
            "public/index.php": "",
            "vendor/typo3/cms-core/Classes/Information/Typo3Version.php": typo3_core("12.4.9")[
                "sysext/core/Classes/Information/Typo3Version.php"
            ],
        },
    )
    make_tree(tmp_path / "project/public/blog", wordpress("6.0"))
    for docroots in (["project/public"], None):
        found, problems = _scan(tmp_path, docroots=docroots)
        assert problems == []
        assert {p: (i.cms, i.version) for p, i in found.items()} == {
            "project": ("typo3", "12.4.9"),
            "project/public/blog": ("wordpress", "6.0"),
        }


def test_problems_are_reported_not_raised(tmp_path: Path) -> None:
    make_tree(tmp_path / "html/locked", {"x": ""})
    make_tree(tmp_path / "html/ok", _rc())
    os.symlink("/etc", tmp_path / "docroot-link")
    (tmp_path / "html/locked").chmod(0)
    try:
        found, problems = _scan(tmp_path, docroots=["html", "missing", "docroot-link", "../x"])
    finally:
        (tmp_path / "html/locked").chmod(0o755)
    assert set(found) == {"html/ok"}
    messages = {p.path: p.message for p in problems}
    assert messages["missing"] == "folder not searched: No such file or directory"
    assert (
        messages["docroot-link"] == "folder not searched: 'docroot-link' is a symlink, not a folder"
    )
    assert messages["../x"] == "docroot refused: '..' in path"
    if os.geteuid() != 0:  # root reads mode-0 folders anyway
        assert messages["html/locked"] == "folder not searched: Permission denied"


def test_many_small_accounts_scan_fast(tmp_path: Path) -> None:
    """300 accounts of ~25 folders each; the real number is printed for the report."""
    for i in range(300):
        acct = tmp_path / f"p{i}"
        files = wordpress("6.4.3") if i % 3 == 0 else _rc() if i % 3 == 1 else {}
        make_tree(acct / "html", {**files, "img/a/b.png": "", "css/x.css": "", "cache/c": ""})
        for j in range(10):
            (acct / "html" / f"dir{j}" / "sub").mkdir(parents=True)
    start = time.perf_counter()
    total = 0
    for i in range(300):
        found, _ = _scan(tmp_path / f"p{i}")
        total += len(found)
    elapsed = time.perf_counter() - start
    print(f"scanned 300 accounts in {elapsed:.3f}s ({elapsed / 300 * 1e3:.2f} ms/account)")
    assert total == 200
    assert elapsed < 10


def test_wide_folders_and_early_stop_do_not_leak_descriptors(tmp_path: Path) -> None:
    for i in range(300):  # more children than the walk keeps descriptors for
        (tmp_path / f"d{i:03d}" / "x").mkdir(parents=True)
    make_tree(tmp_path / "d299/x/mail", _rc("1.5.0"))
    make_tree(tmp_path / "d000/x/mail", _rc("1.4.0"))
    before = len(os.listdir("/proc/self/fd"))
    found, _ = _scan(tmp_path)
    assert {p: i.version for p, i in found.items()} == {
        "d000/x/mail": "1.4.0",
        "d299/x/mail": "1.5.0",
    }
    with SafeRoot(tmp_path) as root:
        walk = find_installations(root)
        first = next(walk)
        assert isinstance(first, Installation)
        walk.close()  # the consumer stops early: queued descriptors are closed
    assert len(os.listdir("/proc/self/fd")) == before
