"""The agent's serve loop and ops, run in-process over byte streams (no transport)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from patchd.agent import ops, protocol, server

REPO = Path(__file__).resolve().parents[2]


def serve_lines(*lines: bytes) -> list[dict[str, Any]]:
    """Feed request lines to the serve loop; return every event it wrote, decoded."""
    out = io.BytesIO()
    assert server.serve(io.BytesIO(b"".join(lines)), out) == 0
    return [json.loads(line) for line in out.getvalue().splitlines()]


def req(request_id: int, op: str, **args: Any) -> bytes:
    return protocol.encode(protocol.request(request_id, op, args))


@pytest.fixture
def temp_op() -> Iterator[None]:
    """Register test-only ops for one test, then remove them."""

    @ops.op("test.unserialisable")
    def unserialisable(args: dict[str, Any]) -> Iterator[dict[str, Any]]:
        yield {"ok": 1}
        yield {"bad": object()}

    @ops.op("test.plain_list")
    def plain_list(args: dict[str, Any]) -> Iterator[dict[str, Any]]:
        return iter([{"n": 1}, {"n": 2}])

    yield
    del ops.OPS["test.unserialisable"], ops.OPS["test.plain_list"]


def test_ping_describes_agent_and_host() -> None:
    (event,) = serve_lines(req(7, "ping"))
    assert event["id"] == 7 and event["event"] == "done"
    data = event["data"]
    assert {"agent_version", "python_version", "uid", "euid", "hostname", "pid"} <= set(data)
    assert data["protocol"] == protocol.PROTOCOL_VERSION
    assert {"ping", "echo", "scan"} <= set(data["ops"])


def test_items_then_exactly_one_terminal_event() -> None:
    events = serve_lines(req(1, "echo", count=3, payload="x"))
    assert [e["event"] for e in events] == ["item", "item", "item", "done"]
    assert [e["data"]["seq"] for e in events[:3]] == [0, 1, 2]
    assert events[-1]["data"] == {"count": 3}


def test_failures_are_answered_and_the_loop_goes_on() -> None:
    events = serve_lines(
        b"not json\n",
        b"[1, 2]\n",
        req(1, "no-such-op"),
        b'{"id": 2, "op": 5}\n',
        req(3, "echo", count=1, fail="boom"),
        req(4, "ping"),
    )
    assert [(e["id"], e["event"]) for e in events] == [
        (None, "error"),
        (None, "error"),
        (1, "error"),
        (2, "error"),
        (3, "item"),
        (3, "error"),
        (4, "done"),
    ]
    assert events[0]["error"]["type"] == "ProtocolError"
    assert events[2]["error"]["type"] == "UnknownOpError"
    assert "no-such-op" in events[2]["error"]["message"]
    assert events[5]["error"]["message"] == "boom"
    assert "RuntimeError: boom" in events[5]["error"]["traceback"]


def test_unserialisable_item_becomes_an_error_not_a_crash(temp_op: None) -> None:
    events = serve_lines(req(1, "test.unserialisable"), req(2, "test.plain_list"))
    assert [(e["id"], e["event"]) for e in events] == [
        (1, "item"),
        (1, "error"),
        (1, "done"),
        (2, "item"),
        (2, "item"),
        (2, "done"),
    ]


def test_op_names_are_registered_once() -> None:
    with pytest.raises(ValueError, match="registered twice"):
        ops.op("ping")(lambda args: iter(()))


def test_scan_reports_missing_root_per_account(tmp_path: Path) -> None:
    (tmp_path / "ok").mkdir()
    (tmp_path / "a-file").write_text("not a folder")
    events = serve_lines(
        req(
            1,
            "scan",
            accounts=[
                {"id": "gone", "root": str(tmp_path / "missing")},
                {"id": "file", "root": str(tmp_path / "a-file")},
                {"id": "ok", "root": str(tmp_path / "ok")},
            ],
        )
    )
    items = [e["data"] for e in events if e["event"] == "item"]
    assert [i["account"] for i in items] == ["gone", "file", "ok"]
    assert "No such file or directory" in items[0]["error"]
    assert items[1]["error"]
    assert items[2]["error"] is None and items[2]["installations"] == []
    assert events[-1] == {"id": 1, "event": "done", "data": {"accounts": 3}}


def test_stray_prints_go_to_stderr_not_the_protocol() -> None:
    program = (
        "import os, sys\n"
        "from patchd.agent import ops, server\n"
        "@ops.op('noisy')\n"
        "def noisy(args):\n"
        "    print('stray print')\n"
        "    os.system('echo child output')\n"
        "    yield {'ok': True}\n"
        "sys.exit(server.main())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", program],
        input=req(1, "noisy") + req(2, "ping"),
        capture_output=True,
        cwd=REPO,
        timeout=30,
        check=True,
    )
    events = [json.loads(line) for line in done.stdout.splitlines()]
    assert [(e["id"], e["event"]) for e in events] == [(1, "item"), (1, "done"), (2, "done")]
    assert b"stray print" in done.stderr and b"child output" in done.stderr


def test_agent_modules_parse_as_python_3_8() -> None:
    """Hosts may run an older python3 than the controller (3.8 is the floor we aim for)."""
    import ast

    for name in ("__init__", "__main__", "protocol", "server", "ops"):
        path = REPO / "patchd" / "agent" / f"{name}.py"
        ast.parse(path.read_text(), filename=str(path), feature_version=(3, 8))
