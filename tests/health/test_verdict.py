"""The rules of "worse" (patchd.health.verdict) on page digests (patchd.health.page)."""

from __future__ import annotations

import pytest

from patchd.health.page import Page, no_answer, read_page
from patchd.health.verdict import compare

URL = "https://shop.example/"
BODY = b"<html><head><title>Shop</title></head><body>" + b"<p>article</p>" * 100 + b"</body>"


def test_read_page_title_size_and_error_line() -> None:
    page = read_page(200, BODY)
    assert (page.status, page.title, page.size, page.markers) == (200, "Shop", len(BODY), set())
    shown = read_page(
        200,
        b"<br />\n<b>Fatal error</b>:  Cannot redeclare foo() (previously declared in "
        b"/srv/a.php:1) in <b>/srv/b.php</b> on line <b>1</b><br />\n",
    )
    assert shown.markers == {"Fatal error"}
    assert shown.error_line == (
        "Fatal error: Cannot redeclare foo() (previously declared in /srv/a.php:1) in "
        "/srv/b.php on line 1"
    )
    assert read_page(200, b"<title> A &amp;\n B </title>").title == "A & B"


@pytest.mark.parametrize(
    ("before", "after", "why"),
    [
        (read_page(200, BODY), read_page(500, b""), "server error"),
        (read_page(301, b""), read_page(503, b"down"), "server error"),
        (read_page(200, BODY), no_answer(TimeoutError("timed out")), "the site no longer answers"),
        (
            read_page(200, BODY),
            read_page(200, BODY + b"PHP Parse error: syntax error, unexpected '}'"),
            "new PHP error (Parse error): PHP Parse error: syntax error, unexpected '}'",
        ),
        (read_page(200, BODY), read_page(200, BODY.replace(b"Shop", b"")), "page title"),
        (read_page(200, BODY), read_page(200, BODY[:600]), "most of the page is gone"),
        (read_page(200, BODY), read_page(404, b"not found"), "page title"),
    ],
)
def test_worse(before: Page, after: Page, why: str) -> None:
    verdict = compare(URL, before, after)
    assert verdict.worse and verdict.checked
    assert why in verdict.why
    assert verdict.describe().startswith(f"health check: {before.describe()} before, ")


@pytest.mark.parametrize(
    "after",
    [
        read_page(200, BODY),
        read_page(200, BODY.replace(b"Shop", b"Shop - sale")),  # another title is fine
        read_page(200, BODY[: len(BODY) * 2 // 3] + b"</body>"),  # a shorter page is fine
    ],
)
def test_not_worse(after: Page) -> None:
    assert not compare(URL, read_page(200, BODY), after).worse


def test_a_redirect_is_judged_by_status_and_markers_only() -> None:
    before = read_page(302, b"")
    assert not compare(URL, before, read_page(302, b"")).worse
    assert not compare(URL, before, read_page(404, b"gone")).worse
    assert compare(URL, before, read_page(302, b"Fatal error: x")).worse


def test_a_marker_already_there_is_no_news() -> None:
    before = read_page(200, BODY + b"Uncaught exception in widget")
    after = read_page(200, BODY + b"Uncaught exception in widget")
    assert not compare(URL, before, after).worse


@pytest.mark.parametrize(
    ("before", "words"),
    [
        (read_page(500, b""), "HTTP 500"),
        (read_page(404, b""), "HTTP 404"),
        (no_answer(ConnectionRefusedError("refused")), "no answer (ConnectionRefusedError"),
    ],
)
def test_baseline_down_is_not_checked(before: Page, words: str) -> None:
    verdict = compare(URL, before, read_page(500, b""))
    assert not verdict.worse and not verdict.checked
    assert verdict.describe().startswith(f"health check skipped: the site gave {words}")


def test_a_small_baseline_is_not_judged_by_size() -> None:
    assert not compare(URL, read_page(200, b"ok" * 50), read_page(200, b"o")).worse
