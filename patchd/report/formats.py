"""Listing output formats: table (rich), CSV and JSON, for every listing command.

Values in listings are often customer-controlled (file names, paths, CMS facts), so each
format neutralises what could attack its reader:

- table: control characters (C0 incl. CR/LF/TAB/ESC, DEL, C1) and bidirectional
  overrides are shown as ``\\n``, ``\\x1b``, ``\\u202e`` ..., so a value cannot forge a
  table line or send terminal escape sequences; rich markup in values is not interpreted.
- CSV (RFC 4180, CRLF line ends): a text value starting with ``=``, ``+``, ``-``, ``@``,
  TAB or CR gets a single quote ``'`` in front (OWASP "CSV injection"), so a spreadsheet
  shows it as text instead of running it as a formula. Numbers are written unchanged.
  This alters such values; use JSON when exact values matter. Control characters other
  than TAB/CR/LF (which CSV quotes) are escaped as in tables.
- JSON: exact values, keys sorted, non-ASCII kept (``ensure_ascii=False``); invisible
  controls (C0, DEL, C1, bidi, line separators) are written as ``\\uNNNN`` escapes, which
  parse back to the same value.

In every format, a lone surrogate (a non-UTF-8 byte of a file name, decoded with
``surrogateescape``) is written as an escape (``\\xff`` in table and CSV, ``\\udcff`` in
JSON, which Python's json reads back to the same string), so output never fails to encode.
"""

from __future__ import annotations

import csv
import dataclasses
import enum
import io
import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import date, datetime
from pathlib import PurePath
from typing import Any, Literal

from rich import box
from rich.console import Console, Group
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from patchd.errors import UsageError
from patchd.report.fit import TEXT, Fit, fit_columns, min_width

Format = Literal["table", "csv", "json"]
"""The formats every listing offers."""

FORMATS: tuple[Format, ...] = ("table", "csv", "json")

_CONTROL = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]"
)
_SURROGATE = re.compile("[\ud800-\udfff]")
# NOTE: in CSV, TAB/LF/CR are data the csv module quotes correctly; the rest of C0, DEL and
# C1 (e.g. ESC, 8-bit CSI) would act on a terminal that shows the file, so they are escaped.
_CSV_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
# NOTE: json.dumps escapes C0 itself; DEL, C1 and bidi controls are escaped here as \uNNNN.
_JSON_EXTRA = re.compile(
    "[\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
)
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _escape_control(match: re.Match[str]) -> str:
    ch = match.group()
    if ch in _NAMED:
        return _NAMED[ch]
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def _escape_surrogate(match: re.Match[str]) -> str:
    code = ord(match.group())
    # NOTE: surrogateescape maps byte 0xNN (>= 0x80) to U+DCNN; show the original byte.
    return f"\\x{code - 0xDC00:02x}" if 0xDC80 <= code <= 0xDCFF else f"\\u{code:04x}"


def escape_text(value: str) -> str:
    """``value`` with control, bidi and surrogate characters written as escapes."""
    return _SURROGATE.sub(_escape_surrogate, _CONTROL.sub(_escape_control, value))


def _plain(value: Any) -> Any:
    """A JSON-compatible form of ``value`` (enums, dates, paths, bytes, models)."""
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "surrogateescape")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    raise TypeError(f"cannot render {type(value).__name__} in JSON")


def _cell(value: Any) -> str:
    """One value as text for table and CSV: lists/dicts as compact JSON, None as ""."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list | tuple | dict | set | frozenset):
        return json.dumps(value, sort_keys=True, ensure_ascii=False, default=_plain)
    plain = _plain(value)
    return plain if isinstance(plain, str) else json.dumps(plain, sort_keys=True, default=_plain)


def _render_table(
    rows: Sequence[Mapping[str, Any]], columns: Sequence[str], title: str | None, console: Any
) -> str:
    cells = [{c: escape_text(_cell(row.get(c))) for c in columns} for row in rows]
    if console is None:
        # NOTE: not a terminal: no colour, and wide enough that nothing wraps or is cut.
        console = Console(
            file=io.StringIO(),
            force_terminal=False,
            color_system=None,
            highlight=False,
            width=100_000,
        )
        fit = Fit(list(columns))
    else:
        # NOTE (issue 17): a terminal's width: whole words stay whole, text wraps, what
        # does not fit goes to a detail view below the table or is named.
        fit = fit_columns(cells, columns, console.width)
        if "detail" in fit.detail and "explanation" in fit.detail:
            fit.detail.remove("detail")  # NOTE: the explanation repeats the detail
            fit.left_out.append("detail")
    # NOTE: the title is a line of its own, wrapped at the console's width: as the table's
    # title it would be centred and wrapped to a narrow table's width.
    table = Table(box=box.SIMPLE_HEAD, header_style="bold")
    for c in fit.shown:
        if c in TEXT:
            least = min_width(c, fit.natural[c]) if fit.natural else None
            table.add_column(Text(escape_text(c)), overflow="fold", min_width=least)
        else:
            table.add_column(Text(escape_text(c)), no_wrap=True, overflow="ignore")
    for row in cells:
        table.add_row(*[Text(row[c]) for c in fit.shown])
    with console.capture() as capture:
        if title:
            console.print(Text(escape_text(title)), soft_wrap=False)
        console.print(table, soft_wrap=False)
        if fit.detail and cells:
            console.print(_detail_view(cells, fit, columns), soft_wrap=False)
        if fit.left_out:
            console.print(
                Text(
                    f"not shown at {console.width} columns: {', '.join(fit.left_out)} "
                    "(--format csv or json has every column)"
                ),
                soft_wrap=False,
            )
    return "\n".join(line.rstrip() for line in capture.get().splitlines()) + "\n"


#: Columns that name a row in the detail view (the first two present).
_ROW_NAME = ("run", "account", "path", "host", "customer", "cms")


def _detail_view(cells: Sequence[Mapping[str, str]], fit: Fit, columns: Sequence[str]) -> Group:
    """The text columns that left the table, one block per row at full width."""
    names = [c for c in _ROW_NAME if c in columns and c not in fit.detail][:2] or fit.shown[:3]
    parts: list[Any] = [Text(f"\n{', '.join(fit.detail)} of each row:")]
    for row in cells:
        values = [(c, row[c]) for c in fit.detail if row[c]]
        if not values:
            continue
        parts.append(Text(" ".join(row[c] for c in names if row[c]) or "-"))
        for c, value in values:
            label = f"{c}: " if len(fit.detail) > 1 else ""
            parts.append(Padding(Text(label + value), (0, 0, 0, 4)))
    return Group(*parts)


def csv_safe(value: str) -> str:
    """``value`` with a ``'`` in front when a spreadsheet would read it as a formula."""
    return "'" + value if value.startswith(_FORMULA_START) else value


def _render_csv(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    out = io.StringIO()
    # NOTE: RFC 4180 line ends (CRLF); with "\n" alone the csv module would leave a CR
    # inside a value unquoted, and readers would split the row there.
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([csv_safe(_csv_text(c)) for c in columns])
    for row in rows:
        cells: list[str] = []
        for c in columns:
            value = row.get(c)
            text = _csv_text(_cell(value))
            # NOTE: numbers stay as they are ("-5" is data); only text is neutralised.
            is_number = isinstance(value, int | float) and not isinstance(value, bool)
            cells.append(text if is_number else csv_safe(text))
        writer.writerow(cells)
    return out.getvalue()


def escape_surrogates(value: str) -> str:
    """``value`` with lone surrogates written as ``\\xNN`` (the original byte)."""
    return _SURROGATE.sub(_escape_surrogate, value)


def _csv_text(value: str) -> str:
    return escape_surrogates(_CSV_CONTROL.sub(_escape_control, value))


def _render_json(
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[str],
    json_key: str,
    meta: Mapping[str, Any] | None,
) -> str:
    doc: dict[str, Any] = dict(meta or {})
    doc[json_key] = [{c: row.get(c) for c in columns} for row in rows]
    return json_document(doc)


# NOTE: one encoder, not json.dumps(..., sort_keys=...) per value (which builds a new
# JSONEncoder on every call: a third of writing a 50,000-row document).
_COMPACT = json.JSONEncoder(sort_keys=True, ensure_ascii=False, default=_plain).encode


def _compact(value: Any) -> str:
    return _COMPACT(value)


#: Rows per piece of :func:`json_document_chunks`.
_ROWS_PER_CHUNK = 500


def json_document_chunks(
    doc: Mapping[str, Any], rows_key: str, rows: Iterable[Mapping[str, Any]]
) -> Iterator[str]:
    """The text of ``json_document({**doc, rows_key: list(rows)})`` in pieces of a few
    hundred rows, taking the rows one at a time (a 50,000-result run is written without
    holding all of it)."""
    keys = sorted({*doc, rows_key})
    yield "{\n"
    for n, key in enumerate(keys):
        sep = ",\n" if n < len(keys) - 1 else "\n"
        if key != rows_key:
            yield _escape_json(json_document({key: doc[key]})[2:-3]) + sep
            continue
        head = f"  {_compact(key)}: "
        first = True
        piece: list[str] = []
        for row in rows:
            piece.append(f"    {_COMPACT(row)}")
            if len(piece) == _ROWS_PER_CHUNK:
                yield (head + "[\n" if first else ",\n") + _escape_json(",\n".join(piece))
                first = False
                piece = []
        if piece:
            yield (head + "[\n" if first else ",\n") + _escape_json(",\n".join(piece))
            first = False
        yield (head + "[]" if first else "\n  ]") + sep
    yield "}\n"


def _escape_json(text: str) -> str:
    return _JSON_EXTRA.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def json_document(doc: Mapping[str, Any]) -> str:
    """``doc`` as the JSON text every ``--format json`` prints (ends with a newline).

    The top level is indented; a list of objects (result rows, installations) has one
    object per line. NOTE: rows are encoded by json's C encoder (``indent`` would select
    its pure-Python one, seconds for a 50,000-row run). DEL, C1 and bidi controls and
    lone surrogates are written as ``\\uNNNN``, like in every other format's output.
    """
    parts = []
    for key in sorted(doc):
        value = doc[key]
        if isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value):
            text = "[\n" + ",\n".join(f"    {_compact(v)}" for v in value) + "\n  ]"
        else:
            text = json.dumps(
                value, sort_keys=True, ensure_ascii=False, indent=2, default=_plain
            ).replace("\n", "\n  ")
        parts.append(f"  {_compact(key)}: {text}")
    text = "{\n" + ",\n".join(parts) + "\n}" if parts else "{}"
    # NOTE: these characters only occur inside JSON strings, where \\uNNNN is valid JSON
    # (a lone surrogate \\udcNN reads back as the same surrogate-escaped byte in Python).
    return _JSON_EXTRA.sub(lambda m: f"\\u{ord(m.group()):04x}", text) + "\n"


def render_rows(
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[str],
    fmt: Format,
    *,
    title: str | None = None,
    json_key: str = "rows",
    console: Console | None = None,
    meta: Mapping[str, Any] | None = None,
) -> str:
    """Render ``rows`` (only ``columns``, in that order) as a table, CSV or JSON text.

    - ``table``: a rich table under ``title``; ``console`` (e.g. a terminal console) decides
      colours and width, the default is plain text without colour codes.
    - ``csv``: a header line with ``columns``, then one line per row.
    - ``json``: ``{json_key: [row, ...]}`` plus the keys of ``meta`` (e.g. ``{"run": 7}``),
      keys sorted; ``title`` is not part of JSON output.

    A missing key renders as empty (``null`` in JSON). Raises :class:`UsageError` for an
    unknown ``fmt``.
    """
    if fmt == "table":
        return _render_table(rows, columns, title, console)
    if fmt == "csv":
        return _render_csv(rows, columns)
    if fmt == "json":
        return _render_json(rows, columns, json_key, meta)
    raise UsageError(f"unknown output format {fmt!r} (choose from {', '.join(FORMATS)})")
