"""Hand-made account trees shaped like real CMS releases (content is our own)."""

from __future__ import annotations

from pathlib import Path


def make_tree(base: Path, files: dict[str, str | bytes]) -> Path:
    """Create ``files`` (relative path -> content) below ``base``; returns ``base``."""
    for rel, content in files.items():
        target = base / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        data = content.encode() if isinstance(content, str) else content
        target.write_bytes(data)
    base.mkdir(parents=True, exist_ok=True)
    return base


def wordpress(version: str = "6.4.3") -> dict[str, str | bytes]:
    """A minimal WordPress: version file, load file, one plugin, one theme."""
    return {
        "wp-load.php": "<?php\n// bootstrap\n",
        "wp-includes/version.php": (
            "<?php\n/**\n * The version string; $wp_version = 'not-this';\n */\n"
            f"$wp_version = '{version}';\n$wp_db_version = 56657;\n"
            "$required_php_version = '7.0.0';\n"
        ),
        "wp-content/plugins/akismet/akismet.php": (
            "<?php\n/*\nPlugin Name: Akismet Anti-Spam\nVersion: 5.3\nAuthor: Someone\n*/\n"
        ),
        "wp-content/themes/twentytwentyfour/style.css": (
            "/*\nTheme Name: Twenty Twenty-Four\nVersion: 1.0\n*/\nbody{}\n"
        ),
    }


def typo3_core(version: str = "12.4.11") -> dict[str, str | bytes]:
    """The TYPO3 core files the detector reads, relative to a ``typo3/`` folder."""
    return {
        "sysext/core/Classes/Information/Typo3Version.php": (
            "<?php\nnamespace TYPO3\\CMS\\Core\\Information;\n\nfinal class Typo3Version\n{\n"
            f"    protected const VERSION = '{version}';\n"
            "    protected const BRANCH = '12.4';\n}\n"
        ),
        "sysext/core/ext_emconf.php": "<?php\n$EM_CONF[$_EXTKEY] = ['version' => '12.4.11'];\n",
    }


def ext_emconf(version: str) -> str:
    """An ``ext_emconf.php`` with ``version``."""
    return (
        "<?php\n$EM_CONF[$_EXTKEY] = [\n    'title' => 'Example',\n"
        f"    'version' => '{version}',\n    'state' => 'stable',\n];\n"
    )
