"""TYPO3 detector: classic layout with inside/outside typo3_src links, composer layout."""

from __future__ import annotations

import json
import os
from pathlib import Path

from patchd.cms.interface import Extension
from patchd.cms.typo3 import Typo3Detector
from patchd.safefs import SafeRoot
from tests.cms.trees import ext_emconf, make_tree, typo3_core

T3 = Typo3Detector()


def _prefixed(prefix: str, files: dict[str, str | bytes]) -> dict[str, str | bytes]:
    return {f"{prefix}/{k}": v for k, v in files.items()}


def _classic_account(acct: Path) -> None:
    """Common classic-layout parts: typo3 -> typo3_src/typo3, index.php, typo3conf."""
    make_tree(
        acct,
        {
            "index.php": "<?php\n",
            "typo3conf/LocalConfiguration.php": "<?php\nreturn [];\n",
            "typo3conf/ext/news/ext_emconf.php": ext_emconf("11.0.1"),
            "typo3conf/ext/sitepackage/composer.json": json.dumps({"version": "1.2.3"}),
            "typo3conf/ext/broken/readme.txt": "no version anywhere",
        },
    )
    os.symlink("typo3_src/typo3", acct / "typo3")


def test_classic_src_inside_account(tmp_path: Path) -> None:
    _classic_account(tmp_path)
    make_tree(tmp_path, _prefixed("typo3_src-12.4.10/typo3", typo3_core("12.4.10")))
    os.symlink("typo3_src-12.4.10", tmp_path / "typo3_src")
    with SafeRoot(tmp_path) as root:
        inst = T3.detect(root, "")
    assert inst is not None
    assert (inst.cms, inst.version, inst.version_error) == ("typo3", "12.4.10", None)
    assert inst.facts == {
        "layout": "classic",
        "typo3_src_target": "typo3_src-12.4.10",
        "typo3_src_outside": "no",
    }
    assert inst.extensions == (
        Extension("broken", None, "extension"),
        Extension("news", "11.0.1", "extension"),
        Extension("sitepackage", "1.2.3", "extension"),
    )
    assert inst.marker == "typo3_src"


def test_classic_version_file_wins_over_link_name(tmp_path: Path) -> None:
    """A source folder renamed by hand: the file says 12.4.11, the name says 12.4.10."""
    _classic_account(tmp_path)
    make_tree(tmp_path, _prefixed("typo3_src-12.4.10/typo3", typo3_core("12.4.11")))
    os.symlink(str(tmp_path / "typo3_src-12.4.10"), tmp_path / "typo3_src")  # absolute, inside
    with SafeRoot(tmp_path) as root:
        inst = T3.detect(root, "")
    assert inst is not None and inst.version == "12.4.11"
    assert inst.facts["typo3_src_outside"] == "no"


def test_classic_src_outside_account_is_not_followed(tmp_path: Path) -> None:
    shared = tmp_path / "shared/typo3_src-12.4.10"
    # NOTE: the shared source says 99.9.9: if the detector followed the link, we would see it
    make_tree(shared, _prefixed("typo3", typo3_core("99.9.9")))
    acct = tmp_path / "acct"
    _classic_account(acct)
    os.symlink(str(shared), acct / "typo3_src")
    with SafeRoot(acct) as root:
        inst = T3.detect(root, "")
    assert inst is not None
    assert (inst.version, inst.version_error) == ("12.4.10", None)
    assert inst.facts["typo3_src_target"] == str(shared)
    assert inst.facts["typo3_src_outside"] == "yes"
    assert inst.facts["version_source"] == "typo3_src link target name"
    assert {e.name for e in inst.extensions} == {"news", "sitepackage", "broken"}


def test_classic_src_outside_without_version_in_name(tmp_path: Path) -> None:
    acct = tmp_path / "acct"
    _classic_account(acct)
    os.symlink("/var/www/shared/typo3-current", acct / "typo3_src")
    with SafeRoot(acct) as root:
        inst = T3.detect(root, "")
    assert inst is not None and inst.version is None
    assert inst.version_error is not None
    assert "typo3_src points outside the account (/var/www/shared/typo3-current)" in (
        inst.version_error
    )
    assert inst.facts["typo3_src_outside"] == "yes"


def test_classic_relative_link_escaping_with_dotdot(tmp_path: Path) -> None:
    acct = tmp_path / "acct"
    _classic_account(acct)
    make_tree(tmp_path / "typo3_src-11.5.30", _prefixed("typo3", typo3_core("0.0.1")))
    os.symlink("../typo3_src-11.5.30", acct / "typo3_src")
    with SafeRoot(acct) as root:
        inst = T3.detect(root, "")
    assert inst is not None and inst.version == "11.5.30"
    assert inst.facts["typo3_src_outside"] == "yes"


def test_classic_real_core_folder_and_old_define(tmp_path: Path) -> None:
    make_tree(tmp_path / "new", _prefixed("typo3", typo3_core("11.5.35")))
    make_tree(
        tmp_path / "old",
        {
            "typo3/sysext/core/Classes/Core/SystemEnvironmentBuilder.php": (
                "<?php\nclass SystemEnvironmentBuilder {\n  protected static function "
                "defineBaseConstants() {\n    define('TYPO3_version', '8.7.32');\n  }\n}\n"
            ),
            "typo3/sysext/core/ext_emconf.php": ext_emconf("8.7.32"),
        },
    )
    make_tree(tmp_path / "broken", {"typo3/sysext/core/Classes/Information/Typo3Version.php": ""})
    with SafeRoot(tmp_path) as root:
        new = T3.detect(root, "new")
        old = T3.detect(root, "old")
        broken = T3.detect(root, "broken")
    assert new is not None and new.version == "11.5.35" and new.extensions == ()
    assert old is not None and old.version == "8.7.32"
    assert broken is not None and broken.version is None
    assert broken.version_error == (
        "broken/typo3/sysext/core/Classes/Information/Typo3Version.php: no VERSION constant found"
    )


def test_not_typo3(tmp_path: Path) -> None:
    """A customer folder merely named typo3 (holding a site) is no installation here."""
    make_tree(tmp_path, {"typo3/index.html": "hi"})
    with SafeRoot(tmp_path) as root:
        assert T3.detect(root, "") is None


def _composer_project(base: Path) -> None:
    make_tree(
        base,
        {
            "composer.json": json.dumps({"extra": {"typo3/cms": {"web-dir": "public"}}}),
            "public/index.php": "<?php\n",
            "config/system/settings.php": "<?php\nreturn [];\n",
            "vendor/autoload.php": "<?php\n",
            **_prefixed(
                "vendor/typo3/cms-core",
                {
                    "Classes/Information/Typo3Version.php": typo3_core("12.4.11")[
                        "sysext/core/Classes/Information/Typo3Version.php"
                    ],
                    "ext_emconf.php": ext_emconf("12.4.11"),
                    "composer.json": json.dumps({"type": "typo3-cms-framework"}),
                },
            ),
            "vendor/typo3/cms-backend/ext_emconf.php": ext_emconf("12.4.11"),
            "vendor/georgringer/news/ext_emconf.php": ext_emconf("11.3.0"),
            "vendor/georgringer/news/composer.json": json.dumps(
                {"type": "typo3-cms-extension", "extra": {"typo3/cms": {"extension-key": "news"}}}
            ),
            "vendor/friendsoftypo3/tt-address/ext_emconf.php": ext_emconf("8.0.1"),
            "vendor/symfony/console/composer.json": json.dumps({"type": "library"}),
            "packages/site-package/ext_emconf.php": ext_emconf("1.0.0"),
        },
    )
    (base / "vendor/acme").mkdir()
    os.symlink("../../packages/site-package", base / "vendor/acme/site-package")


def test_composer_layout(tmp_path: Path) -> None:
    _composer_project(tmp_path)
    with SafeRoot(tmp_path) as root:
        inst = T3.detect(root, "")
        assert T3.detect(root, "public") is None  # reported at the project root only
        assert T3.project_root_for_docroot(root, "public") == ""
        assert T3.project_root_for_docroot(root, "") is None
    assert inst is not None
    assert (inst.version, inst.version_error, inst.path) == ("12.4.11", None, "")
    assert inst.facts == {"layout": "composer", "web_dir": "public"}
    assert inst.marker == "vendor/typo3/cms-core/Classes/Information/Typo3Version.php"
    assert inst.extensions == (
        Extension("news", "11.3.0", "extension"),
        Extension("site_package", "1.0.0", "extension"),
        Extension("tt_address", "8.0.1", "extension"),
    )


def test_composer_version_unknown(tmp_path: Path) -> None:
    make_tree(tmp_path, {"vendor/typo3/cms-core/composer.json": "{}", "public/index.php": ""})
    with SafeRoot(tmp_path) as root:
        inst = T3.detect(root, "")
    assert inst is not None and inst.version is None
    assert inst.version_error == (
        "vendor/typo3/cms-core/Classes/Information/Typo3Version.php: missing"
    )


def test_real_core_folder_wins_over_outside_src_link(tmp_path: Path) -> None:
    make_tree(tmp_path, {f"typo3/{k}": v for k, v in typo3_core("11.5.30").items()})
    os.symlink("/var/www/shared/typo3_src-10.4.1", tmp_path / "typo3_src")
    with SafeRoot(tmp_path) as root:
        inst = T3.detect(root, "")
    assert inst is not None and (inst.version, inst.version_error) == ("11.5.30", None)
    assert inst.facts["typo3_src_outside"] == "yes"
    assert "version_source" not in inst.facts
