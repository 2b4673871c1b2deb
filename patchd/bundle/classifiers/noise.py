"""Noise filters: drop what never belongs in a security patch, each with a specific reason.

By path (whole files): binary files, lock files, minified/generated assets, translations,
test suites, documentation (changelogs, readmes, licences, ``docs/``), release notes and
about pages, bundled plugins and themes (see :data:`BUNDLED_EXTENSION_DIRS`). By content (one
hunk): whitespace-only changes, comment-only changes (PHP, JS, CSS), and version-constant
bumps (``$wp_version = '6.4.3'``, ``const VERSION``, ``define('X_VERSION', ...)``,
``'version' => ...``, ``"version": ...``).

Everything else gets no opinion. The filters are conservative on purpose: a hunk is noise
only when *every* changed line is noise, so a real change hidden among comments survives.

NOTE: generated assets (``*.min.js``, ``dist/``) are what a site actually loads; a security
fix in JavaScript often has to ship them too. A rules-file ``include`` wins over this
filter (rules come first in the chain), which is how such a fix is kept.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath

from patchd.bundle.interface import Classifier, FileChangeLike, ReleaseHunkLike, Verdict
from patchd.engine.model import Hunk, HunkLine


@dataclass(frozen=True)
class PathRule:
    """A path category: a predicate on the release path and the reason it is noise."""

    reason: str
    test: Callable[[PurePosixPath], bool]


def _name_matches(*patterns: str, case: bool = False) -> Callable[[PurePosixPath], bool]:
    rx = re.compile("|".join(f"(?:{p})" for p in patterns), 0 if case else re.IGNORECASE)
    return lambda p: rx.fullmatch(p.name) is not None


def _has_dir(*names: str, case: bool = False) -> Callable[[PurePosixPath], bool]:
    wanted = set(names) if case else {n.lower() for n in names}

    def test(p: PurePosixPath) -> bool:
        dirs = p.parts[:-1]
        return any((d if case else d.lower()) in wanted for d in dirs)

    return test


def _any(*tests: Callable[[PurePosixPath], bool]) -> Callable[[PurePosixPath], bool]:
    return lambda p: any(t(p) for t in tests)


def _path_is(*paths: str) -> Callable[[PurePosixPath], bool]:
    wanted = frozenset(paths)
    return lambda p: str(p) in wanted


def _under(*folders: str) -> Callable[[PurePosixPath], bool]:
    prefixes = tuple(f.rstrip("/") + "/" for f in folders)
    return lambda p: str(p).startswith(prefixes)


#: WordPress's about page and its tabs: text about the release, rewritten every release.
WORDPRESS_ABOUT_PAGES = (
    "wp-admin/about.php",
    "wp-admin/credits.php",
    "wp-admin/freedoms.php",
    "wp-admin/privacy.php",
)

#: Where a release ships plugins and themes that have their own updater and their own
#: releases (WordPress bundles Akismet, Hello Dolly and the default themes). Their update
#: inside a core release differs per branch, and one updated identically in every branch
#: would pass the sibling check as a "fix": such changes are dropped here, before the
#: sibling and heuristic classifiers; a rules-file ``include`` keeps one when the advisory
#: names it. NOTE: core-maintained extension folders (TYPO3 ``typo3/sysext``, Roundcube
#: ``plugins/``, Drupal ``core/modules``) are core code and are not listed.
BUNDLED_EXTENSION_DIRS = ("wp-content/plugins", "wp-content/themes")
BUNDLED_EXTENSION = (
    "bundled plugin or theme (released and updated on its own; keep it with a rule when "
    "the advisory names it)"
)


def _language_dir(p: PurePosixPath) -> bool:
    """TYPO3 ``*/Resources/Private/Language/*``."""
    parts = p.parts
    return any(
        parts[i : i + 3] == ("Resources", "Private", "Language") for i in range(len(parts) - 3)
    )


# NOTE: order matters only for the reason shown; lock files before docs (*.json is no doc).
PATH_RULES: tuple[PathRule, ...] = (
    PathRule("lock file", _name_matches(r"composer\.lock", r"package-lock\.json", r"yarn\.lock")),
    PathRule(
        "minified or generated asset",
        _any(_name_matches(r".*\.min\.js", r".*\.min\.css", r".*\.map"), _has_dir("dist", "build")),
    ),
    PathRule(
        "translation file",
        _any(
            _name_matches(r".*\.po", r".*\.mo", r".*\.xlf", r"labels\.inc", r"messages\.inc"),
            _has_dir("localization", "languages"),
            _language_dir,
        ),
    ),
    PathRule(
        "test suite",
        _any(
            _has_dir("tests", "Tests", case=True),
            # NOTE: case-sensitive, or "Latest.php" would pass as a test.
            _name_matches(r".+Test\.php", case=True),
            _name_matches(r"phpunit\.xml.*"),
        ),
    ),
    PathRule(
        "documentation (changelog, readme, licence)",
        _any(
            _name_matches(
                r"CHANGELOG.*",
                r"ChangeLog",
                r"README.*",
                r"readme\.html",
                r".*\.md",
                r".*\.rst",
                r".*\.txt",
                r"license.*",
                r"licence.*",
            ),
            _has_dir("Documentation", "docs"),
        ),
    ),
    PathRule(
        "release notes or about page",
        _any(
            _name_matches(r"release[-_ ]?notes(?:\.html?)?", r"NEWS", r"UPGRADING"),
            _path_is(*WORDPRESS_ABOUT_PAGES),
        ),
    ),
    # NOTE (issue 12): last, so a bundled plugin's tests or translations keep their reason.
    PathRule(BUNDLED_EXTENSION, _under(*BUNDLED_EXTENSION_DIRS)),
)

_COMMENT_STYLES: dict[str, tuple[bool, bool]] = {
    # extension: (// comments, # comments); every language here has /* */ comments
    "php": (True, True),
    "inc": (True, True),
    "phtml": (True, True),
    "module": (True, True),
    "install": (True, True),
    "theme": (True, True),
    "js": (True, False),
    "mjs": (True, False),
    "cjs": (True, False),
    "ts": (True, False),
    "scss": (True, False),
    "less": (True, False),
    "css": (False, False),
}

_INDENT_SIGNIFICANT = frozenset({".yaml", ".yml", ".py", ".pug", ".haml", ".sass", ".coffee"})

_VERSION_VALUE = r"""(?P<value>(?P<vq>['"])v?\d+(?:[.\-+~_][0-9A-Za-z]+)*(?P=vq)|\d+)"""
VERSION_LINE = re.compile(
    r"""^\s*(?:
        (?P<var>\$\w*version\w*)\s*=
      | (?:(?:public|private|protected|final)\s+)*const\s+(?P<const>\w*version\w*)\s*=
      | define\(\s*(?P<dq>['"])(?P<define>\w*version\w*)(?P=dq)\s*,
      | (?P<key>(?P<kq>['"])version(?P=kq))\s*(?:=>|:)
    )\s*"""
    + _VERSION_VALUE
    + r"""\s*\)?\s*[;,]?\s*$""",
    re.IGNORECASE | re.VERBOSE,
)


class NoiseClassifier(Classifier):
    """Drop noise (see the module docstring); no opinion on anything else."""

    name = "noise"

    def classify(self, hunk: ReleaseHunkLike | None, change: FileChangeLike) -> Verdict | None:
        """A ``drop`` verdict with a specific reason, or None."""
        path = PurePosixPath(change.path)
        if change.kind == "binary":
            suffix = path.suffix.lower()
            return self._drop(f"binary asset ({suffix})" if suffix else "binary asset")
        for rule in PATH_RULES:
            if rule.test(path):
                return self._drop(rule.reason)
        if hunk is None:
            return None
        h = hunk.hunk
        if is_whitespace_only(h, indent_matters=path.suffix.lower() in _INDENT_SIGNIFICANT):
            return self._drop("whitespace-only change")
        if is_comment_only(h, path.suffix.lower().lstrip(".")):
            return self._drop("comment-only change")
        bumps = version_bumps(h)
        if bumps:
            return self._drop("version constant bump (" + ", ".join(bumps) + ")")
        return None

    def _drop(self, reason: str) -> Verdict:
        return Verdict("drop", reason, classifier=self.name)


def _text(line: HunkLine) -> str:
    return line.data.decode("utf-8", "surrogateescape").rstrip("\r\n")


def _changed(h: Hunk) -> tuple[list[str], list[str]]:
    removed = [_text(ln) for ln in h.lines if ln.kind == "-"]
    added = [_text(ln) for ln in h.lines if ln.kind == "+"]
    return removed, added


def is_whitespace_only(h: Hunk, *, indent_matters: bool = False) -> bool:
    """True when the change vanishes once whitespace runs are collapsed and blank lines dropped.

    NOTE: whitespace *inside* a line is collapsed, not removed: ``[a-z ]`` vs ``[a-z]`` in a
    regex is a real change and must not pass as noise. With ``indent_matters`` (YAML,
    Python, ...) the leading whitespace is kept: re-indenting a YAML key moves it.
    """
    removed, added = _changed(h)
    if not removed and not added:
        return False

    def norm(lines: Sequence[str]) -> list[str]:
        out = []
        for ln in lines:
            if not ln.strip():
                continue
            indent = ln[: len(ln) - len(ln.lstrip())] if indent_matters else ""
            out.append(indent + " ".join(ln.split()))
        return out

    return norm(removed) == norm(added)


def is_comment_only(h: Hunk, ext: str) -> bool:
    """True when every changed line is a comment or blank in a language we know.

    Comment state is tracked through the old image (context + removed) and the new image
    (context + added); the change is refused when a context line changes between code and
    comment (an added ``*/`` or removed ``/*`` would turn code on or off).
    """
    style = _COMMENT_STYLES.get(ext)
    if style is None:
        return False
    slashes, hashes = style
    old_idx = [i for i, ln in enumerate(h.lines) if ln.kind != "+"]
    new_idx = [i for i, ln in enumerate(h.lines) if ln.kind != "-"]
    old_flags = dict(
        zip(
            old_idx,
            _comment_flags([_text(h.lines[i]) for i in old_idx], slashes, hashes),
            strict=True,
        )
    )
    new_flags = dict(
        zip(
            new_idx,
            _comment_flags([_text(h.lines[i]) for i in new_idx], slashes, hashes),
            strict=True,
        )
    )
    any_comment = False
    for i, ln in enumerate(h.lines):
        if ln.kind == " ":
            if old_flags[i] != new_flags[i]:
                return False
            continue
        flag = old_flags[i] if ln.kind == "-" else new_flags[i]
        if not flag:
            return False
        any_comment = any_comment or bool(_text(ln).strip())
    return any_comment


def _comment_flags(lines: Sequence[str], slashes: bool, hashes: bool) -> list[bool]:
    """Per line: is it entirely comment (or blank)? A small state machine over ``/* */``."""
    flags: list[bool] = []
    in_block = False
    for raw in lines:
        s = raw.strip()
        if not s:
            flags.append(True)
            continue
        if not in_block and flags == [True] * len(flags) and _looks_like_block_middle(s):
            # NOTE: the hunk may start inside a docblock whose ``/**`` is above the context.
            in_block = True
        is_comment = True
        pos = 0
        while pos < len(s):
            if in_block:
                end = s.find("*/", pos)
                if end == -1:
                    pos = len(s)
                    break
                in_block = False
                pos = end + 2
                continue
            rest = s[pos:].lstrip()
            if not rest:
                break
            if rest.startswith("/*"):
                in_block = True
                pos = len(s) - len(rest) + 2
                continue
            if (slashes and rest.startswith("//")) or (
                hashes and rest.startswith("#") and not rest.startswith("#[")
            ):
                break
            is_comment = False
            # Code on this line; a /* later on it may still open a block.
            opener = s.find("/*", pos)
            closer_after = s.find("*/", opener + 2) if opener != -1 else -1
            in_block = opener != -1 and closer_after == -1
            break
        flags.append(is_comment)
    return flags


def _looks_like_block_middle(s: str) -> bool:
    return s == "*" or s.startswith("* ") or s.startswith("*/") or s.startswith("**")


def version_bumps(h: Hunk) -> list[str]:
    """``["$wp_version 6.4.2 → 6.4.3", ...]`` when the hunk only bumps version constants.

    Removed and added lines must pair up one to one, each pair equal except for the value
    of a version constant; blank-line changes are not allowed. Empty list otherwise.
    """
    removed, added = _changed(h)
    if not removed or len(removed) != len(added):
        return []
    bumps: list[str] = []
    for old, new in zip(removed, added, strict=True):
        mo, mn = VERSION_LINE.match(old), VERSION_LINE.match(new)
        if mo is None or mn is None:
            return []
        if _without_value(old, mo) != _without_value(new, mn):
            return []
        name = mo["var"] or mo["const"] or mo["define"] or mo["key"]
        bumps.append(f"{name} {_unquote(mo['value'])} → {_unquote(mn['value'])}")
    return bumps


def _without_value(line: str, m: re.Match[str]) -> str:
    return line[: m.start("value")] + "\0" + line[m.end("value") :]


def _unquote(value: str) -> str:
    return value[1:-1] if value[:1] in "'\"" else value
