"""Composer version constraints, with composer's own semantics.

A port of the rules of ``composer/semver`` (``VersionParser::normalize``,
``VersionParser::parseConstraints`` and ``Semver::satisfies``) and of PHP's
``version_compare``, which composer compares normalized versions with:

- a version is normalized to four numbers plus an optional stability
  (``1.2`` -> ``1.2.0.0``, ``v1.2.3-beta2`` -> ``1.2.3.0-beta2``, ``1.2.x-dev`` ->
  ``1.2.9999999.9999999-dev``), date versions keep their parts (``2010.01.02``);
- ``,`` or a space is AND, ``|`` or ``||`` is OR (AND binds tighter);
- ``^``, ``~``, ``1.2.*`` wildcards and ``1.0 - 2.0`` hyphen ranges expand to ``>=``/``<``
  pairs exactly as composer expands them (``^1.2`` -> ``>=1.2.0.0-dev <2.0.0.0-dev``);
- ``<`` and ``>=`` on a version without a stability suffix compare against its ``-dev``
  (``<1.7`` excludes ``1.7.0-beta1``), ``@stability`` flags and ``#ref`` are understood;
- ``dev-<branch>`` versions never match a numeric constraint.

NOTE: stdlib only. Checked against composer itself by a differential test
(tests/advisories/test_constraints_composer.py).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field

_MODIFIER = r"[._-]?(?:(stable|beta|b|RC|alpha|a|patch|pl|p)((?:[.-]?\d+)*+)?)?([.-]?dev)?"
_STABILITIES = r"stable|RC|beta|alpha|dev"

_ALIAS_RE = re.compile(r"^([^,\s]++) ++as ++([^,\s]++)$")
_FLAG_RE = re.compile(r"@(?:" + _STABILITIES + r")$", re.IGNORECASE)
_BUILD_RE = re.compile(r"^([^,\s+]++)\+[^\s]++$")
_CLASSIC_RE = re.compile(r"^v?(\d{1,5})(\.\d++)?(\.\d++)?(\.\d++)?" + _MODIFIER + "$", re.I)
_DATE_RE = re.compile(r"^v?(\d{4}(?:[.:-]?\d{2}){1,6}(?:[.:-]?\d{1,3})?)" + _MODIFIER + "$", re.I)
_DEV_SUFFIX_RE = re.compile(r"^(.*?)[.-]?dev$", re.IGNORECASE | re.DOTALL)
_BRANCH_RE = re.compile(
    r"^v?(\d++)(\.(?:\d++|[xX*]))?(\.(?:\d++|[xX*]))?(\.(?:\d++|[xX*]))?$", re.I
)

_OR_SPLIT = re.compile(r"\s*\|\|?\s*")
_AND_SPLIT = re.compile(r"(?<!^)(?<!as)(?<![=>< ,]) *(?<!-)[, ](?!-) *(?!,|as|$)")
_C_FLAG_RE = re.compile(r"^([^,\s]*?)@(" + _STABILITIES + r")$", re.IGNORECASE)
_C_REF_RE = re.compile(r"^(dev-[^,\s@]+?|[^,\s@]+?\.x-dev)#.+$", re.IGNORECASE)
_C_ANY_RE = re.compile(r"^(v)?[xX*](\.[xX*])*$", re.IGNORECASE)
_VERSION = (
    r"v?(\d++)(?:\.(\d++))?(?:\.(\d++))?(?:\.(\d++))?(?:"
    + _MODIFIER
    + r"|\.([xX*][.-]?dev))(?:\+[^\s]+)?"
)
_C_TILDE_RE = re.compile(r"^~>?" + _VERSION + "$", re.IGNORECASE)
_C_CARET_RE = re.compile(r"^\^" + _VERSION + "($)", re.IGNORECASE)
_C_WILD_RE = re.compile(r"^v?(\d++)(?:\.(\d++))?(?:\.(\d++))?(?:\.[xX*])++$")
_C_HYPHEN_RE = re.compile(
    r"^(?P<from>" + _VERSION + r") +- +(?P<to>" + _VERSION + r")($)", re.IGNORECASE
)
_C_BASIC_RE = re.compile(r"^(<>|!=|>=?|<=?|==?)?\s*(.*)", re.DOTALL)
_DEV_NAME_RE = re.compile(r"^[0-9a-zA-Z-./]+$")
_SUFFIX_RE = re.compile("-" + _MODIFIER + "$")


def _g(m: re.Match[str], i: int | str) -> str:
    """A group as PHP's preg_match gives it: '' when it did not take part."""
    return m.group(i) or ""


def _expand_stability(word: str) -> str:
    word = word.lower()
    return {"a": "alpha", "b": "beta", "p": "patch", "pl": "patch", "rc": "RC"}.get(word, word)


@functools.lru_cache(maxsize=65536)
def normalize(version: str) -> str:
    """Composer's normalized form of ``version``; ``ValueError`` when it is none."""
    text = version.strip()
    m = _ALIAS_RE.match(text)
    if m:
        text = m.group(1)
    m = _FLAG_RE.search(text)
    if m:
        text = text[: len(text) - len(m.group(0))]
    if text in ("master", "trunk", "default"):
        text = "dev-" + text
    if text[:4].lower() == "dev-":
        return "dev-" + text[4:]
    m = _BUILD_RE.match(text)
    if m:
        text = m.group(1)
    index = 0
    m = _CLASSIC_RE.match(text)
    if m:
        text = m.group(1) + "".join(_g(m, i) or ".0" for i in (2, 3, 4))
        index = 5
    else:
        m = _DATE_RE.match(text)
        if m:
            text = re.sub(r"\D", ".", m.group(1))
            index = 2
    if m and index:
        if _g(m, index):
            if m.group(index) == "stable":
                return text
            text += "-" + _expand_stability(m.group(index)) + _g(m, index + 1).lstrip(".-")
        if _g(m, index + 2):
            text += "-dev"
        return text
    m = _DEV_SUFFIX_RE.match(text)
    if m:
        branch = normalize_branch(m.group(1))
        if "dev-" not in branch:
            return branch
    raise ValueError(f"invalid version string {version!r}")


def normalize_branch(name: str) -> str:
    """Composer's normalized form of a branch name (``1.2.x`` -> ``1.2.9999999.9999999-dev``)."""
    name = name.strip()
    m = _BRANCH_RE.match(name)
    if m:
        parts = [(_g(m, i) or ".x").replace("*", "x").replace("X", "x") for i in range(1, 5)]
        return "".join(parts).replace("x", "9999999") + "-dev"
    return "dev-" + name


# --- PHP's version_compare ---------------------------------------------------------------

_SPECIAL_FORMS = (
    ("dev", 0),
    ("alpha", 1),
    ("a", 1),
    ("beta", 2),
    ("b", 2),
    ("RC", 3),
    ("rc", 3),
    ("#", 4),
    ("pl", 5),
    ("p", 5),
)
_END = (4, -1)
"""What a shorter version compares as after its last part: below any number, between
``RC`` and ``patch`` (PHP compares the longer version's next part with ``#``)."""

Key = tuple[tuple[int, int], ...]


def _special(part: str) -> int:
    for name, order in _SPECIAL_FORMS:
        if part.startswith(name):
            return order
    return -1


def _canonical(version: str) -> str:
    """PHP's ``php_canonicalize_version``: ``-_+`` and other non-alphanumerics become
    ``.``, and a ``.`` separates digits from letters."""
    if not version:
        return ""
    out = [version[0]]
    prev = version[0]
    for ch in version[1:]:
        last = out[-1]
        if ch in "-_+":
            if last != ".":
                out.append(".")
        elif (_is_ndig(prev) and _is_dig(ch)) or (_is_dig(prev) and _is_ndig(ch)):
            if last != ".":
                out.append(".")
            out.append(ch)
        elif not (ch.isascii() and ch.isalnum()):
            if last != ".":
                out.append(".")
        else:
            out.append(ch)
        prev = ch
    return "".join(out)


def _is_dig(ch: str) -> bool:
    return ch.isascii() and ch.isdigit()


def _is_ndig(ch: str) -> bool:
    return not _is_dig(ch) and ch != "."


@functools.lru_cache(maxsize=65536)
def compare_key(normalized: str) -> Key:
    """A sort key that orders normalized versions exactly as PHP's ``version_compare``."""
    parts = [p for p in _canonical(normalized).split(".") if p]
    key = [(4, int(p)) if _is_dig(p[0]) else (_special(p), 0) for p in parts]
    key.append(_END)
    return tuple(key)


def version_compare(a: str, b: str) -> int:
    """-1, 0 or 1 as PHP's ``version_compare(a, b)`` (for normalized versions)."""
    ka, kb = compare_key(a), compare_key(b)
    return (ka > kb) - (ka < kb)


# --- constraints ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Bound:
    """One ``op version`` of a constraint; ``version`` is normalized."""

    op: str
    version: str
    branch: bool = field(init=False, repr=False, compare=False)
    key: Key = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # NOTE: the comparison key is made once; matching a fleet compares it millions of
        # times.
        object.__setattr__(self, "branch", self.version.startswith("dev-"))
        object.__setattr__(self, "key", compare_key(self.version))

    def matches(self, version: str) -> bool:
        """Whether normalized ``version`` satisfies this bound (composer's
        ``matchSpecific`` with an ``==`` provider)."""
        return self.matches_key(version, compare_key(version))

    def matches_key(self, version: str, key: Key) -> bool:
        """:meth:`matches` with ``version``'s :func:`compare_key` given."""
        op = self.op
        if self.branch or version.startswith("dev-"):
            a_branch = version.startswith("dev-")
            if op == "!=":
                return version != self.version
            if a_branch and self.branch:
                return op == "==" and version == self.version
            return False
        if op == "<":
            return key < self.key
        if op == ">=":
            return key >= self.key
        if op == "<=":
            return key <= self.key
        if op == ">":
            return key > self.key
        if op == "==":
            return key == self.key
        return key != self.key

    def __str__(self) -> str:
        return f"{self.op}{self.version}"


@dataclass(frozen=True)
class Constraint:
    """A parsed constraint: OR of AND-groups of bounds (an empty group matches all)."""

    text: str
    groups: tuple[tuple[Bound, ...], ...]

    def matches(self, version: str) -> bool:
        """Whether ``version`` (any spelling; normalized here) satisfies the constraint.
        ``ValueError`` when ``version`` is not a version."""
        return self.matches_normalized(normalize(version))

    def matches_normalized(self, version: str) -> bool:
        return self.matches_key(version, compare_key(version))

    def matches_key(self, version: str, key: Key) -> bool:
        """Whether normalized ``version`` with :func:`compare_key` ``key`` satisfies it."""
        for group in self.groups:
            for bound in group:
                if not bound.matches_key(version, key):
                    break
            else:
                return True
        return False

    def __str__(self) -> str:
        return " || ".join(" ".join(map(str, g)) or "*" for g in self.groups)


@functools.lru_cache(maxsize=65536)
def parse_constraint(text: str) -> Constraint:
    """Parse a composer constraint; ``ValueError`` naming it when it is none."""
    groups: list[tuple[Bound, ...]] = []
    for part in _OR_SPLIT.split(text.strip()):
        ands = _AND_SPLIT.split(part)
        bounds: list[Bound] = []
        for one in ands:
            bounds.extend(_parse_one(one))
        groups.append(tuple(bounds))
    return Constraint(text, tuple(groups))


def satisfies(version: str, constraint: str) -> bool:
    """Composer's ``Semver::satisfies(version, constraint)``."""
    return parse_constraint(constraint).matches(version)


def _manipulate(parts: list[str], position: int, increment: int = 0) -> str:
    """Composer's ``manipulateVersionString`` (parts[1..4] are the numbers)."""
    p = list(parts)
    for i in range(4, 0, -1):
        if i > position:
            p[i] = "0"
        elif i == position and increment:
            p[i] = str(int(p[i]) + increment)
    return ".".join(p[1:5])


def _parse_one(constraint: str) -> list[Bound]:
    m = _ALIAS_RE.match(constraint)
    if m:
        constraint = m.group(1)
    stability = ""
    m = _C_FLAG_RE.match(constraint)
    if m:
        constraint = m.group(1) if m.group(1) != "" else "*"
        if m.group(2) != "stable":
            stability = m.group(2)
    m = _C_REF_RE.match(constraint)
    if m:
        constraint = m.group(1)
    m = _C_ANY_RE.match(constraint)
    if m:
        if _g(m, 1) or _g(m, 2):
            return [Bound(">=", "0.0.0.0-dev")]
        return []
    m = _C_TILDE_RE.match(constraint)
    if m:
        if constraint.startswith("~>"):
            raise ValueError(f"invalid operator '~>' in {constraint!r}; use '~'")
        position = next((i for i in (4, 3, 2) if _g(m, i) != ""), 1)
        if _g(m, 8):
            position += 1
        suffix = "" if (_g(m, 5) or _g(m, 7) or _g(m, 8)) else "-dev"
        low = normalize((constraint + suffix)[1:])
        parts = ["", *(_g(m, i) for i in range(1, 5))]
        high = _manipulate(parts, max(1, position - 1), 1) + "-dev"
        return [Bound(">=", low), Bound("<", high)]
    m = _C_CARET_RE.match(constraint)
    if m:
        if m.group(1) != "0" or _g(m, 2) == "":
            position = 1
        elif m.group(2) != "0" or _g(m, 3) == "":
            position = 2
        else:
            position = 3
        suffix = "" if (_g(m, 5) or _g(m, 7) or _g(m, 8)) else "-dev"
        low = normalize((constraint + suffix)[1:])
        parts = ["", *(_g(m, i) for i in range(1, 5))]
        return [Bound(">=", low), Bound("<", _manipulate(parts, position, 1) + "-dev")]
    m = _C_WILD_RE.match(constraint)
    if m:
        position = next((i for i in (3, 2) if _g(m, i) != ""), 1)
        parts = ["", _g(m, 1), _g(m, 2), _g(m, 3), ""]
        low = _manipulate(parts, position) + "-dev"
        high = _manipulate(parts, position, 1) + "-dev"
        if low == "0.0.0.0-dev":
            return [Bound("<", high)]
        return [Bound(">=", low), Bound("<", high)]
    m = _C_HYPHEN_RE.match(constraint)
    if m:
        low_suffix = "" if (_g(m, 6) or _g(m, 8) or _g(m, 9)) else "-dev"
        low = Bound(">=", normalize(m.group("from")) + low_suffix)
        if (_g(m, 12) and _g(m, 13)) or _g(m, 15) or _g(m, 17) or _g(m, 18):
            return [low, Bound("<=", normalize(m.group("to")))]
        normalize(m.group("to"))
        parts = ["", _g(m, 11), _g(m, 12), _g(m, 13), _g(m, 14)]
        high = _manipulate(parts, 1 if _g(m, 12) == "" else 2, 1) + "-dev"
        return [low, Bound("<", high)]
    return [_basic(constraint, stability)]


def _basic(constraint: str, stability: str) -> Bound:
    m = _C_BASIC_RE.match(constraint)
    assert m is not None  # NOTE: the pattern matches any string
    op_text, rest = _g(m, 1), m.group(2)
    try:
        try:
            version = normalize(rest)
        except ValueError:
            # NOTE: composer reads "foobar-dev" as the branch "dev-foobar".
            if rest.endswith("-dev") and _DEV_NAME_RE.match(rest):
                version = normalize("dev-" + rest[:-4])
            else:
                raise
    except ValueError as exc:
        raise ValueError(f"could not parse version constraint {constraint!r}: {exc}") from None
    op = op_text or "="
    if op not in ("==", "=") and stability and _stability(version) == "stable":
        version += "-" + stability
    elif op in ("<", ">=") and not _SUFFIX_RE.search(rest.lower()) and not rest.startswith("dev-"):
        version += "-dev"
    return Bound({"=": "==", "<>": "!="}.get(op, op), version)


_STAB_RE = re.compile(_MODIFIER + r"(?:\+.*)?$", re.IGNORECASE)


def _stability(version: str) -> str:
    """Composer's ``VersionParser::parseStability``."""
    version = re.sub(r"#.+$", "", version)
    if version.startswith("dev-") or version.endswith("-dev"):
        return "dev"
    m = _STAB_RE.search(version.lower())
    if m and m.group(3):
        return "dev"
    if m and m.group(1):
        word = m.group(1)
        if word in ("beta", "b"):
            return "beta"
        if word in ("alpha", "a"):
            return "alpha"
        if word == "rc":
            return "RC"
    return "stable"
