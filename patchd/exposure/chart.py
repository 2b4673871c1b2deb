"""The trend as an inline SVG line chart (no library, no script, no styles: presentation
attributes only, so the HTML page's Content Security Policy needs nothing for it)."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from patchd.ledger.exposure import TrendPoint

WIDTH, HEIGHT = 640, 240
_LEFT, _RIGHT, _TOP, _BOTTOM = 64, 64, 16, 48
SERIES = (
    ("exposed_installations", "exposed installations", "#c0392b"),
    ("exposed_customers", "exposed customers", "#2c6fbb"),
)


def trend_svg(points: Sequence[TrendPoint]) -> str:
    """An ``<svg>`` element: one line per series over the scans, in scan-date order."""
    inner_w = WIDTH - _LEFT - _RIGHT
    inner_h = HEIGHT - _TOP - _BOTTOM
    top = max([1, *(getattr(p, key) for p in points for key, _, _ in SERIES)])

    def x(i: int) -> float:
        return _LEFT + (inner_w * i / (len(points) - 1) if len(points) > 1 else inner_w / 2)

    def y(value: int) -> float:
        return _TOP + inner_h - inner_h * value / top

    parts = [
        f'<svg id="trend-chart" role="img" '
        f'width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" '
        'aria-label="exposed installations and customers per scan">',
        f'<line x1="{_LEFT}" y1="{_TOP + inner_h}" x2="{WIDTH - _RIGHT}" '
        f'y2="{_TOP + inner_h}" stroke="#888"/>',
        f'<line x1="{_LEFT}" y1="{_TOP}" x2="{_LEFT}" y2="{_TOP + inner_h}" stroke="#888"/>',
        f'<text x="{_LEFT - 6}" y="{_TOP + 4}" text-anchor="end" font-size="11">{top}</text>',
        f'<text x="{_LEFT - 6}" y="{_TOP + inner_h + 4}" text-anchor="end" font-size="11">0</text>',
    ]
    for i, p in enumerate(points):
        label = escape(f"{p.scan_date[:10]} #{p.scan_id}")
        parts.append(
            f'<text x="{x(i):.1f}" y="{HEIGHT - _BOTTOM + 16}" text-anchor="middle" '
            f'font-size="10">{label}</text>'
        )
    for n, (key, name, colour) in enumerate(SERIES):
        coords = " ".join(f"{x(i):.1f},{y(getattr(p, key)):.1f}" for i, p in enumerate(points))
        if len(points) > 1:
            parts.append(
                f'<polyline class="series" data-series="{key}" points="{coords}" '
                f'fill="none" stroke="{colour}" stroke-width="2"/>'
            )
        for i, p in enumerate(points):
            value = getattr(p, key)
            parts.append(
                f'<circle class="point" data-series="{key}" data-value="{value}" '
                f'cx="{x(i):.1f}" cy="{y(value):.1f}" r="3.5" fill="{colour}">'
                f"<title>{escape(name)}: {value} (scan {p.scan_id})</title></circle>"
            )
        legend_y = HEIGHT - 12
        legend_x = _LEFT + n * 200
        parts.append(
            f'<rect x="{legend_x}" y="{legend_y - 9}" width="12" height="4" fill="{colour}"/>'
            f'<text x="{legend_x + 18}" y="{legend_y - 4}" font-size="11">{escape(name)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)
