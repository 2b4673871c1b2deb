"""The rules file: format validation, matching, precedence, append_rule."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from patchd.bundle.classifiers import default_chain
from patchd.bundle.classifiers.rules import RulesClassifier
from patchd.bundle.interface import run_chain
from patchd.bundle.rules import (
    Matcher,
    Rule,
    RulesError,
    append_rule,
    glob_to_regex,
    load_rules,
    parse_rules,
)
from patchd.release.tree import FileChange
from tests.bundle.helpers import diff_of, file_change

RULES = """\
# the security team's decisions for CVE-2024-0001
rules:
  - include: {path: "wp-includes/kses.php"}
    comment: "CVE-2024-0001: kses fix"
  - exclude: {path: "**/*.js", line: "console\\\\.log"}
    comment: "debug output only"
  - include: {line: "wp_verify_nonce"}
    comment: "nonce check is the fix"
  - exclude: {path: "*.php"}
    comment: "everything else in PHP is unrelated"
"""


def _verdict(rules: str, change: FileChange, index: int = 0):
    clf = RulesClassifier(parse_rules(rules, source="rules.yaml"))
    hunk = change.hunks[index] if change.hunks else None
    return clf.classify(hunk, change)


def test_include_by_path_glob_keeps_with_comment_and_rule_label() -> None:
    v = _verdict(RULES, file_change("wp-includes/kses.php", [" a", "-b", "+c"]))
    assert v is not None
    assert (v.decision, v.reason, v.classifier) == ("keep", "CVE-2024-0001: kses fix", "rules")
    assert v.rule == "rules.yaml#1 include path=wp-includes/kses.php"


def test_fields_combine_with_and() -> None:
    js = file_change("wp-admin/js/a.js", [" x", "+console.log(1);"])
    v = _verdict(RULES, js)
    assert v is not None and v.decision == "drop" and v.reason == "debug output only"
    other_js = file_change("wp-admin/js/a.js", [" x", "+alert(1);"])
    assert _verdict(RULES, other_js) is None


def test_line_regex_matches_removed_or_added_lines_and_first_rule_wins() -> None:
    change = file_change("wp-admin/post.php", [" a", "+if (!wp_verify_nonce($n)) die();"])
    v = _verdict(RULES, change)
    assert v is not None and v.decision == "keep" and v.rule is not None
    assert v.rule.startswith("rules.yaml#3")
    # Same file, no nonce: falls to rule 4 (*.php matches in any folder).
    v2 = _verdict(RULES, file_change("wp-admin/post.php", [" a", "-$x = 1;"]))
    assert v2 is not None and v2.decision == "drop" and v2.rule is not None
    assert v2.rule.startswith("rules.yaml#4")


def test_hunk_id_rule_targets_one_hunk_only() -> None:
    change = file_change("a/b.php", [" a", "+one"], [" z", "+two"])
    target = change.hunks[1].id
    rules = f"rules:\n  - exclude: {{hunk: '{target}'}}\n    comment: reviewed\n"
    assert _verdict(rules, change, 0) is None
    v = _verdict(rules, change, 1)
    assert v is not None and v.decision == "drop" and v.reason == "reviewed"


def test_binary_file_matches_by_path_and_synthetic_id_never_by_line() -> None:
    img = FileChange("wp-includes/images/x.png", "binary", "a", "b", ())
    by_id = "rules:\n  - include: {hunk: 'wp-includes/images/x.png@binary'}\n    comment: c\n"
    v = _verdict(by_id, img)
    assert v is not None and v.decision == "keep"
    by_line = "rules:\n  - include: {line: '.'}\n    comment: c\n"
    assert _verdict(by_line, img) is None


@pytest.mark.parametrize(
    ("glob", "path", "hit"),
    [
        ("*.po", "languages/de_DE.po", True),
        ("*.po", "de.po", True),
        ("wp-admin/*.php", "wp-admin/post.php", True),
        ("wp-admin/*.php", "wp-admin/includes/post.php", False),
        ("wp-admin/**/*.php", "wp-admin/post.php", True),
        ("wp-admin/**/*.php", "wp-admin/includes/x/post.php", True),
        ("typo3/sysext/**", "typo3/sysext/core/a.php", True),
        ("file?.php", "file1.php", True),
        ("file[0-9].php", "filex.php", False),
        ("a.php", "b/a.php", True),
        ("/a.php", "b/a.php", False),
    ],
)
def test_glob(glob: str, path: str, hit: bool) -> None:
    assert (glob_to_regex(glob).fullmatch(path) is not None) is hit


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("rules:\n  - include: {path: x}\n", "rule 1 (index 0), field comment: Field required"),
        (
            "rules:\n  - {include: {path: x}, comment: ok}\n"
            "  - {include: {line: '(unclosed'}, comment: c}\n",
            "rule 2 (index 1), field include.line: invalid regular expression",
        ),
        (
            "rules:\n  - {include: {path: x}, exclude: {path: y}, comment: c}\n",
            "rule 1 (index 0): needs exactly one of include, exclude",
        ),
        ("rules:\n  - {include: {}, comment: c}\n", "field include: needs at least one"),
        ("rules:\n  - {include: {paht: x}, comment: c}\n", "field include.paht: Extra inputs"),
        ("rules:\n  - {include: {path: x}, comment: '  '}\n", "field comment: must say why"),
        ("rulez: []\n", "rulez: Extra inputs"),
        ("- a\n", "expected a mapping"),
        ("rules: [\n", "not valid YAML"),
    ],
)
def test_malformed_rules_name_the_rule_and_field(text: str, needle: str, tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(text)
    with pytest.raises(RulesError) as exc:
        load_rules(path)
    assert needle in str(exc.value)
    assert str(path) in str(exc.value)


def test_empty_file_has_no_rules() -> None:
    assert parse_rules("") == []


def test_append_rule_keeps_existing_text_and_comments(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(RULES)
    new = Rule(exclude=Matcher(hunk="x.php@3-abcdef0123"), comment="reviewed: unrelated")
    append_rule(path, new)
    text = path.read_text()
    assert text.startswith(RULES)  # existing entries and the YAML comment survive
    rules = load_rules(path)
    assert [r.rule for r in rules][:4] == [r.rule for r in parse_rules(RULES)]
    assert rules[4].rule == new


def test_append_rule_creates_file_and_handles_flow_style(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "rules.yaml"
    first = Rule(include=Matcher(path="a.php"), comment="first")
    append_rule(path, first)
    assert [r.rule for r in load_rules(path)] == [first]
    flow = tmp_path / "flow.yaml"
    flow.write_text("rules: [{include: {path: b.php}, comment: old}]\n")
    append_rule(flow, first)
    got = [r.rule for r in load_rules(flow)]
    assert got == [Rule(include=Matcher(path="b.php"), comment="old"), first]
    assert yaml.safe_load(flow.read_text())["rules"][1]["comment"] == "first"


def test_rules_win_over_noise_and_heuristics(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "rules:\n"
        "  - include: {path: 'wp-includes/js/dist/*.min.js'}\n"
        "    comment: the fix ships in the minified build\n"
        "  - exclude: {line: esc_html}\n"
        "    comment: cosmetic escaping, reviewed\n"
    )
    minified = file_change("wp-includes/js/dist/editor.min.js", [" a", "-b", "+c"])
    escaping = file_change(
        "wp-admin/edit.php",
        [" a", "-echo $t;", "+if (!wp_verify_nonce($n)) die(); echo esc_html($t);"],
    )
    result = run_chain(diff_of(minified, escaping), default_chain(rules_file=rules, auto=True))
    assert [(c.verdict.decision, c.verdict.classifier) for c in result] == [
        ("keep", "rules"),
        ("drop", "rules"),
    ]
    assert result[0].verdict.reason == "the fix ships in the minified build"
