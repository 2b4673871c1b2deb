"""The HTML report: one self-contained file a support person opens in a browser.

Everything is inline (CSS and JavaScript, no fonts, images or requests), and a Content
Security Policy forbids any network access and any script but the report's own (by its
sha256), so a value that slipped through escaping still could not run or call home. Every
value is HTML-escaped by Jinja2's autoescape; values are rendered as table cells, never
into the script. Sorting and filtering run in the browser; their state is kept in the URL
hash (``#sort=account&dir=desc&outcome=@failure&host=web01&reason=modified&q=text``).
"""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime
from importlib import resources
from typing import Any

import jinja2
from markupsafe import Markup

from patchd.outcomes import SUCCESS_OUTCOMES, Outcome, Reason
from patchd.report.formats import escape_surrogates, escape_text
from patchd.report.headline import headline
from patchd.report.lists import FAILURE_OUTCOMES, HOST_COLUMNS, REPORT_COLUMNS

_TEMPLATES = "templates"


def _asset(name: str) -> str:
    return (resources.files("patchd.report") / _TEMPLATES / name).read_text(encoding="utf-8")


def _csp_hash(text: str) -> str:
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return "sha256-" + base64.b64encode(digest).decode("ascii")


def _finalize(value: Any) -> Any:
    # NOTE: control and bidi characters in customer strings (file names!) would reorder or
    # hide text on screen; they are shown as escapes, as in the table format. Jinja2 then
    # HTML-escapes the result.
    if isinstance(value, str) and not isinstance(value, Markup):
        return escape_text(value)
    return value


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("patchd.report", _TEMPLATES),
        autoescape=True,
        finalize=_finalize,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )


def _group_of(outcome: str) -> str:
    if outcome in SUCCESS_OUTCOMES:
        return "success"
    if outcome in FAILURE_OUTCOMES:
        return "failure"
    return "other"


def render_html(data: dict[str, Any], *, generated: datetime | None = None) -> str:
    """The report ``data`` (from :func:`patchd.report.lists.report_data`) as one HTML page."""
    style = _asset("report.css")
    script = _asset("report.js")
    outcomes = [o.value for o in Outcome]
    outcomes += sorted({r["outcome"] for r in data["results"]} - set(outcomes))
    page = (
        _environment()
        .get_template("report.html.j2")
        .render(
            data=data,
            headline=headline(data),
            columns=REPORT_COLUMNS,
            host_columns=HOST_COLUMNS,
            outcomes=outcomes,
            reasons=[r.value for r in Reason],
            hosts=[h["host"] for h in data["per_host"]],
            group_of={o: _group_of(o) for o in outcomes},
            generated=(generated or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M UTC"),
            style=Markup(style),
            script=Markup(script),
            style_hash=_csp_hash(style),
            script_hash=_csp_hash(script),
        )
    )
    # NOTE: a lone surrogate (undecodable byte of a file name) cannot be encoded as UTF-8.
    return escape_surrogates(page)
