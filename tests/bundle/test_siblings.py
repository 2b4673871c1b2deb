"""The sibling classifier: a change is security when enough sibling releases made it too."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pytest

from patchd.bundle.classifiers import (
    HeuristicsClassifier,
    NoiseClassifier,
    SiblingRelease,
    SiblingsClassifier,
    default_chain,
)
from patchd.bundle.classifiers.siblings import default_min_siblings, run_key
from patchd.bundle.interface import Verdict
from patchd.engine.model import HunkLine
from tests.bundle.helpers import diff_of, file_change

PATH = "wp-admin/edit.php"
OLD_FILE = "<?php\nfunction edit() {\n\t$id = $_GET['id'];\n\techo $title;\n\treturn $id;\n}\n"


def sibling(
    label: str, *hunks: Sequence[str], path: str = PATH, old: Mapping[str, str] | None = None
) -> SiblingRelease:
    """A sibling whose release diff changes ``path`` with ``hunks`` and whose OLD has ``old``."""
    files = dict(old) if old is not None else {PATH: OLD_FILE}
    diff = diff_of(file_change(path, *hunks)) if hunks else diff_of()
    return SiblingRelease.from_diff(
        label,
        diff,
        lambda p: files[p].encode() if p in files else None,
        lambda p: p in files,
    )


def classify(lines: Sequence[str], siblings: Sequence[SiblingRelease], **kw: int) -> Verdict:
    change = file_change(PATH, lines)
    v = SiblingsClassifier(siblings, **kw).classify(change.hunks[0], change)
    assert v is not None
    return v


ESCAPE = [" function edit() {", "-\techo $title;", "+\techo esc_html( $title );", " }"]
# the same change in an older branch: other context, other indentation
ESCAPE_OLDER = [
    " function edit( $legacy = false ) {",
    "-    echo $title;",
    "+    echo  esc_html( $title );",
    " \treturn;",
]
REFACTOR = [" function edit() {", "-\t$id = $_GET['id'];", "+\t$id = get_id();", " }"]


def test_default_min_siblings_is_a_majority() -> None:
    assert [default_min_siblings(n) for n in (1, 2, 3, 4, 5)] == [1, 2, 2, 3, 3]


def test_run_key_normalises_whitespace_ignores_blank_lines_and_order() -> None:
    def lines(*texts: str) -> list[HunkLine]:
        return [HunkLine(t[0], (t[1:] + "\n").encode()) for t in texts]  # type: ignore[arg-type]

    a = run_key(lines("-\techo $a;", "+\techo  esc_html( $a );", "+"))
    b = run_key(lines("-echo $a;", "+  echo esc_html( $a );  "))
    assert a == b == (("echo $a;",), ("echo esc_html( $a );",))
    # the same added block aligned differently (a repeated "}" above instead of below)
    top = run_key(lines("+}", "+", "+function h() {", "+\treturn 1;"))
    bottom = run_key(lines("+", "+function h() {", "+\treturn 1;", "+}"))
    assert top == bottom
    assert run_key(lines("-\tfoo();", "+    foo();")) is None  # whitespace only: neutral


def test_change_in_every_sibling_is_kept_with_its_evidence() -> None:
    siblings = [sibling(v, ESCAPE_OLDER) for v in ("6.3.3", "6.2.4", "6.1.5")]
    v = classify(ESCAPE, siblings)
    assert (v.decision, v.classifier) == ("keep", "siblings")
    assert v.reason == "same change in 3 of 3 sibling releases (6.3.3, 6.2.4, 6.1.5)"
    assert v.siblings == ("6.3.3", "6.2.4", "6.1.5") and v.split is None


def test_majority_rule_and_min_siblings() -> None:
    siblings = [sibling("6.3.3", ESCAPE_OLDER), sibling("6.2.4"), sibling("6.1.5")]
    v = classify(ESCAPE, siblings)
    assert v.decision == "drop" and v.siblings == ("6.3.3",)
    assert v.reason == (
        "found in only 1 of 3 sibling releases (6.3.3), fewer than --min-siblings 2"
    )
    kept = classify(ESCAPE, siblings, min_siblings=1)
    assert kept.decision == "keep"
    assert kept.reason == "same change in 1 of 3 sibling releases (6.3.3)"


def test_change_in_no_sibling_that_had_the_code_is_dropped() -> None:
    siblings = [sibling(v, ESCAPE_OLDER) for v in ("6.3.3", "6.2.4", "6.1.5")]
    v = classify(REFACTOR, siblings)
    assert v.decision == "drop" and v.siblings == ()
    assert v.reason == "found in none of the sibling releases 6.3.3, 6.2.4, 6.1.5"


def test_siblings_without_the_code_cannot_tell() -> None:
    # only one sibling had "$id = $_GET['id'];": the others cannot show the change
    other = {PATH: "<?php\nfunction edit() {\n\techo $title;\n}\n"}
    siblings = [
        sibling("6.3.3"),
        sibling("6.2.4", old=other),
        sibling("6.1.5", old={}),
    ]
    v = classify(REFACTOR, siblings)
    assert v.decision == "undecided" and v.classifier == "siblings"
    assert v.reason == (
        "siblings cannot tell: only 1 of 3 sibling releases had the code this change touches "
        f"in {PATH} (--min-siblings 2)"
    )


def test_pure_addition_needs_its_surrounding_lines_in_the_sibling() -> None:
    add = [" function edit() {", "+\tcheck_admin_referer( 'edit' );", " \t$id = $_GET['id'];"]
    v = classify(add, [sibling("6.3.3"), sibling("6.2.4", old={PATH: "<?php\n"})])
    assert v.decision == "undecided"
    v = classify(add, [sibling("6.3.3"), sibling("6.2.4")])
    assert v.decision == "drop"


def test_mixed_hunk_is_split_to_the_shared_runs() -> None:
    both = [
        " function edit() {",
        "-\t$id = $_GET['id'];",
        "+\t$id = get_id();",
        " \t// keep",
        " \t// these",
        " \t// apart",
        "-\techo $title;",
        "+\techo esc_html( $title );",
        " }",
    ]
    shared = ["-echo $title;", "+echo esc_html( $title );"]
    siblings = [sibling(v, shared) for v in ("6.3.3", "6.2.4", "6.1.5")]
    v = classify(both, siblings)
    assert v.decision == "keep" and v.split is not None
    kept = [ln.data.decode() for h in v.split for ln in h.lines if ln.kind != " "]
    assert kept == ["\techo $title;\n", "\techo esc_html( $title );\n"]
    assert v.reason.startswith("split: keeps 1 of 2 changes: same change in 3 of 3 sibling")
    assert v.reason.endswith(
        "; the other 1 found in none of the sibling releases 6.3.3, 6.2.4, 6.1.5"
    )


def test_other_paths_do_not_count() -> None:
    siblings = [sibling(v, ESCAPE_OLDER, path="wp-admin/other.php") for v in ("a", "b")]
    assert classify(ESCAPE, siblings).decision == "drop"


def test_whitespace_only_hunk_and_binary_get_no_opinion() -> None:
    clf = SiblingsClassifier([sibling("6.3.3")])
    change = file_change(PATH, [" a", "-\tfoo();", "+    foo();"])
    assert clf.classify(change.hunks[0], change) is None
    assert clf.classify(None, change) is None


def test_min_siblings_must_fit_the_siblings_given() -> None:
    with pytest.raises(ValueError, match="min_siblings must be 1 to 2, not 3"):
        SiblingsClassifier([sibling("a"), sibling("b")], min_siblings=3)


def test_chain_order_noise_git_siblings_heuristics() -> None:
    clf = SiblingsClassifier([sibling("6.3.3")])
    chain = default_chain(siblings=clf)
    assert [type(c) for c in chain] == [NoiseClassifier, SiblingsClassifier, HeuristicsClassifier]


TWO_RUNS = [
    " function edit() {",
    "-\t$id = $_GET['id'];",
    "+\t$id = get_id();",
    " \t// keep",
    " \t// these",
    " \t// apart",
    "-\techo $title;",
    "+\techo esc_html( $title );",
    " }",
]


def test_runs_found_in_different_siblings_name_them_all() -> None:
    refactor = ["-\t$id = $_GET['id'];", "+\t$id = get_id();"]
    siblings = [
        sibling("6.3.3", ESCAPE_OLDER, refactor),
        sibling("6.2.4", ESCAPE_OLDER),
        sibling("6.1.5", refactor),
    ]
    v = classify(TWO_RUNS, siblings)
    assert v.decision == "keep" and v.split is None
    assert v.reason == "each change in at least 2 of 3 sibling releases (6.3.3, 6.2.4, 6.1.5)"


def test_shared_run_beside_a_run_siblings_cannot_judge_stays_undecided() -> None:
    # the escaping is in every sibling; "$id = $_GET['id'];" was in none of their files
    no_id = {PATH: "<?php\nfunction edit() {\n\techo $title;\n}\n"}
    siblings = [sibling(v, ESCAPE_OLDER, old=no_id) for v in ("6.3.3", "6.2.4", "6.1.5")]
    v = classify(TWO_RUNS, siblings)
    assert v.decision == "undecided" and v.siblings == ("6.3.3", "6.2.4", "6.1.5")
    assert v.reason == (
        "1 of 2 changes shared with siblings, but siblings cannot tell: only 0 of 3 sibling "
        f"releases had the code this change touches in {PATH} (--min-siblings 2)"
    )


def test_split_names_every_sibling_where_a_change_was_found() -> None:
    refactor = ["-\t$id = $_GET['id'];", "+\t$id = get_id();"]
    siblings = [
        sibling("6.3.3", ESCAPE_OLDER),
        sibling("6.2.4", ESCAPE_OLDER),
        sibling("6.1.5", refactor),
    ]
    v = classify(TWO_RUNS, siblings)
    assert v.decision == "keep" and v.split is not None
    assert v.siblings == ("6.3.3", "6.2.4", "6.1.5")
    assert v.reason.endswith(
        "; the other 1 found in only 1 of 3 sibling releases (6.1.5), fewer than --min-siblings 2"
    )


WRAP = [
    " function edit() {",
    "+\tif ( current_user_can( 'edit_posts' ) ) {",
    " \techo $title;",
    "+\t}",
    " }",
]


def test_a_lone_brace_is_no_evidence_on_its_own() -> None:
    # every sibling added some "}" in this file, none made the wrapping "if"
    siblings = [sibling(v, [" a", "+}", " b"]) for v in ("6.3.3", "6.2.4", "6.1.5")]
    v = classify(WRAP, siblings)
    assert v.decision == "drop" and v.split is None
    assert v.reason == "found in none of the sibling releases 6.3.3, 6.2.4, 6.1.5"
    change = file_change(PATH, [" a", "+\t}", " b"])
    assert SiblingsClassifier(siblings).classify(change.hunks[0], change) is None


def test_a_brace_follows_the_change_it_closes() -> None:
    # the siblings' diffs aligned the closing brace elsewhere: the hunk is kept whole
    older = ["+\tif ( current_user_can( 'edit_posts' ) ) {", " \t\techo $title;", " \t}", "+\t}"]
    siblings = [sibling(v, older) for v in ("6.3.3", "6.2.4", "6.1.5")]
    v = classify(WRAP, siblings)
    assert v.decision == "keep" and v.split is None
    assert v.reason == "same change in 3 of 3 sibling releases (6.3.3, 6.2.4, 6.1.5)"
