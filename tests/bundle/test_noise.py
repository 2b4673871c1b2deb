"""Noise filters: each with a case it drops and a look-alike it must leave alone."""

from __future__ import annotations

import pytest

from patchd.bundle.classifiers.noise import BUNDLED_EXTENSION, NoiseClassifier
from patchd.release.tree import FileChange
from tests.bundle.helpers import file_change

NOISE = NoiseClassifier()
CODE = [" $a = 1;", "-$b = get($x);", "+$b = get((int) $x);", " $c = 3;"]


def _reason(path: str, lines: list[str], kind: str = "modified") -> str | None:
    change = file_change(path, lines, kind=kind)
    v = NOISE.classify(change.hunks[0], change)
    if v is None:
        return None
    assert v.decision == "drop" and v.classifier == "noise"
    return v.reason


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("composer.lock", "lock file"),
        ("wp-includes/js/package-lock.json", "lock file"),
        ("yarn.lock", "lock file"),
        ("wp-includes/js/jquery/jquery.min.js", "minified or generated asset"),
        ("skins/elastic/styles/styles.min.css", "minified or generated asset"),
        ("wp-includes/js/dist/editor.js", "minified or generated asset"),
        ("app.js.map", "minified or generated asset"),
        ("wp-content/languages/de_DE.po", "translation file"),
        ("wp-content/languages/admin-de_DE.mo", "translation file"),
        ("program/localization/de_DE/labels.inc", "translation file"),
        ("program/localization/de_DE/messages.inc", "translation file"),
        ("typo3/sysext/core/Resources/Private/Language/locallang.xlf", "translation file"),
        ("typo3/sysext/core/Tests/Unit/FooTest.php", "test suite"),
        ("tests/phpunit/includes/bootstrap.php", "test suite"),
        ("lib/FooTest.php", "test suite"),
        ("phpunit.xml.dist", "test suite"),
        ("CHANGELOG.md", "documentation (changelog, readme, licence)"),
        ("ChangeLog", "documentation (changelog, readme, licence)"),
        ("readme.html", "documentation (changelog, readme, licence)"),
        ("README", "documentation (changelog, readme, licence)"),
        ("license.txt", "documentation (changelog, readme, licence)"),
        ("LICENSE", "documentation (changelog, readme, licence)"),
        (
            "typo3/sysext/core/Documentation/Changelog/12.4.x/Feature.rst",
            "documentation (changelog, readme, licence)",
        ),
        ("docs/index.php", "documentation (changelog, readme, licence)"),
        ("wp-admin/about.php", "release notes or about page"),
        ("wp-admin/credits.php", "release notes or about page"),
        ("RELEASE_NOTES", "release notes or about page"),
        ("release-notes.html", "release notes or about page"),
        ("NEWS", "release notes or about page"),
        ("UPGRADING", "release notes or about page"),
        ("wp-content/plugins/akismet/class.akismet.php", BUNDLED_EXTENSION),
        ("wp-content/plugins/hello.php", BUNDLED_EXTENSION),
        ("wp-content/themes/twentytwentyfour/functions.php", BUNDLED_EXTENSION),
        # a bundled plugin's tests and translations keep their own reason
        ("wp-content/plugins/akismet/tests/test-akismet.php", "test suite"),
        ("wp-content/plugins/akismet/languages/akismet-de_DE.po", "translation file"),
    ],
)
def test_path_categories_drop_whole_files(path: str, reason: str) -> None:
    assert _reason(path, CODE) == reason


@pytest.mark.parametrize(
    "path",
    [
        "wp-includes/js/jquery/jquery.js",  # not minified
        "program/lib/Roundcube/rcube_utils.php",
        "typo3/sysext/core/Classes/Utility/GeneralUtility.php",
        "wp-includes/class-wp-testing.php",  # "test" in a name is not a test suite
        "wp-includes/tests.php",
        "lib/Latest.php",
        "wp-admin/includes/update-core.php",
        "composer.json",
        "lib/Testing.php",
        # core code beside the release-notes and bundled-extension look-alikes
        "wp-admin/about-us.php",
        "wp-admin/includes/plugin.php",
        "wp-includes/theme.php",
        "plugins/password/password.php",  # Roundcube's core plugins are core
        "typo3/sysext/core/ext_localconf.php",
        "core/modules/system/system.module",
        "lib/news.php",
    ],
)
def test_real_code_paths_are_not_noise(path: str) -> None:
    assert _reason(path, CODE) is None


def test_binary_file_is_a_binary_asset() -> None:
    img = FileChange("wp-includes/images/w-logo.png", "binary", "a", "b", ())
    v = NOISE.classify(None, img)
    assert v is not None and (v.decision, v.reason) == ("drop", "binary asset (.png)")


def test_added_php_file_is_not_noise() -> None:
    assert _reason("wp-includes/new-class.php", ["+<?php", "+class X {}"], kind="added") is None


def test_added_test_file_is_dropped_as_test_suite() -> None:
    reason = _reason("tests/Unit/XTest.php", ["+<?php", "+class XTest {}"], kind="added")
    assert reason == "test suite"


def test_whitespace_only() -> None:
    assert _reason("a.php", [" a", "-\tif ($x) {", "+    if ($x)  {", "+", " b"]) == (
        "whitespace-only change"
    )
    assert _reason("a.php", [" a", "-$x = 1;   ", "+$x = 1;", " b"]) == "whitespace-only change"


def test_reindenting_yaml_is_real() -> None:
    lines = [" services:", "-  public: true", "+    public: true"]
    assert _reason("Configuration/Services.yaml", lines) is None
    assert _reason("Configuration/Services.yaml", [" a: 1", "-b: 2   ", "+b: 2"]) == (
        "whitespace-only change"
    )


def test_whitespace_inside_a_character_class_is_real() -> None:
    assert (
        _reason("a.php", ["-preg_match('/^[a-z ]+$/', $s);", "+preg_match('/^[a-z]+$/', $s);"])
        is None
    )


@pytest.mark.parametrize(
    ("path", "lines"),
    [
        ("a.php", [" $a = 1;", "-// old wording", "+// new wording", " $b = 2;"]),
        ("a.php", [" $a = 1;", "+# a shell style comment", " $b = 2;"]),
        (
            "a.php",
            [" /**", "- * Old summary.", "+ * New summary.", "+ *", "+ * @since 6.4.3", " */"],
        ),
        ("a.php", [" $x = 1;", "+/* one", "+   two */", " $y = 2;"]),
        ("a.js", [" var a = 1;", "-// todo", "+// done", " var b = 2;"]),
        ("a.css", [" .a { color: red; }", "-/* old */", "+/* new */", " .b {}"]),
        # the hunk starts inside a docblock whose opener is above the context
        ("a.php", ["  * @param string $x", "- * @return int", "+ * @return int|null", "  */"]),
    ],
)
def test_comment_only(path: str, lines: list[str]) -> None:
    assert _reason(path, lines) == "comment-only change"


@pytest.mark.parametrize(
    ("path", "lines"),
    [
        ("a.php", [" $a = 1;", "-eval($x);", "+// eval($x);", " $b = 2;"]),  # code commented out
        ("a.php", [" $a = 1;", "-// check($x);", "+check($x);", " $b = 2;"]),  # enabled
        ("a.php", [" $a = 1;", "+$b = 2; // with a comment"]),
        ("a.php", [" $a = 1;", "+#[Attribute]", " class A {}"]),  # PHP 8 attribute
        ("a.css", [" .a {}", "+#header { display: none; }"]),  # CSS id selector
        # removing a block opener turns commented code on: context lines change meaning
        ("a.php", ["-/*", " dangerous();", " */"]),
        ("a.py", [" a = 1", "-# old", "+# new"]),  # unknown language: no opinion
    ],
)
def test_code_changes_are_not_comment_only(path: str, lines: list[str]) -> None:
    assert _reason(path, lines) is None


@pytest.mark.parametrize(
    ("path", "lines", "what"),
    [
        (
            "wp-includes/version.php",
            ["-$wp_version = '6.4.2';", "+$wp_version = '6.4.3';"],
            "$wp_version 6.4.2 → 6.4.3",
        ),
        (
            "wp-includes/version.php",
            [
                " */",
                "-$wp_version = '6.4.2';",
                "-$wp_db_version = 56657;",
                "+$wp_version = '6.4.3';",
                "+$wp_db_version = 57155;",
                " ",
            ],
            "$wp_version 6.4.2 → 6.4.3, $wp_db_version 56657 → 57155",
        ),
        (
            "typo3/sysext/core/Classes/Information/Typo3Version.php",
            [
                "-    protected const VERSION = '12.4.9';",
                "+    protected const VERSION = '12.4.10';",
            ],
            "VERSION 12.4.9 → 12.4.10",
        ),
        (
            "program/include/iniset.php",
            ["-define('RCMAIL_VERSION', '1.6.5');", "+define('RCMAIL_VERSION', '1.6.6');"],
            "RCMAIL_VERSION 1.6.5 → 1.6.6",
        ),
        (
            "typo3/sysext/core/ext_emconf.php",
            ["-    'version' => '12.4.9',", "+    'version' => '12.4.10',"],
            "'version' 12.4.9 → 12.4.10",
        ),
        (
            "composer.json",
            ['-    "version": "1.6.5",', '+    "version": "1.6.6-rc1",'],
            '"version" 1.6.5 → 1.6.6-rc1',
        ),
    ],
)
def test_version_bumps(path: str, lines: list[str], what: str) -> None:
    assert _reason(path, lines) == f"version constant bump ({what})"


@pytest.mark.parametrize(
    "lines",
    [
        # the version changes together with something else on the line
        ["-$wp_version = '6.4.2';", "+$wp_version = '6.4.3'; $x = 1;"],
        # a version-named variable assigned from code, not a literal
        ["-$version = '6.4.2';", "+$version = get_version();"],
        # one extra line rides along
        ["-$wp_version = '6.4.2';", "+$wp_version = '6.4.3';", "+check();"],
        # not a version constant
        ["-$limit = '10';", "+$limit = '20';"],
    ],
)
def test_not_version_bumps(lines: list[str]) -> None:
    assert _reason("wp-includes/version.php", lines) is None
