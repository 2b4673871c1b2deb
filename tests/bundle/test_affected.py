"""Issue 13: the default affected set is the branch up to OLD; uncovered versions listed."""

from __future__ import annotations

import pytest

from patchd.bundle.builder import default_affected, uncovered_versions
from patchd.versions import Version, VersionRange, branch_start, releases_in


@pytest.mark.parametrize(
    ("version", "start"),
    [("12.4.10", "12.4.0"), ("6.4.2", "6.4"), ("6.4", "6.4"), ("1.6.5", "1.6.0"),
     ("12.4.0-rc1", "12.4.0-rc1")],
)  # fmt: skip
def test_branch_start(version: str, start: str) -> None:
    assert branch_start(version) == Version.parse(start)


def test_default_affected_spans_the_branch_and_keeps_backports_outside_it() -> None:
    assert default_affected("12.4.10", ["12.4.3", "12.4.8"]) == "12.4.0-12.4.10"
    assert default_affected("6.4.2", []) == "6.4.0-6.4.2"
    assert default_affected("12.4.10", ["11.5.30"]) == "12.4.0-12.4.10,11.5.30"


def test_releases_in_counts_patch_levels_only() -> None:
    r = VersionRange(Version.parse("12.4.0"), Version.parse("12.4.3"))
    assert [str(v) for v in releases_in(r) or []] == ["12.4.0", "12.4.1", "12.4.2", "12.4.3"]
    assert releases_in(VersionRange(Version.parse("11.5.30"), Version.parse("12.4.3"))) is None


def test_uncovered_versions_are_the_affected_ones_without_a_variant() -> None:
    got = uncovered_versions("12.4.0-12.4.10", ["12.4.10", "12.4.8", "12.4.4-12.4.6"])
    assert got == ["12.4.0", "12.4.1", "12.4.2", "12.4.3", "12.4.7", "12.4.9"]
    assert uncovered_versions("6.4.0-6.4.2", ["6.4.0-6.4.2"]) == []
    # a range whose releases cannot be counted is listed whole when an end is uncovered
    assert uncovered_versions("11.5.30-12.4.3", ["12.4.3"]) == ["11.5.30-12.4.3"]
