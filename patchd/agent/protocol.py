"""The agent's wire protocol: one JSON object per line, in both directions.

A request is ``{"id": N, "op": NAME, "args": {...}}``. The agent answers it with zero or more
``{"id": N, "event": "item", "data": {...}}`` lines followed by exactly one terminal line,
either ``{"id": N, "event": "done", "data": {...}}`` or ``{"id": N, "event": "error",
"error": {"type", "message", "where", "traceback"}}``. A line that is not a valid request is
answered with an ``error`` event whose ``id`` is the request's id if it could be read, else
``null``.

NOTE: stdlib-only and Python 3.8 compatible; this module runs on the hosts.
"""

from __future__ import annotations

import json
import traceback
from typing import Any, Dict  # noqa: UP035

PROTOCOL_VERSION = 1
"""Bumped whenever a message changes shape; ``ping`` reports it."""

ITEM = "item"
DONE = "done"
ERROR = "error"
TERMINAL_EVENTS = frozenset({DONE, ERROR})

# NOTE: typing.Dict, not dict: ``Message`` is evaluated at runtime, on Python 3.8 too.
Message = Dict[str, Any]  # noqa: UP006


class ProtocolError(ValueError):
    """A line is not a well-formed protocol message."""


def encode(message: Message) -> bytes:
    """Serialise one message as a single ``\\n``-terminated line.

    NOTE: ``ensure_ascii`` keeps lone surrogates (file names read with ``surrogateescape``)
    as ``\\udcXX`` escapes, so non-UTF-8 names survive the round trip instead of failing.
    """
    return json.dumps(message, ensure_ascii=True, separators=(",", ":")).encode("ascii") + b"\n"


def decode(line: bytes) -> Message:
    """Parse one line into a message object; raise :class:`ProtocolError` if it is not one."""
    try:
        message = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ProtocolError(f"not a JSON line: {line[:200]!r}") from exc
    if not isinstance(message, dict):
        raise ProtocolError(f"not a JSON object: {line[:200]!r}")
    return message


def request(request_id: int, op: str, args: Message) -> Message:
    """Build a request message."""
    return {"id": request_id, "op": op, "args": args}


def item(request_id: int | None, data: Message) -> Message:
    """Build an ``item`` event (one streamed result of a request)."""
    return {"id": request_id, "event": ITEM, "data": data}


def done(request_id: int | None, data: Message) -> Message:
    """Build the ``done`` event that ends a successful request."""
    return {"id": request_id, "event": DONE, "data": data}


def error(request_id: int | None, exc: BaseException) -> Message:
    """Build the ``error`` event that ends a failed request, describing ``exc``."""
    return {
        "id": request_id,
        "event": ERROR,
        "error": {
            "type": type(exc).__name__,
            "message": str(getattr(exc, "message", exc)),
            "where": getattr(exc, "where", None),
            "traceback": "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)),
        },
    }
