"""Heuristic scoring of security-relevant constructs and the --auto threshold."""

from __future__ import annotations

import pytest

from patchd.bundle.classifiers.heuristics import HeuristicsClassifier, score_lines
from tests.bundle.helpers import file_change


def _verdict(lines: list[str], **kw: object):
    change = file_change("wp-admin/edit.php", lines)
    return HeuristicsClassifier(**kw).classify(change.hunks[0], change)  # type: ignore[arg-type]


FIX = [
    " function save() {",
    "-    echo $_GET['title'];",
    "+    if (!wp_verify_nonce($_POST['_wpnonce'], 'save')) {",
    "+        wp_die();",
    "+    }",
    "+    echo esc_html($_GET['title']);",
    " }",
]


def test_nonce_and_escaping_score_and_name_reasons() -> None:
    v = _verdict(FIX)
    assert v is not None
    assert (v.decision, v.score, v.classifier) == ("undecided", 3.5, "heuristics")
    assert v.reason == "heuristic score 3.5: adds wp_verify_nonce check, adds esc_html escaping"


def test_auto_keeps_at_or_above_threshold_only() -> None:
    v = _verdict(FIX, auto=True)
    assert v is not None and v.decision == "keep"
    assert v.reason == (
        "heuristic score 3.5 >= 3.0: adds wp_verify_nonce check, adds esc_html escaping"
    )
    high = _verdict(FIX, auto=True, threshold=4.0)
    assert high is not None and high.decision == "undecided"
    single = _verdict([" a", "-echo $t;", "+echo esc_html($t);"], auto=True)
    assert single is not None and single.decision == "undecided" and single.score == 1.5


def test_reformatting_an_existing_call_scores_nothing() -> None:
    assert _verdict([" a", "-echo esc_html( $t );", "+echo esc_html($t);"]) is None


def test_plain_change_has_no_opinion() -> None:
    assert _verdict([" a", "-$x = 1;", "+$x = 2;"]) is None


def test_comment_mentions_do_not_count() -> None:
    assert _verdict([" a", "+// never use eval() or htmlspecialchars() here"]) is None


@pytest.mark.parametrize(
    ("removed", "added", "reason"),
    [
        ([], ["$s = htmlspecialchars($s);"], "adds htmlspecialchars escaping"),
        ([], ["$out .= rcube::Q($name);"], "adds rcube::Q escaping"),
        ([], ["$id = (int) $_GET['id'];"], "adds integer cast of request data"),
        (
            [],
            ["if (!current_user_can('edit_posts')) return;"],
            "adds current_user_can capability check",
        ),
        ([], ["check_admin_referer('bulk');"], "adds check_admin_referer check"),
        ([], ["if (!hash_equals($a, $b)) {"], "adds constant-time hash_equals comparison"),
        ([], ["if (!GeneralUtility::validPathStr($p)) {"], "adds validPathStr path validation"),
        ([], ["if (str_contains($p, '..')) {"], "adds '..' path check"),
        ([], ["$t = wp_check_filetype($name);"], "adds wp_check_filetype check"),
        (
            [],
            ["$q->createNamedParameter($uid, Connection::PARAM_INT)"],
            "adds createNamedParameter",
        ),
        (
            ['$wpdb->query("... $id");'],
            ["$wpdb->query($wpdb->prepare('... %d', $id));"],
            "adds prepared statement",
        ),
        (
            ["$o = unserialize($d);"],
            ["$o = unserialize($d, ['allowed_classes' => false]);"],
            "restricts unserialize with allowed_classes",
        ),
        (["eval($code);"], [], "removes eval"),
        (["$o = unserialize($d);"], ["$o = json_decode($d);"], "removes unserialize"),
        (["extract($_POST);"], [], "removes extract"),
        (["$r = shell_exec($cmd);"], [], "removes shell command call"),
        ([], ["wp_safe_redirect($to);"], "adds wp_safe_redirect"),
        (
            ["$t = md5(rand());"],
            ["$t = bin2hex(random_bytes(16));"],
            "adds random_bytes/random_int",
        ),
        (["$t = md5(mt_rand());"], ["$t = bin2hex(random_bytes(16));"], "removes weak rand"),
    ],
)
def test_constructs(removed: list[str], added: list[str], reason: str) -> None:
    score = score_lines(removed, added)
    assert reason in score.reasons
    assert score.value > 0


def test_each_construct_counts_once_per_hunk() -> None:
    one = score_lines([], ["echo esc_html($a);"])
    three = score_lines([], ["echo esc_html($a);", "echo esc_html($b);", "echo esc_html($c);"])
    assert one.value == three.value == 1.5


def test_method_named_like_a_dangerous_function_is_not_removal() -> None:
    assert score_lines(["$this->extract($x);", "$db->exec($q);"], []).value == 0
