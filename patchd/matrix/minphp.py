"""Static minimum-PHP analysis of the lines a patch adds.

A cell whose PHP binary is not installed on the test machine is still checked: every added
line is matched against syntax features with the PHP version that introduced them
(nullsafe ``?->`` 8.0, ``enum`` 8.1, ``fn(`` 7.4, ...). The result is the highest version
any added line needs, with the feature and the line that need it.

NOTE: this is a line-based scan, not a parser. Strings and comments are blanked first so
``"?->"`` in a string does not count; a feature that spans several added lines may be
missed. It errs towards flagging: a false "needs 8.0" costs a look, a missed one costs a
broken site. ``php -l`` with a real binary remains the authority where one is installed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from patchd.engine.model import FilePatch
from patchd.versions import Version

_ID = r"[A-Za-z_\\][A-Za-z0-9_\\]*"
_TYPE = r"\??[A-Za-z_\\][A-Za-z0-9_\\|&()]*"
_VIS = r"(?:public|protected|private)"
_NOT_MEMBER = r"(?<![\w$>:\\])"  # not part of a name, a ->member or a ::member


@dataclass(frozen=True)
class Feature:
    """A syntax feature: its name, the PHP version that introduced it, and its pattern."""

    name: str
    php: str
    pattern: re.Pattern[str]


def _f(name: str, php: str, pattern: str) -> Feature:
    return Feature(name, php, re.compile(pattern))


#: Every feature the scan knows, newest first (the first match of a line is its newest).
FEATURES: tuple[Feature, ...] = (
    _f("typed class constant", "8.3", rf"\bconst\s+{_TYPE}\s+[A-Za-z_]\w*\s*="),
    _f("readonly class", "8.2", r"\breadonly\s+(?:(?:final|abstract)\s+)*class\b"),
    _f("readonly class", "8.2", r"\b(?:final|abstract)\s+readonly\s+class\b"),
    _f("standalone null/false/true type", "8.2", r"\)\s*:\s*\??(?:null|false|true)\b\s*[{;]"),
    _f("enum", "8.1", r"(?:^|[;{}]\s*)enum\s+[A-Za-z_]\w*\s*(?::\s*\w+\s*)?(?:implements\b|\{|$)"),
    _f("readonly property", "8.1", rf"\breadonly\s+(?:{_VIS}\s+)?{_TYPE}\s+\$"),
    _f("readonly property", "8.1", rf"\b{_VIS}\s+readonly\b"),
    _f("never return type", "8.1", r"\)\s*:\s*never\b"),
    _f("first-class callable syntax", "8.1", r"[\w)\]]\s*\(\s*\.\.\.\s*\)"),
    _f("new in initializer", "8.1", r"\bfunction\b[^;{]*\([^;{]*=\s*new\b"),
    _f("new in initializer", "8.1", r"\bstatic\s+\$\w+\s*=\s*new\b"),
    _f("new in initializer", "8.1", r"^\s*const\s+\w+\s*=\s*new\b"),
    _f("new in initializer", "8.1", rf"^\s*{_VIS}\s+{_TYPE}\s+\$\w+\s*=\s*new\b"),
    _f("intersection type", "8.1", r"[(,]\s*[A-Za-z_\\][\w\\]*&[A-Za-z_\\][\w\\]*\s+\$"),
    _f("nullsafe operator", "8.0", r"\?->"),
    _f("match expression", "8.0", rf"{_NOT_MEMBER}(?<!function\s)\bmatch\s*\("),
    _f(
        "named argument",
        "8.0",
        r"[\w)\]]\s*\(\s*(?:[^()]*,\s*)?(?!default\b|case\b)[A-Za-z_]\w*\s*:(?!:)\s*[^\s)]",
    ),
    _f("union type", "8.0", rf"(?<!catch )\(\s*{_TYPE}\|[\w\\]+\s+&?\.{{0,3}}\$"),
    _f("union type", "8.0", r",\s*\??[A-Za-z_\\][\w\\]*\|[\w\\]+\s+&?\.{0,3}\$"),
    _f("union type", "8.0", r"\)\s*:\s*\??[A-Za-z_\\][\w\\]*\|[\w\\]"),
    _f("union type", "8.0", rf"\b{_VIS}\s+(?:static\s+)?[A-Za-z_\\][\w\\]*\|[\w\\|]+\s+\$"),
    _f("mixed type", "8.0", r"\)\s*:\s*\??mixed\b"),
    _f("mixed type", "8.0", r"[(,]\s*mixed\s+&?\$"),
    _f("static return type", "8.0", r"\)\s*:\s*\??static\b"),
    _f("throw expression", "8.0", r"(?:=>|\?\?|\?:|\?|(?<![=!<>])=(?![=>]))\s*throw\b"),
    _f("attribute", "8.0", r"^\s*#\["),
    _f(
        "constructor promotion",
        "8.0",
        rf"\bfunction\s+__construct\s*\([^)]*\b(?:{_VIS}|readonly)\s+",
    ),
    _f("::class on an object", "8.0", r"\$\w+::class\b"),
    _f("catch without variable", "8.0", r"\bcatch\s*\(\s*[\w\\|]+\s*\)"),
    _f("arrow function", "7.4", rf"{_NOT_MEMBER}(?<!function\s)\bfn\s*\("),
    _f(
        "typed property",
        "7.4",
        rf"\b(?:{_VIS}|var)\s+(?:static\s+)?(?!function\b|const\b)"
        rf"{_TYPE}\s+\$\w+\s*[;=]",
    ),
    _f("null coalescing assignment", "7.4", r"\?\?="),
    _f("spread in array", "7.4", r"(?:\[|\barray\s*\()\s*\.\.\.\s*[$\w\[(]"),
    _f("spread in array", "7.4", r"\[[^\]]*,\s*\.\.\.\s*\$"),
    _f("numeric literal separator", "7.4", r"(?<![\w$])\d+(?:_\d+)+\b"),
    _f("object type", "7.2", r"(?:[(,]\s*\??object\s+&?\$|\)\s*:\s*\??object\b)"),
    _f("nullable type", "7.1", rf"(?:[(,]\s*\?{_ID}\s+&?\.{{0,3}}\$|\)\s*:\s*\?{_ID})"),
    _f("void return type", "7.1", r"\)\s*:\s*void\b"),
    _f("iterable type", "7.1", r"(?:[(,]\s*\??iterable\s+&?\$|\)\s*:\s*\??iterable\b)"),
    _f("class constant visibility", "7.1", rf"\b{_VIS}\s+const\b"),
    _f("multi catch", "7.1", r"\bcatch\s*\(\s*[\w\\]+\s*\|"),
    _f("null coalescing operator", "7.0", r"\?\?(?!=)"),
    _f("spaceship operator", "7.0", r"<=>"),
    _f("scalar type declaration", "7.0", r"[(,]\s*(?:int|float|string|bool)\s+&?\.{0,3}\$"),
    _f("return type declaration", "7.0", r"\bfunction\b[^;{]*\)\s*:\s*\??[\w\\]+"),
)


@dataclass(frozen=True)
class Finding:
    """One added line that needs ``php``: where, which feature, and the line itself."""

    php: str
    feature: str
    path: str
    line: int  # 1-based in the patched file
    text: str

    def describe(self) -> str:
        """``nullsafe operator (PHP 8.0) at wp-includes/x.php:12``."""
        return f"{self.feature} (PHP {self.php}) at {self.path}:{self.line}"


_STRING_RE = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"")
_BLOCK_COMMENT_RE = re.compile(r"/\*.*?\*/")


def blank_strings_and_comments(line: str) -> str:
    """``line`` with string literals emptied and comments removed (attributes kept)."""
    stripped = line.lstrip()
    if stripped.startswith(("*", "/*")) and "*/" not in stripped[2:]:
        return ""  # NOTE: inside a docblock (or its first line): no code here.
    out = _STRING_RE.sub("''", line)
    out = _BLOCK_COMMENT_RE.sub(" ", out)
    out = re.sub(r"//.*$", "", out)
    out = re.sub(r"#(?!\[).*$", "", out)
    if "*/" in out:
        out = out.split("*/", 1)[1]
    return out


def scan_line(text: str) -> Feature | None:
    """The newest feature ``text`` (one line of PHP) uses, or None."""
    code = blank_strings_and_comments(text)
    if not code.strip():
        return None
    for feature in FEATURES:
        if feature.pattern.search(code):
            return feature
    return None


def added_lines(patches: Iterable[FilePatch]) -> list[tuple[str, int, str]]:
    """``(path, line in the patched file, text)`` of every added line of a PHP file."""
    out: list[tuple[str, int, str]] = []
    for fp in patches:
        path = fp.path
        if not path.lower().endswith((".php", ".phtml", ".inc")):
            continue
        for hunk in fp.hunks:
            line_no = hunk.new_start
            for hl in hunk.lines:
                if hl.kind == "+":
                    out.append((path, line_no, hl.data.decode("utf-8", "replace").rstrip("\r\n")))
                if hl.kind != "-":
                    line_no += 1
    return out


def scan_patches(patches: Iterable[FilePatch]) -> list[Finding]:
    """Every added line that needs some PHP version, in patch order."""
    findings: list[Finding] = []
    for path, line_no, text in added_lines(patches):
        feature = scan_line(text)
        if feature is not None:
            findings.append(Finding(feature.php, feature.name, path, line_no, text.strip()))
    return findings


def newest(findings: Sequence[Finding]) -> Finding | None:
    """The finding with the highest PHP version (the first of equals), or None."""
    best: Finding | None = None
    for f in findings:
        if best is None or Version.parse(best.php) < Version.parse(f.php):
            best = f
    return best


def min_php(patches: Iterable[FilePatch]) -> str | None:
    """The minimum PHP version the added lines need (``"8.1"``), or None for none known.

    ``patchd build`` records this as the manifest's ``min_php``.
    """
    found = newest(scan_patches(patches))
    return found.php if found else None


def too_new_for(findings: Sequence[Finding], php: str) -> Finding | None:
    """The newest finding that ``php`` (e.g. ``7.4`` or ``7.4.33``) is too old for."""
    have = _minor(php)
    worst = newest([f for f in findings if have < Version.parse(f.php)])
    return worst


def _minor(php: str) -> Version:
    """``7.4.33`` -> 7.4: features arrive with minor releases."""
    parts = php.strip().split(".")
    return Version.parse(".".join(parts[:2]))
