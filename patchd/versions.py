"""Version numbers as CMSs write them, and version sets (``12.4.0-12.4.10,6.4.1``).

Versions compare by their numeric components first (``6.4.10 > 6.4.9``); a
pre-release suffix (``6.5-beta2``, ``12.4.0-rc1``) sorts before the release it precedes.

NOTE: stdlib-only; the host-side agent imports it.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

_VERSION_RE = re.compile(
    r"^v?(?P<nums>\d+(?:\.\d+)*)(?:[-._+]?(?P<pre>(?:alpha|beta|rc|a|b|dev|pre)[.-]?\d*))?$",
    re.IGNORECASE,
)
_PRE_ORDER = {"dev": 0, "alpha": 1, "a": 1, "beta": 2, "b": 2, "pre": 3, "rc": 3}


@dataclass(frozen=True)
class Version:
    """A parsed CMS version. ``text`` keeps the spelling it was read with."""

    text: str
    nums: tuple[int, ...]
    pre: tuple[int, int] | None = None  # (stage, number); None for a final release

    @classmethod
    def parse(cls, text: str) -> Version:
        """Parse ``text``; raises ``ValueError`` naming it when it is no version."""
        return _parse_version(text)

    @classmethod
    def _parse(cls, text: str) -> Version:
        cleaned = text.strip()
        m = _VERSION_RE.match(cleaned)
        if not m:
            raise ValueError(f"not a version: {text!r}")
        nums = tuple(int(p) for p in m.group("nums").split("."))
        pre = None
        if m.group("pre"):
            word = re.match(r"[a-zA-Z]+", m.group("pre"))
            assert word is not None
            digits = re.sub(r"\D", "", m.group("pre")[word.end() :])
            pre = (_PRE_ORDER[word.group(0).lower()], int(digits or 0))
        return cls(cleaned, nums, pre)

    @functools.cached_property
    def key(self) -> tuple[tuple[int, ...], tuple[int, int]]:
        """What versions compare by (made once: rollouts compare the same few versions for
        every installation)."""
        # Trailing zeros do not matter: 6.4 == 6.4.0.
        nums = self.nums
        while len(nums) > 1 and nums[-1] == 0:
            nums = nums[:-1]
        return nums, self.pre if self.pre is not None else (99, 0)

    def _key(self) -> tuple[tuple[int, ...], tuple[int, int]]:
        return self.key

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self.key == other.key

    def __hash__(self) -> int:
        return hash(self.key)

    def __lt__(self, other: Version) -> bool:
        return self.key < other.key

    def __le__(self, other: Version) -> bool:
        return self.key <= other.key

    def __gt__(self, other: Version) -> bool:
        return self.key > other.key

    def __ge__(self, other: Version) -> bool:
        return self.key >= other.key

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class VersionRange:
    """An inclusive range ``low-high``; a single version has ``low == high``."""

    low: Version
    high: Version

    def __contains__(self, version: Version) -> bool:
        return self.low <= version <= self.high

    def __str__(self) -> str:
        return str(self.low) if self.low == self.high else f"{self.low}-{self.high}"


@dataclass(frozen=True)
class VersionSet:
    """A comma list of versions and inclusive ranges, as written on the command line."""

    ranges: tuple[VersionRange, ...]

    @classmethod
    def parse(cls, text: str) -> VersionSet:
        """Parse ``"12.4.0-12.4.10,6.4.1"``; raises ``ValueError`` naming the bad part."""
        return _parse_set(text)

    @classmethod
    def _parse(cls, text: str) -> VersionSet:
        ranges: list[VersionRange] = []
        for part in (p.strip() for p in text.split(",")):
            if not part:
                continue
            low_high = _split_range(part)
            if low_high is None:
                v = Version.parse(part)
                ranges.append(VersionRange(v, v))
                continue
            low, high = (Version.parse(x) for x in low_high)
            if high < low:
                raise ValueError(f"range {part!r} ends before it starts")
            ranges.append(VersionRange(low, high))
        if not ranges:
            raise ValueError(f"empty version set: {text!r}")
        return cls(tuple(ranges))

    def __contains__(self, version: Version | str) -> bool:
        v = Version.parse(version) if isinstance(version, str) else version
        return _set_contains(self, v)

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.ranges)


# NOTE: rollouts compare the same few version strings for every installation; both
# types are frozen, so parsed values are shared (bounded caches).
@functools.lru_cache(maxsize=4096)
def _parse_version(text: str) -> Version:
    return Version._parse(text)


@functools.lru_cache(maxsize=256)
def _parse_set(text: str) -> VersionSet:
    return VersionSet._parse(text)


@functools.lru_cache(maxsize=8192)
def _set_contains(vs: VersionSet, v: Version) -> bool:
    return any(v in r for r in vs.ranges)


def _split_range(part: str) -> tuple[str, str] | None:
    """Split ``a-b`` into its ends, telling a range from a pre-release like ``1.0-rc1``."""
    for i, ch in enumerate(part):
        if ch == "-" and i > 0:
            left, right = part[:i].strip(), part[i + 1 :].strip()
            if right[:1].isdigit() and _VERSION_RE.match(left) and _VERSION_RE.match(right):
                return left, right
    return None


def branch_start(version: str) -> Version:
    """The first release of ``version``'s branch: ``12.4.10`` -> ``12.4.0``, ``6.4.2`` ->
    ``6.4.0`` (which equals WordPress's ``6.4``); a two-part version starts its own branch
    (``6.4`` -> ``6.4``). A pre-release's branch starts at its own version."""
    v = Version.parse(version)
    if v.pre is not None or len(v.nums) < 3:
        return v
    first = ".".join(str(n) for n in (*v.nums[:-1], 0))
    return Version.parse(first)


def releases_in(r: VersionRange) -> list[Version] | None:
    """Every release a range spans when they can be counted (same length, differing only
    in the last number, no pre-release: ``12.4.0-12.4.3`` -> four); None otherwise."""
    low, high = r.low, r.high
    if low.pre is not None or high.pre is not None or len(low.nums) != len(high.nums):
        return None
    if low.nums[:-1] != high.nums[:-1]:
        return None
    head = ".".join(str(n) for n in low.nums[:-1])
    return [
        Version.parse(f"{head}.{n}" if head else str(n))
        for n in range(low.nums[-1], high.nums[-1] + 1)
    ]
