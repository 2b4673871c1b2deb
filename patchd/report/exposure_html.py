"""The exposure page: one self-contained HTML file (no script at all), with the trend as
inline SVG. Values are escaped as in the run report (:mod:`patchd.report.html`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from markupsafe import Markup

from patchd.exposure import views
from patchd.exposure.chart import trend_svg
from patchd.exposure.model import ExposureRow, Status
from patchd.ledger.exposure import TrendPoint
from patchd.ledger.models import Scan
from patchd.report.formats import escape_surrogates
from patchd.report.html import _asset, _csp_hash, _environment


def _href(link: str | None) -> str | None:
    """Only plain web links become links (never ``javascript:`` and the like)."""
    if link and link.startswith(("https://", "http://")) and '"' not in link:
        return link
    return None


def render_exposure_html(
    scan: Scan,
    rows: Sequence[ExposureRow],
    points: Sequence[TrendPoint],
    *,
    filters: Mapping[str, str] | None = None,
    generated: datetime | None = None,
) -> str:
    """The page for ``rows`` of ``scan`` and the trend ``points``."""
    style = _asset("exposure.css")
    summary = [
        {
            "status": s.value,
            "rows": sum(1 for r in rows if r.status is s),
            "installations": len({(r.account, r.host, r.path) for r in rows if r.status is s}),
        }
        for s in Status
    ]
    table: list[dict[str, Any]] = []
    for r in rows:
        row = views.table_row(r)
        row["href"] = _href(r.link)
        table.append(row)
    trend = []
    for p in points:
        data = dataclasses.asdict(p)
        data["scan"] = data.pop("scan_id")
        trend.append(data)
    page = (
        _environment()
        .get_template("exposure.html.j2")
        .render(
            scan=scan,
            scan_date=(scan.finished_at or scan.started_at).strftime("%Y-%m-%d %H:%M UTC"),
            rows=table,
            columns=views.COLUMNS,
            summary=summary,
            customers=views.by_customer(rows),
            customer_columns=views.CUSTOMER_COLUMNS,
            trend=trend,
            trend_columns=views.TREND_COLUMNS,
            chart=Markup(trend_svg(points)),
            filters=dict(filters or {}),
            generated=(generated or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M UTC"),
            style=Markup(style),
            style_hash=_csp_hash(style),
        )
    )
    return escape_surrogates(page)
