"""The exposure page in a real headless Chromium: self-contained, styled, trend drawn."""

from __future__ import annotations

from pathlib import Path

from tests.exposure.conftest import Fleet
from tests.report.browser import Browser


def test_html_page_renders_rows_and_the_trend(fleet: Fleet, tmp_path: Path) -> None:
    first, second = fleet.scans
    assert fleet.exposure("--scan", str(first), "--json").code == 0
    out = tmp_path / "exposure.html"
    res = fleet.exposure("--scan", str(second), "--format", "html", "-o", str(out))
    assert res.code == 0, res.err
    html = out.read_text()
    assert "<script" not in html and "<link" not in html and "<img" not in html
    with Browser() as b:
        b.open(out)
        assert b.evaluate("document.title") == f"patchd exposure: scan {second}"
        statuses = b.evaluate(
            "Array.from(document.querySelectorAll('#results td[data-col=status]'))"
            ".map(td => td.textContent)"
        )
        assert statuses.count("mitigated") == 2 and "unknown" in statuses
        assert statuses.count("exposed") >= 5
        # the stylesheet ran under the page's CSP
        colour = b.evaluate(
            "getComputedStyle(document.querySelector('#results .s-exposed')).backgroundColor"
        )
        assert colour == "rgb(255, 214, 214)"
        # the trend: an SVG with a line and a point per scan for each series, drawn
        box = b.evaluate(
            "(() => { const r = document.querySelector('#trend-chart').getBoundingClientRect();"
            " return [r.width, r.height]; })()"
        )
        assert box == [640, 240]
        assert b.evaluate("document.querySelectorAll('#trend-chart polyline').length") == 2
        values = b.evaluate(
            "Array.from(document.querySelectorAll("
            "'#trend-chart circle[data-series=exposed_installations]'))"
            ".map(c => Number(c.dataset.value))"
        )
        assert values == [5, 5]
        line = b.evaluate("document.querySelector('#trend-chart polyline').getTotalLength()")
        assert line > 100
        assert b.evaluate("performance.getEntriesByType('resource').length") == 0
