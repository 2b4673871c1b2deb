"""Listing formats: table, CSV and JSON, and what each neutralises."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from rich.console import Console

from patchd.errors import UsageError
from patchd.ledger.models import Outcome
from patchd.report.formats import csv_safe, escape_text, render_rows

COLUMNS = ["account", "path", "outcome", "count"]
ROWS = [
    {"account": "p10001", "path": "html", "outcome": Outcome.PATCHED, "count": 3, "x": "hidden"},
    {"account": "p10002", "path": "", "outcome": "dry-run-failed", "count": -2},
]


def test_table_is_plain_text_with_all_values() -> None:
    out = render_rows(ROWS, COLUMNS, "table", title="Results")
    assert "\x1b" not in out  # no colour codes off a terminal
    lines = out.splitlines()
    assert "Results" in lines[0]
    assert any(line.split() == COLUMNS for line in lines)
    assert any(line.split() == ["p10001", "html", "patched", "3"] for line in lines)
    assert any(line.split() == ["p10002", "dry-run-failed", "-2"] for line in lines)
    assert "hidden" not in out  # only the columns asked for
    assert all(line == line.rstrip() for line in lines)


def test_table_does_not_wrap_or_cut_long_values() -> None:
    long_path = "wp-content/plugins/" + "x" * 300 + "/file.php"
    out = render_rows([{"account": "p1", "path": long_path}], ["account", "path"], "table")
    assert long_path in out


def test_table_escapes_control_characters() -> None:
    evil = "ok.php\n  p99999    html    patched\r\x1b[2J\x1b]0;pwned\x07\u202eevil\x9b31m"
    out = render_rows([{"account": "p1", "path": evil}], ["account", "path"], "table")
    assert "\x1b" not in out and "\r" not in out and "\x07" not in out
    assert "\u202e" not in out and "\x9b" not in out
    data_lines = [line for line in out.splitlines() if "p1" in line]
    assert len(data_lines) == 1  # the newline did not forge a second row
    assert "ok.php\\n  p99999" in data_lines[0]
    assert "\\x1b[2J" in data_lines[0] and "\\u202eevil" in data_lines[0]
    assert "\\x9b31m" in data_lines[0]


def test_table_does_not_interpret_markup() -> None:
    out = render_rows(
        [{"account": "[bold red]x[/]", "path": ":smile:"}], ["account", "path"], "table"
    )
    assert "[bold red]x[/]" in out and ":smile:" in out


def test_table_on_a_terminal_console_may_style() -> None:
    console = Console(file=io.StringIO(), force_terminal=True, color_system="standard", width=120)
    out = render_rows(ROWS, COLUMNS, "table", console=console)
    assert "p10001" in out and "\x1b[" in out  # bold header on a terminal


def test_surrogates_are_escaped_as_bytes() -> None:
    name = b"caf\xe9.php".decode("utf-8", "surrogateescape")
    assert escape_text(name) == "caf\\xe9.php"
    for fmt in ("table", "csv"):
        out = render_rows([{"path": name}], ["path"], fmt)  # type: ignore[arg-type]
        out.encode("utf-8")  # does not raise
        assert "caf\\xe9.php" in out
    out = render_rows([{"path": name}], ["path"], "json")
    out.encode("utf-8")
    assert json.loads(out)["rows"][0]["path"] == name  # exact round trip


@pytest.mark.parametrize("value", ["=1+2", "+SUM(A1)", "-2+3", "@cmd", "\t=x", "\r=x"])
def test_csv_neutralises_formulas(value: str) -> None:
    out = render_rows([{"v": value}], ["v"], "csv")
    (header, row) = list(csv.reader(io.StringIO(out, newline="")))
    assert header == ["v"]
    assert row == ["'" + value]


def test_csv_keeps_numbers_and_plain_text() -> None:
    out = render_rows(ROWS, COLUMNS, "csv")
    assert list(csv.reader(io.StringIO(out, newline=""))) == [
        COLUMNS,
        ["p10001", "html", "patched", "3"],
        ["p10002", "", "dry-run-failed", "-2"],
    ]
    assert csv_safe("plain") == "plain" and csv_safe("a=b") == "a=b"


def test_csv_quotes_newlines_and_escapes_terminal_controls() -> None:
    out = render_rows([{"a": "x\ny", "b": 'q\x1b[31m"z"'}], ["a", "b"], "csv")
    assert "\x1b" not in out
    assert list(csv.reader(io.StringIO(out, newline=""))) == [["a", "b"], ["x\ny", 'q\\x1b[31m"z"']]


def test_json_sorted_keys_native_values_and_meta() -> None:
    rows = [
        {
            "z": [{"name": "akismet", "version": "5.3", "kind": "plugin"}],
            "a": "Müller",
            "when": datetime(2024, 5, 1, 12, 0, tzinfo=UTC),
            "where": Path("/srv/accounts/p1"),
            "outcome": Outcome.ALREADY_PATCHED,
        }
    ]
    out = render_rows(
        rows,
        ["z", "a", "when", "where", "outcome", "missing"],
        "json",
        json_key="results",
        meta={"run": 7, "summary": {"patched": 1}},
    )
    doc = json.loads(out)
    assert list(doc) == ["results", "run", "summary"]
    (row,) = doc["results"]
    assert list(row) == sorted(row)
    assert row == {
        "a": "Müller",
        "missing": None,
        "outcome": "already-patched",
        "when": "2024-05-01T12:00:00+00:00",
        "where": "/srv/accounts/p1",
        "z": [{"kind": "plugin", "name": "akismet", "version": "5.3"}],
    }
    assert "Müller" in out  # ensure_ascii=False
    assert doc["run"] == 7
    # stable: the same input renders byte-identically
    assert out == render_rows(
        rows,
        ["z", "a", "when", "where", "outcome", "missing"],
        "json",
        json_key="results",
        meta={"summary": {"patched": 1}, "run": 7},
    )


def test_json_escapes_invisible_controls_but_round_trips() -> None:
    value = "a\x1bb\x9bc\u202ed\u2028e"
    out = render_rows([{"v": value}], ["v"], "json")
    assert not any(ch in out for ch in "\x1b\x9b\u202e\u2028")
    assert json.loads(out)["rows"][0]["v"] == value


def test_empty_rows() -> None:
    assert json.loads(render_rows([], COLUMNS, "json")) == {"rows": []}
    assert render_rows([], COLUMNS, "csv") == ",".join(COLUMNS) + "\r\n"
    assert "account" in render_rows([], COLUMNS, "table")


def test_unknown_format() -> None:
    with pytest.raises(UsageError, match="unknown output format 'xml'"):
        render_rows(ROWS, COLUMNS, "xml")  # type: ignore[arg-type]


def test_json_document_is_valid_json_with_one_row_per_line() -> None:
    """The ``--format json`` text: indented top level, one result object per line, the
    same escapes as the other formats, and the same data back."""
    from patchd.report.formats import json_document

    doc = {
        "summary": {"patched": 2},
        "results": [
            {"account": "p1", "detail": "bidi \u202e and DEL \x7f", "path": "a\udcff"},
            {"account": "p2", "detail": "ok", "path": ""},
        ],
        "run": 7,
        "empty": [],
    }
    text = json_document(doc)
    assert text.endswith("}\n")
    lines = text.splitlines()
    assert lines[0] == "{" and lines[-1] == "}"
    assert [ln.strip().rstrip(",") for ln in lines if "account" in ln] == [
        '{"account": "p1", "detail": "bidi \\u202e and DEL \\u007f", "path": "a\\udcff"}',
        '{"account": "p2", "detail": "ok", "path": ""}',
    ]
    back = json.loads(text)
    assert back["results"][0]["path"] == "a\udcff"
    assert back == {**doc, "results": [dict(r) for r in doc["results"]]}
    assert json.loads(json_document({})) == {}


@pytest.mark.parametrize(
    "rows",
    [
        [],
        [{"a": 1}],
        [{"a": "\u202e x", "b": None}, {"a": 2}],
        # several pieces of rows, the last one short
        [{"n": n, "s": "\x85" if n % 7 else "x"} for n in range(1201)],
        [{"n": n} for n in range(1000)],  # whole pieces only
    ],
)
def test_json_document_in_chunks_is_the_same_text(rows: list[dict[str, object]]) -> None:
    """The streamed form (rollout --json over 50,000 results) is byte for byte the text
    of the whole document."""
    from patchd.report.formats import json_document, json_document_chunks

    head = {"run": 3, "summary": {"patched": 1}, "bundle": "b\x7f", "zeta": [{"k": 1}]}
    streamed = "".join(json_document_chunks(head, "results", iter(rows)))
    assert streamed == json_document({**head, "results": rows})
