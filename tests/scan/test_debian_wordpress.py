"""The WordPress detector on the real tree of Debian's ``wordpress`` package.

The setup downloads the package (and the theme it recommends, which Debian ships
separately) with ``apt-get download`` and unpacks both with ``dpkg -x``, as an installed
system would have them. It fails, never skips, when the download does not work: CI runs
as root with Debian's mirror reachable.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from patchd.agent.ops import scan as scan_op
from patchd.cms import DETECTORS
from patchd.cms.interface import Extension
from patchd.cms.search import find_installations
from patchd.safefs import SafeRoot

PACKAGES = ("wordpress", "wordpress-theme-twentytwentythree")
WP_ROOT = "usr/share/wordpress"


@dataclass(frozen=True)
class DebianWordPress:
    """The unpacked packages: ``tree`` is the file system root they were unpacked into."""

    tree: Path
    version: str  # the wordpress package version, e.g. 6.1.9+dfsg1-0+deb12u1

    @property
    def upstream(self) -> str:
        """The upstream part of the package version (``6.1.9``)."""
        version = self.version.split(":", 1)[-1].rsplit("-", 1)[0]
        return re.split(r"[+~]", version, maxsplit=1)[0]


def _run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False)


def _download(dest: Path) -> list[Path]:
    for tool in ("apt-get", "dpkg", "dpkg-deb"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is missing: this test needs Debian's apt and dpkg", pytrace=False)
    done = _run(["apt-get", "download", *PACKAGES], dest)
    if done.returncode != 0:
        # NOTE: a fresh container has no package lists yet; fetch them once and retry.
        update = _run(["apt-get", "update", "-qq"], dest)
        done = _run(["apt-get", "download", *PACKAGES], dest)
        if done.returncode != 0:
            pytest.fail(
                f"apt-get download {' '.join(PACKAGES)} failed (exit {done.returncode}): "
                f"{done.stderr.strip()}\napt-get update said: {update.stderr.strip()}",
                pytrace=False,
            )
    debs = sorted(dest.glob("*.deb"))
    if len(debs) != len(PACKAGES):
        pytest.fail(f"expected {len(PACKAGES)} .deb files, got {debs}", pytrace=False)
    return debs


@pytest.fixture(scope="module")
def debian(tmp_path_factory: pytest.TempPathFactory) -> DebianWordPress:
    """Debian's wordpress packages, downloaded and unpacked (never installed)."""
    work = tmp_path_factory.mktemp("debian-wordpress")
    debs = _download(work)
    tree = work / "root"
    for deb in debs:
        done = _run(["dpkg", "-x", str(deb), str(tree)], work)
        assert done.returncode == 0, f"dpkg -x {deb.name}: {done.stderr}"
    main = next(d for d in debs if d.name.startswith("wordpress_"))
    version = _run(["dpkg-deb", "-f", str(main), "Version"], work).stdout.strip()
    assert version, f"no Version in {main.name}"
    return DebianWordPress(tree, version)


def _header(path: Path, name: str) -> str | None:
    m = re.search(rf"^[ \t/*#@]*{name}:(.*)$", path.read_text(errors="replace")[:8192], re.M)
    return m.group(1).strip() if m else None


def _bundled(wp: Path) -> set[Extension]:
    """What the package ships in wp-content, read independently of the detector."""
    found: set[Extension] = set()
    plugins = wp / "wp-content/plugins"
    for folder in plugins.iterdir():
        if folder.is_dir() and not folder.is_symlink():
            for php in sorted(folder.glob("*.php")):
                if _header(php, "Plugin Name") is not None:
                    found.add(Extension(folder.name, _header(php, "Version"), "plugin"))
                    break
    for php in plugins.glob("*.php"):
        if _header(php, "Plugin Name") is not None:
            found.add(Extension(php.stem, _header(php, "Version"), "plugin"))
    for style in (wp / "wp-content/themes").glob("*/style.css"):
        found.add(Extension(style.parent.name, _header(style, "Version"), "theme"))
    return found


def test_version_and_bundled_extensions(debian: DebianWordPress) -> None:
    wp = debian.tree / WP_ROOT
    version_php = (wp / "wp-includes/version.php").read_text()
    assert f"$wp_version = '{debian.upstream}';" in version_php
    with SafeRoot(debian.tree) as root:
        found = list(find_installations(root, max_depth=4))
    # the whole unpacked system holds exactly one WordPress, in /usr/share/wordpress;
    # /var/lib/wordpress/wp-content (Debian's WP_CONTENT_DIR) is no installation
    assert [(f.path, f.cms, f.version) for f in found] == [(WP_ROOT, "wordpress", debian.upstream)]
    inst = found[0]
    assert inst.version_error is None
    assert set(inst.extensions) == _bundled(wp)
    # what Debian ships: Akismet, and the theme it recommends
    assert {(e.name, e.kind) for e in inst.extensions} >= {
        ("akismet", "plugin"),
        ("twentytwentythree", "theme"),
    }
    assert all(e.version for e in inst.extensions)


def test_symlinks_out_of_the_root_are_not_followed(debian: DebianWordPress, tmp_path: Path) -> None:
    """Debian links wp-content entries across /usr/share and /var/lib; none is followed."""
    account = tmp_path / "account"
    shutil.copytree(debian.tree / WP_ROOT, account / "html", symlinks=True)
    # the package itself links out of its folder (.htaccess -> /etc/wordpress/htaccess,
    # wp-includes/ID3/* -> ../../../php/getid3/*)
    links = [p for p in account.rglob("*") if p.is_symlink()]
    assert any(os.readlink(p).startswith("/") for p in links)
    assert any(os.readlink(p).startswith("../") for p in links)
    # plugins and themes outside the account, linked in as wp-setup --sync-wp-content does
    outside = tmp_path / "var/lib/wordpress/wp-content"
    (outside / "plugins/trap").mkdir(parents=True)
    (outside / "plugins/trap/trap.php").write_text(
        "<?php\n/*\nPlugin Name: Trap\nVersion: 6.6.6\n*/\n"
    )
    (outside / "plugins/trap-single.php").write_text("<?php\n/* Plugin Name: T\nVersion: 6 */\n")
    (outside / "themes/trap").mkdir(parents=True)
    (outside / "themes/trap/style.css").write_text("/*\nTheme Name: Trap\nVersion: 6.6.6\n*/\n")
    (outside / "mu").mkdir()
    (outside / "mu/trap.php").write_text("<?php\n/* Version: 6.6.6 */\n")
    content = account / "html/wp-content"
    (content / "plugins/trap").symlink_to(outside / "plugins/trap")
    (content / "plugins/trap-single.php").symlink_to(outside / "plugins/trap-single.php")
    (content / "themes/trap").symlink_to(outside / "themes/trap")
    (content / "mu-plugins").symlink_to(outside / "mu")
    # a whole second "installation" reached only through a link must not be found either
    (account / "linked-site").symlink_to(debian.tree / WP_ROOT)

    with SafeRoot(account) as root:
        found = [f for f in find_installations(root, max_depth=4)]
    assert [(f.path, f.cms) for f in found] == [("html", "wordpress")]
    assert set(found[0].extensions) == _bundled(debian.tree / WP_ROOT)
    assert all("trap" not in e.name for e in found[0].extensions)

    # the agent's scan op (what runs on a host) reports the same, and reads no PHP hint
    # through the .htaccess link to /etc/wordpress/htaccess
    (item,) = list(scan_op({"accounts": [{"id": "deb", "root": str(account), "max_depth": 4}]}))
    assert item["error"] is None
    assert [(i["path"], i["version"]) for i in item["installations"]] == [
        ("html", found[0].version)
    ]
    assert (item["php"], item["php_source"]) == (None, "")


def test_detector_order_finds_only_wordpress(debian: DebianWordPress) -> None:
    """No other detector claims Debian's WordPress tree."""
    with SafeRoot(debian.tree / WP_ROOT) as root:
        claims = [d.name for d in DETECTORS if d.detect(root, "") is not None]
    assert claims == ["wordpress"]
