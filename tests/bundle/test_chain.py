"""run_chain: order rules > noise > git > heuristics, suggestions, defaults, whole files."""

from __future__ import annotations

from pathlib import Path

from patchd.bundle.classifiers import HeuristicsClassifier, NoiseClassifier, default_chain
from patchd.bundle.interface import (
    DEFAULT_REASON,
    Classifier,
    FileChangeLike,
    ReleaseDiffLike,
    ReleaseHunkLike,
    Verdict,
    run_chain,
)
from patchd.release.tree import FileChange
from tests.bundle.helpers import diff_of, file_change

NONCE = ["+if (!wp_verify_nonce($n, 'a')) { wp_die(); }", "+echo esc_html($t);"]


class Fixed(Classifier):
    """A real (if simple) classifier: one answer for every hunk, records prepare()."""

    def __init__(self, name: str, decision: str | None) -> None:
        self.name = name
        self.decision = decision
        self.prepared: list[int] = []

    def prepare(self, diff: ReleaseDiffLike) -> None:
        self.prepared.append(len(diff.files))

    def classify(self, hunk: ReleaseHunkLike | None, change: FileChangeLike) -> Verdict | None:
        if self.decision is None:
            return None
        verdict = Verdict(self.decision, f"{self.name} says {self.decision}", self.name)  # type: ignore[arg-type]
        return verdict


def test_first_definite_verdict_wins_and_undecided_become_suggestions() -> None:
    a, b, c = Fixed("a", "undecided"), Fixed("b", None), Fixed("c", "drop")
    d = Fixed("d", "keep")
    [res] = run_chain(diff_of(file_change("x.php", [" a", "+b"])), [a, b, c, d])
    assert res.verdict.classifier == "c" and res.verdict.decision == "drop"
    assert [s.classifier for s in res.suggestions] == ["a"]
    assert a.prepared == b.prepared == c.prepared == d.prepared == [1]


def test_default_is_undecided_and_first_suggestion_is_the_verdict() -> None:
    diff = diff_of(file_change("x.php", [" a", "+b"]))
    [plain] = run_chain(diff, [Fixed("n", None)])
    assert plain.verdict == Verdict("undecided", DEFAULT_REASON, "default")
    [suggested] = run_chain(diff, [Fixed("h", "undecided")])
    assert suggested.verdict.classifier == "h" and suggested.suggestions == (suggested.verdict,)


def test_noise_beats_heuristics(tmp_path: Path) -> None:
    test_file = file_change("tests/Unit/EditTest.php", [" a", *NONCE])
    [res] = run_chain(diff_of(test_file), default_chain(auto=True))
    assert (res.verdict.decision, res.verdict.reason) == ("drop", "test suite")


def test_heuristics_suggest_then_auto_keeps() -> None:
    diff = diff_of(file_change("wp-admin/edit.php", [" a", *NONCE]))
    [res] = run_chain(diff, default_chain())
    assert res.verdict.decision == "undecided" and res.verdict.classifier == "heuristics"
    assert res.verdict.score == 3.5
    [auto] = run_chain(diff, default_chain(auto=True))
    assert auto.verdict.decision == "keep"


def test_whole_file_changes_get_verdicts() -> None:
    diff = diff_of(
        file_change("tests/Unit/NewTest.php", ["+<?php", "+class NewTest {}"], kind="added"),
        FileChange("wp-admin/images/logo.png", "binary", "a", "b", ()),
        file_change("wp-includes/class-new.php", ["+<?php", "+class NewThing {}"], kind="added"),
        file_change("wp-includes/old.php", ["-<?php", "-eval($_GET['x']);"], kind="removed"),
    )
    res = run_chain(diff, [NoiseClassifier(), HeuristicsClassifier()])
    assert [(r.id.split("@")[1] if r.hunk is None else "", r.verdict.decision) for r in res] == [
        ("", "drop"),
        ("binary", "drop"),
        ("", "undecided"),
        ("", "undecided"),
    ]
    assert res[0].verdict.reason == "test suite"
    assert res[1].verdict.reason == "binary asset (.png)"
    assert res[1].id == "wp-admin/images/logo.png@binary"
    assert res[2].verdict.reason == DEFAULT_REASON
    assert "removes eval" in res[3].verdict.reason
