"""Differential test: patchd's composer constraints against composer/semver itself.

Hypothesis generates (constraint, version) pairs in composer's syntax; one php process
(kept for the module) answers all of them with ``Semver::satisfies`` (Debian's
php-composer-semver, installed by scripts/test.sh), and patchd must give the same answer,
including which inputs are rejected.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.advisories.oracle import Composer, available, python_answer

assert available(), "php and php-composer-semver are needed (bash scripts/test.sh installs them)"

_num = st.sampled_from(["0", "1", "2", "3", "7", "10", "12", "99"])
_suffix = st.sampled_from(
    [
        *("", "", "", "-beta", "-RC", "-rc", "-alpha", "-dev", "-p", "-patch", "beta", ".beta"),
        *("-b", "-a", "-pl", "-stable", "-beta.2", "-RC1", "-beta2-dev", "-stable-dev"),
    ]
).flatmap(lambda s: st.sampled_from(["", "1", ".3"]).map(lambda n: s + n if s else s))


@st.composite
def versions(draw: st.DrawFn) -> str:
    nums = draw(st.lists(_num, min_size=1, max_size=4))
    prefix = draw(st.sampled_from(["", "", "", "v"]))
    build = draw(st.sampled_from(["", "", "", "", "+build.1"]))
    return prefix + ".".join(nums) + draw(_suffix) + build


@st.composite
def single(draw: st.DrawFn) -> str:
    v = draw(versions())
    kind = draw(st.integers(0, 7))
    if kind <= 1:
        op = draw(st.sampled_from(["<", "<=", ">", ">=", "=", "==", "!=", "<>", ""]))
        return op + draw(st.sampled_from(["", " "])) + v
    if kind == 2:
        return "^" + v
    if kind == 3:
        return "~" + v
    if kind == 4:
        head = ".".join(draw(st.lists(_num, min_size=1, max_size=3)))
        return head + draw(st.sampled_from([".*", ".x", ".X", ".*.*"]))
    if kind == 5:
        return v + " - " + draw(versions())
    if kind == 6:
        return v + draw(st.sampled_from(["@dev", "@beta", "@stable", "@RC", "@alpha"]))
    return draw(
        st.sampled_from(
            [
                *("*", "x", "v*", "*.*", "dev-master", "1.x-dev", "2.1.x-dev", "dev-foo#abc"),
                *("foobar-dev", "~>1.2", "master", "1.0 as 2.0"),
            ]
        )
    )


@st.composite
def constraints(draw: st.DrawFn) -> str:
    groups = draw(
        st.lists(
            st.lists(single(), min_size=1, max_size=3).flatmap(
                lambda parts: st.sampled_from([",", " ", ", "]).map(lambda sep: sep.join(parts))
            ),
            min_size=1,
            max_size=3,
        )
    )
    return draw(st.sampled_from(["||", " || ", "|", " | "])).join(groups)


@pytest.fixture(scope="module")
def composer() -> Iterator[Composer]:
    c = Composer()
    yield c
    c.close()


SEEN: Counter[str] = Counter()


@settings(max_examples=2000, deadline=None, suppress_health_check=list(HealthCheck))
@given(pair=st.tuples(constraints(), versions()))
def test_same_answers_as_composer(composer: Composer, pair: tuple[str, str]) -> None:
    expected = composer.answer(*pair)
    SEEN[expected] += 1
    assert python_answer(*pair) == expected


def test_both_answers_were_exercised() -> None:
    # NOTE: runs after the property test (file order): the generator must reach matches,
    # non-matches and rejected constraints, or the property test proves little.
    assert SEEN["1"] > 100 and SEEN["0"] > 100 and SEEN["C"] > 10, SEEN


def test_documented_table_agrees_with_composer(composer: Composer) -> None:
    from tests.advisories.test_constraints import TABLE

    pairs = [(c, v) for c, v, _ in TABLE]
    assert composer.answers(pairs) == ["1" if want else "0" for _, _, want in TABLE]
