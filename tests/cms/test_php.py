"""php_hints: PHP version hints from .htaccess handler lines and ini comments."""

from __future__ import annotations

from pathlib import Path

import pytest

from patchd.cms.php import php_hints, php_version_from_handler
from patchd.safefs import SafeRoot
from tests.cms.trees import make_tree


@pytest.mark.parametrize(
    ("text", "version"),
    [
        ("application/x-httpd-php74", "7.4"),
        ("application/x-httpd-php7.4", "7.4"),
        ("php-8.1", "8.1"),
        ("application/x-httpd-ea-php81", "8.1"),
        ("x-httpd-lsphp82", "8.2"),
        ("proxy:unix:/run/php/php8.3-fpm.sock|fcgi://localhost", "8.3"),
        ("application/x-httpd-php56", "5.6"),
        ("application/x-httpd-php5", "5"),
        ("application/x-httpd-php", None),
        ("php710", None),
    ],
)
def test_handler_tokens(text: str, version: str | None) -> None:
    assert php_version_from_handler(text) == version


def test_htaccess_last_directive_wins(tmp_path: Path) -> None:
    make_tree(
        tmp_path,
        {
            "html/.htaccess": (
                "RewriteEngine On\n# AddHandler application/x-httpd-php56 .php\n"
                "AddHandler application/x-httpd-php74 .php\n"
                "AddType text/html .php5\n"
                "<FilesMatch \\.php$>\n  SetHandler application/x-httpd-php81\n</FilesMatch>\n"
            )
        },
    )
    with SafeRoot(tmp_path) as root:
        assert php_hints(root, ["html"]) == (
            "8.1",
            "html/.htaccess line 6: SetHandler application/x-httpd-php81",
        )


def test_root_htaccess_applies_to_docroot(tmp_path: Path) -> None:
    make_tree(
        tmp_path,
        {
            ".htaccess": "AddHandler application/x-httpd-php74 .php\n",
            "html/.htaccess": "RewriteEngine On\n",
        },
    )
    with SafeRoot(tmp_path) as root:
        assert php_hints(root, ["html"]) == (
            "7.4",
            ".htaccess line 1: AddHandler application/x-httpd-php74 .php",
        )
        assert php_hints(root, None) == (
            "7.4",
            ".htaccess line 1: AddHandler application/x-httpd-php74 .php",
        )


def test_ini_comment_and_no_hint(tmp_path: Path) -> None:
    make_tree(tmp_path / "a", {"html/.user.ini": "memory_limit = 256M\n; php_version=8.1\n"})
    make_tree(tmp_path / "b", {"php.ini": 'upload_max_filesize = 10M\n# php-version: "8.2"\n'})
    make_tree(tmp_path / "c", {".htaccess": "AddHandler application/x-httpd-php .php\n"})
    with SafeRoot(tmp_path / "a") as root:
        assert php_hints(root, ["html"]) == ("8.1", "html/.user.ini line 2: ; php_version=8.1")
    with SafeRoot(tmp_path / "b") as root:
        assert php_hints(root, ["html"]) == ("8.2", 'php.ini line 2: # php-version: "8.2"')
    with SafeRoot(tmp_path / "c") as root:
        assert php_hints(root, ["html"]) == (None, "")


def test_symlinked_htaccess_is_ignored(tmp_path: Path) -> None:
    make_tree(tmp_path / "other", {".htaccess": "AddHandler application/x-httpd-php74 .php\n"})
    make_tree(tmp_path / "acct/html", {"index.php": ""})
    (tmp_path / "acct/html/.htaccess").symlink_to(tmp_path / "other/.htaccess")
    with SafeRoot(tmp_path / "acct") as root:
        assert php_hints(root, ["html"]) == (None, "")
