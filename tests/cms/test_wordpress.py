"""WordPress detector on hand-made trees."""

from __future__ import annotations

import os
from pathlib import Path

from patchd.cms.interface import Extension
from patchd.cms.wordpress import WordPressDetector
from patchd.safefs import SafeRoot
from tests.cms.trees import make_tree, wordpress

WP = WordPressDetector()


def test_version_plugins_themes(tmp_path: Path) -> None:
    files = wordpress("6.4.3")
    files.update(
        {
            # main file is not <slug>.php; an index.php without header comes first
            "wp-content/plugins/contact-form-7/index.php": "<?php // Silence is golden.\n",
            "wp-content/plugins/contact-form-7/wp-contact-form-7.php": (
                "<?php\n/**\n * Plugin Name: Contact Form 7\n * Version: 5.8.4\n */\n"
            ),
            "wp-content/plugins/hello.php": (
                "<?php\n/**\n * @package Hello\n * @version 1.7.2\n */\n/*\n"
                "Plugin Name: Hello Dolly\nVersion: 1.7.2\n*/\n"
            ),
            "wp-content/plugins/index.php": "<?php\n",
            "wp-content/plugins/no-header/readme.txt": "nothing\n",
            "wp-content/mu-plugins/hoster-cache.php": (
                "<?php\n/*\nPlugin Name: Hoster Cache\nVersion: 2.0 */\n"
            ),
            "wp-content/mu-plugins/bare.php": "<?php\n",
            "wp-content/themes/no-style/index.php": "<?php\n",
            "wp-content/themes/custom/style.css": "/* Theme Name: Custom\r\nVersion: 0.9\r\n*/\n",
        }
    )
    make_tree(tmp_path, files)
    with SafeRoot(tmp_path) as root:
        inst = WP.detect(root, "")
    assert inst is not None
    assert (inst.cms, inst.version, inst.version_error) == ("wordpress", "6.4.3", None)
    assert inst.marker == "wp-includes/version.php"
    assert inst.facts == {"required_php": "7.0.0"}
    assert set(inst.extensions) == {
        Extension("akismet", "5.3", "plugin"),
        Extension("contact-form-7", "5.8.4", "plugin"),
        Extension("hello", "1.7.2", "plugin"),
        Extension("hoster-cache", "2.0", "mu-plugin"),
        Extension("bare", None, "mu-plugin"),
        Extension("twentytwentyfour", "1.0", "theme"),
        Extension("custom", "0.9", "theme"),
    }


def test_subfolder_and_not_wordpress(tmp_path: Path) -> None:
    make_tree(tmp_path / "blog", wordpress("5.9.8"))
    make_tree(tmp_path, {"wp-config.php": "<?php // config above the installation\n"})
    with SafeRoot(tmp_path) as root:
        assert WP.detect(root, "") is None  # a lone wp-config.php is no installation
        inst = WP.detect(root, "blog")
    assert inst is not None and inst.path == "blog" and inst.version == "5.9.8"


def test_version_unknown_with_reason(tmp_path: Path) -> None:
    make_tree(tmp_path / "a", {"wp-load.php": "<?php\n"})
    make_tree(tmp_path / "b", {"wp-load.php": "", "wp-includes/version.php": "<?php\n// gone\n"})
    make_tree(tmp_path / "c", {"wp-load.php": "", "wp-includes/x": ""})
    os.symlink("/etc/passwd", tmp_path / "c" / "wp-includes" / "version.php")
    make_tree(tmp_path / "d", {"wp-load.php": "", "wp-includes/x": ""})
    os.mkfifo(tmp_path / "d" / "wp-includes" / "version.php")
    make_tree(tmp_path / "e", {"wp-includes/version.php": b"x" * (2 << 20)})
    with SafeRoot(tmp_path) as root:
        results = {p: WP.detect(root, p) for p in "abcde"}
    reasons = {p: (i.version, i.version_error) for p, i in results.items() if i is not None}
    assert reasons == {
        "a": (None, "a/wp-includes/version.php: missing"),
        "b": (None, "b/wp-includes/version.php: no $wp_version assignment found"),
        "c": (None, "c/wp-includes/version.php: symlink"),
        "d": (None, "d/wp-includes/version.php: not a regular file (FIFO)"),
        "e": (None, "e/wp-includes/version.php: too large (2097152 bytes, limit 1048576)"),
    }


def test_symlinked_plugin_is_not_followed(tmp_path: Path) -> None:
    make_tree(tmp_path / "acct", wordpress())
    make_tree(
        tmp_path / "other/evil", {"evil.php": "<?php\n/*\nPlugin Name: Evil\nVersion: 6.6.6\n*/"}
    )
    os.symlink(tmp_path / "other/evil", tmp_path / "acct/wp-content/plugins/evil")
    os.symlink(tmp_path / "other/evil/evil.php", tmp_path / "acct/wp-content/plugins/e.php")
    with SafeRoot(tmp_path / "acct") as root:
        inst = WP.detect(root, "")
    assert inst is not None
    assert {e.name for e in inst.extensions} == {"akismet", "twentytwentyfour"}


def test_hostile_header_values_are_cleaned(tmp_path: Path) -> None:
    files = wordpress("6.4.3\x1b[31m")
    files["wp-content/plugins/x/x.php"] = "<?php\n/*\nPlugin Name: X\nVersion: 1.0\x07" + "9" * 500
    make_tree(tmp_path, files)
    with SafeRoot(tmp_path) as root:
        inst = WP.detect(root, "")
    assert inst is not None and inst.version == "6.4.3[31m"
    ext = next(e for e in inst.extensions if e.name == "x")
    assert ext.version is not None and len(ext.version) == 100 and "\x07" not in ext.version


def test_maintenance_fact(tmp_path: Path) -> None:
    files = wordpress()
    files[".maintenance"] = "<?php $upgrading = 1;\n"
    make_tree(tmp_path, files)
    with SafeRoot(tmp_path) as root:
        inst = WP.detect(root, "")
    assert inst is not None and inst.facts["maintenance"] == "yes"
