"""Composer constraints and OSV events: a table from composer's documented rules."""

from __future__ import annotations

import itertools

import pytest

from patchd.advisories.constraints import normalize, parse_constraint, satisfies, version_compare
from patchd.advisories.ranges import Affected, Span, fixed_of_constraint

# (constraint, version, expected) — from composer's "Versions and constraints" article
# and the FriendsOfPHP database's spellings.
TABLE = [
    # ranges: ',' and ' ' are AND, '||' and '|' are OR; AND binds tighter
    (">=12.0.0,<12.4.11", "12.4.10", True),
    (">=12.0.0,<12.4.11", "12.4.11", False),
    (">=12.0.0,<12.4.11", "11.5.99", False),
    (">=1.0 <1.1 || >=1.2", "1.0.5", True),
    (">=1.0 <1.1 || >=1.2", "1.1.0", False),
    (">=1.0 <1.1 || >=1.2", "1.3", True),
    ("<1.6.8 || >=1.7,<1.7.2", "1.6.7", True),
    ("<1.6.8 || >=1.7,<1.7.2", "1.6.8", False),
    ("<1.6.8 || >=1.7,<1.7.2", "1.7.1", True),
    ("<1.6.8 || >=1.7,<1.7.2", "1.7.2", False),
    ("<1.6.8|>=1.7,<1.7.2", "1.7.0", True),
    ("!=1.2.3", "1.2.3", False),
    ("<>1.2.3", "1.2.4", True),
    ("1.0.2", "1.0.2", True),
    ("1.0.2", "v1.0.2", True),
    ("==1.0.2", "1.0.2.0", True),
    # '<' and '>=' without a suffix compare against -dev: pre-releases of the bound
    ("<1.7", "1.7.0-beta1", False),
    ("<1.7", "1.6.99", True),
    (">=1.7", "1.7.0-RC1", True),
    ("<=1.7", "1.7.0-RC1", True),
    (">1.7", "1.7.0-patch1", True),
    ("<1.7.0-beta2", "1.7.0-beta1", True),
    # hyphen ranges: a partial right end is a wildcard
    ("1.0 - 2.0", "2.0.5", True),
    ("1.0 - 2.0", "2.1.0", False),
    ("1.0.0 - 2.1.0", "2.1.0", True),
    ("1.0.0 - 2.1.0", "2.1.1", False),
    # wildcards
    ("1.0.*", "1.0.9", True),
    ("1.0.*", "1.1.0", False),
    ("1.0.*", "1.0.0-beta1", True),
    ("1.*", "1.99", True),
    ("*", "5.0", True),
    # tilde: the last given number may change
    ("~1.2", "1.9.0", True),
    ("~1.2", "2.0.0", False),
    ("~1.2.3", "1.2.9", True),
    ("~1.2.3", "1.3.0", False),
    ("~1.6.7", "1.6.6", False),
    ("~1", "1.9", True),
    ("~1", "2.0", False),
    # caret: no change of the left-most non-zero number
    ("^1.2.3", "1.9.9", True),
    ("^1.2.3", "2.0.0", False),
    ("^1.2", "1.2.0", True),
    ("^1.2", "1.1.9", False),
    ("^0.3", "0.3.9", True),
    ("^0.3", "0.4.0", False),
    ("^0.0.3", "0.0.4", False),
    # stability order: dev < alpha < beta < RC < stable < patch
    ("<1.0", "1.0.0-dev", False),
    ("<=1.0-RC1", "1.0-beta5", True),
    (">1.0", "1.0-p1", True),
    ("<1.0-beta", "1.0-alpha3", True),
    (">=1.0@beta", "1.0.0-beta2", True),
    ("1.0.0-RC1", "1.0.0rc1", True),
    # branches never match numeric constraints
    (">=1.0", "dev-master", False),
    ("dev-master", "dev-master", True),
]


@pytest.mark.parametrize(("constraint", "version", "expected"), TABLE)
def test_documented_rules(constraint: str, version: str, expected: bool) -> None:
    assert satisfies(version, constraint) is expected


@pytest.mark.parametrize(
    ("version", "normalized"),
    [
        ("1.2", "1.2.0.0"),
        ("v1.2.3", "1.2.3.0"),
        ("1.2.3-beta2", "1.2.3.0-beta2"),
        ("1.2.3b2", "1.2.3.0-beta2"),
        ("1.0.0-RC1", "1.0.0.0-RC1"),
        ("1.0-pl3", "1.0.0.0-patch3"),
        ("1.2.x-dev", "1.2.9999999.9999999-dev"),
        ("2010-01-02", "2010.01.02"),
        ("1.0.0+build.5", "1.0.0.0"),
        ("master", "dev-master"),
    ],
)
def test_normalize(version: str, normalized: str) -> None:
    assert normalize(version) == normalized


@pytest.mark.parametrize("bad", ["", "~>1.2", "foo bar", ">=x.y", "1.2.3.4.5"])
def test_invalid_constraints_are_errors(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_constraint(bad)


def test_version_compare_orders_stabilities() -> None:
    order = ["1.0.0.0-dev", "1.0.0.0-alpha1", "1.0.0.0-beta1", "1.0.0.0-RC1", "1.0.0.0"]
    order += ["1.0.0.0-patch1", "1.0.0.1"]
    for low, high in itertools.pairwise(order):
        assert version_compare(low, high) == -1
        assert version_compare(high, low) == 1


EVENTS = Affected(
    (
        Span(events=(("introduced", "0"), ("fixed", "1.6.8"))),
        Span(events=(("introduced", "1.7.0"), ("fixed", "1.7.2"))),
        Span(events=(("introduced", "2.0"), ("last_affected", "2.0.3"))),
        Span(events=(("introduced", "3.0"), ("limit", "3.1"))),
        Span(versions=("4.0.1", "4.0.2")),
    )
)


@pytest.mark.parametrize(
    ("version", "affected", "fixed"),
    [
        ("1.0", True, "1.6.8"),
        ("1.6.8", False, None),
        ("1.7.1", True, "1.7.2"),
        ("1.7.2", False, None),
        ("2.0.3", True, None),
        ("2.0.4", False, None),
        ("3.0.5", True, None),
        ("3.1", False, None),
        ("4.0.1", True, None),
        ("4.0.3", False, None),
        ("1.7.0-beta1", False, None),  # after the first fix, before 1.7.0 opens
    ],
)
def test_osv_events(version: str, affected: bool, fixed: str | None) -> None:
    hit, fixed_in = EVENTS.match(version)
    assert hit is affected
    if affected and fixed:
        assert fixed_in == fixed


def test_fixed_of_constraint() -> None:
    assert fixed_of_constraint([">=12.0.0", "<12.4.11"]) == "12.4.11"
    assert fixed_of_constraint([">=1.0,<1.0.3"]) == "1.0.3"
    assert fixed_of_constraint([">=1.0"]) is None
