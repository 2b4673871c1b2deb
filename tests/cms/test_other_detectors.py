"""Roundcube, Joomla and Drupal detectors on hand-made trees."""

from __future__ import annotations

import json
import os
from pathlib import Path

from patchd.cms.drupal import DrupalDetector
from patchd.cms.interface import Extension
from patchd.cms.joomla import JoomlaDetector
from patchd.cms.roundcube import RoundcubeDetector
from patchd.safefs import SafeRoot
from tests.cms.trees import make_tree

RC = RoundcubeDetector()
JOOMLA = JoomlaDetector()
DRUPAL = DrupalDetector()


def test_roundcube(tmp_path: Path) -> None:
    make_tree(
        tmp_path / "webmail",
        {
            "index.php": "<?php\n",
            "program/include/iniset.php": (
                "<?php\n// application constants\ndefine('RCMAIL_VERSION', '1.6.6');\n"
                "define('RCMAIL_START', microtime(true));\n"
            ),
            "plugins/archive/archive.php": "<?php class archive {}\n",
            "plugins/managesieve/managesieve.php": "<?php\n",
            "plugins/managesieve/composer.json": json.dumps({"version": "9.5"}),
            "plugins/notaplugin/readme.md": "x",
        },
    )
    make_tree(tmp_path / "old", {"program/include/iniset.php": "<?php\n"})
    with SafeRoot(tmp_path) as root:
        inst = RC.detect(root, "webmail")
        old = RC.detect(root, "old")
        assert RC.detect(root, "") is None
    assert inst is not None and (inst.cms, inst.version) == ("roundcube", "1.6.6")
    assert inst.extensions == (
        Extension("archive", None, "plugin"),
        Extension("managesieve", "9.5", "plugin"),
    )
    assert old is not None and old.version is None
    assert old.version_error == "old/program/include/iniset.php: no RCMAIL_VERSION define found"


JOOMLA_VERSION = """<?php
namespace Joomla\\CMS;
final class Version
{
    public const PRODUCT = 'Joomla!';
    public const MAJOR_VERSION = 4;
    public const MINOR_VERSION = 4;
    public const PATCH_VERSION = 2;
    public const EXTRA_VERSION = '';
    public const RELEASE = '4.4';
}
"""


def test_joomla(tmp_path: Path) -> None:
    make_tree(
        tmp_path / "j4",
        {
            "libraries/src/Version.php": JOOMLA_VERSION,
            "administrator/components/com_content/content.xml": (
                '<?xml version="1.0"?>\n<extension type="component">\n'
                "<name>com_content</name>\n<version>4.0.0</version>\n</extension>\n"
            ),
            "administrator/components/com_akeeba/config.xml": "<config/>",
            "administrator/components/com_akeeba/akeeba.xml": (
                '<extension type="component" method="upgrade"><version>9.8.1</version>'
            ),
            "administrator/components/com_empty/index.html": "",
        },
    )
    make_tree(
        tmp_path / "j4dev",
        {"libraries/src/Version.php": JOOMLA_VERSION.replace("= '';", "= 'dev';")},
    )
    make_tree(
        tmp_path / "j3",
        {"administrator/manifests/files/joomla.xml": "<extension><version>3.10.12</version>"},
    )
    make_tree(tmp_path / "bad", {"libraries/src/Version.php": "<?php\nclass Version {}\n"})
    with SafeRoot(tmp_path) as root:
        j4, j4dev, j3, bad = (JOOMLA.detect(root, p) for p in ("j4", "j4dev", "j3", "bad"))
        assert JOOMLA.detect(root, "") is None
    assert j4 is not None and j4.version == "4.4.2"
    assert j4.extensions == (
        Extension("com_akeeba", "9.8.1", "component"),
        Extension("com_content", "4.0.0", "component"),
        Extension("com_empty", None, "component"),
    )
    assert j4dev is not None and j4dev.version == "4.4.2-dev"
    assert j3 is not None and j3.version == "3.10.12"
    assert j3.marker == "administrator/manifests/files/joomla.xml"
    assert bad is not None and bad.version is None
    assert bad.version_error == (
        "bad/libraries/src/Version.php: MAJOR/MINOR/PATCH_VERSION constants not found"
    )


def test_drupal(tmp_path: Path) -> None:
    make_tree(
        tmp_path / "web",
        {
            "core/lib/Drupal.php": (
                "<?php\nclass Drupal {\n  const VERSION = '10.2.3';\n"
                "  const MINIMUM_PHP = '8.1.0';\n}\n"
            ),
            "core/modules/node/node.info.yml": "name: Node\nversion: VERSION\n",
            "modules/contrib/token/token.info.yml": (
                "name: Token\ntype: module\n# Information added by packaging script\n"
                "version: '8.x-1.13'\nproject: 'token'\n"
            ),
            "modules/pathauto/pathauto.info.yml": 'name: Pathauto\nversion: "1.12.0"  # pkg\n',
            "modules/custom/mine/mine.info.yml": "name: Mine\ntype: module\n",
            "themes/contrib/gin/gin.info.yml": "name: Gin\nversion: 3.0.0-rc9\n",
        },
    )
    make_tree(tmp_path / "broken", {"core/lib/Drupal.php": "<?php\n"})
    os.symlink("/usr/share", tmp_path / "web/modules/linked")
    with SafeRoot(tmp_path) as root:
        inst = DRUPAL.detect(root, "web")
        broken = DRUPAL.detect(root, "broken")
    assert inst is not None and inst.version == "10.2.3"
    assert inst.facts == {"required_php": "8.1.0"}
    assert inst.extensions == (
        Extension("token", "8.x-1.13", "module"),
        Extension("mine", None, "module"),
        Extension("pathauto", "1.12.0", "module"),
        Extension("gin", "3.0.0-rc9", "theme"),
    )
    assert broken is not None and broken.version_error == (
        "broken/core/lib/Drupal.php: no VERSION constant found"
    )
