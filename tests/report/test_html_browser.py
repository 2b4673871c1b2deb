"""The HTML report in a real headless Chromium: loads offline, sorts, filters, escapes."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e import kit
from tests.notify.conftest import NotifyWorld
from tests.report.browser import Browser
from tests.report.conftest import HOSTILE_PATH

ALL = [
    "a-down",
    "a-evil",
    "a-mod",
    "a-newer",
    "a-notify",
    "a-oldphp",
    "a-patch",
    "a-patch2",
    "a-skip",
]


@pytest.fixture
def page(report_world: NotifyWorld, tmp_path: Path) -> Path:
    out = tmp_path / "report.html"
    res = kit.patchd(
        report_world.ledger, "report", str(report_world.run), "--format", "html", "-o", str(out)
    )
    assert res.code == 0, res.err
    return out


def test_sort_and_filter_with_real_clicks(page: Path) -> None:
    with Browser() as b:
        b.open(page)
        assert sorted(b.visible_rows("account")) == ALL
        assert b.evaluate("document.getElementById('success-rate').textContent") == "25.0\u00a0%"
        # Click "account": ascending; click again: descending.
        b.click('th[data-key="account"]')
        assert b.visible_rows("account") == ALL
        assert (
            b.evaluate("document.querySelector('th[data-key=account]').getAttribute('aria-sort')")
            == "ascending"
        )
        b.click('th[data-key="account"]')
        assert b.visible_rows("account") == ALL[::-1]
        # The failure list, then a reason, then a host.
        b.select("#f-outcome", "@failure")
        assert b.visible_rows("account") == ["a-oldphp", "a-mod", "a-evil", "a-down"]
        b.select("#f-reason", "modified")
        assert b.visible_rows("account") == ["a-mod", "a-evil"]
        assert b.evaluate("document.getElementById('shown').textContent") == "2"
        b.select("#f-reason", "")
        b.select("#f-host", "down01")
        assert b.visible_rows("account") == ["a-down"]
        assert "Connection refused" in b.visible_rows("explanation")[0]
        # Typing into the search box.
        b.select("#f-host", "")
        b.select("#f-outcome", "")
        b.type_into("#f-q", "comment-template")
        assert b.visible_rows("account") == ["a-mod"]
        # The state is in the URL hash, ready to be bookmarked.
        assert b.evaluate("location.hash") == "#sort=account&dir=desc&q=comment-template"
        b.click("#f-reset")
        assert sorted(b.visible_rows("account")) == ALL


def test_state_from_the_url_hash(page: Path) -> None:
    with Browser() as b:
        b.open(page, "sort=version&dir=desc&outcome=@success")
        assert b.visible_rows("account") == ["a-patch", "a-patch2"]
        assert b.evaluate("document.getElementById('f-outcome').value") == "@success"
        b.evaluate("location.hash = 'outcome=skipped&sort=account'")
        b.wait_for("document.getElementById('f-outcome').value === 'skipped'")
        assert b.visible_rows("account") == ["a-notify", "a-skip"]
        b.evaluate("location.hash = 'q=nothing-matches-this'")
        b.wait_for("!document.getElementById('empty').hidden")
        assert b.visible_rows("account") == []


def test_hostile_values_are_text_and_nothing_loads(page: Path) -> None:
    html = page.read_text()
    assert "<script>window.pwned" not in html and "<img src=x" not in html
    assert "http://" not in html and "https://" not in html  # no external resources
    with Browser() as b:
        b.open(page, "q=a-evil")
        assert b.evaluate("typeof window.pwned") == "undefined"
        assert b.evaluate("document.querySelectorAll('img, iframe, link, script').length") == 1
        (path,) = b.visible_rows("path")
        # Shown literally; the bidi override is shown as an escape, not applied.
        assert path == HOSTILE_PATH.replace("\u202e", "\\u202e")
        detail = b.visible_rows("detail")[0]
        assert "</td><script>window.pwned=2</script>" in detail
        entries = b.evaluate("performance.getEntriesByType('resource').length")
        assert entries == 0
