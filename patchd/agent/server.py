"""The agent's serve loop: read requests from stdin, run ops, write events to stdout.

Requests are served one at a time, in order. A failing request (bad line, unknown op, an
op raising) is answered with an ``error`` event and the loop goes on; only end of input
(the controller closed the connection) ends the agent.

NOTE: stdlib-only and Python 3.8 compatible; this module runs on the hosts.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any, BinaryIO

from patchd.agent import ops, protocol

#: Longest time an item waits in the agent's buffer before it is flushed to the controller.
FLUSH_SECONDS = 0.1


class UnknownOpError(LookupError):
    """The request names an op the agent does not have."""


def handle(request: dict[str, Any], out: BinaryIO) -> None:
    """Run one request and write all of its events to ``out``; never raises for op errors."""
    request_id = request.get("id")
    try:
        name = request.get("op")
        args = request.get("args") or {}
        if not isinstance(name, str) or not isinstance(args, dict):
            raise protocol.ProtocolError("a request needs a string 'op' and an object 'args'")
        func = ops.OPS.get(name)
        if func is None:
            raise UnknownOpError(f"unknown op {name!r}; this agent has {sorted(ops.OPS)}")
        result = func(args)
        summary: dict[str, Any] | None = None
        flushed = time.monotonic()
        while True:
            try:
                data = next(result)
            except StopIteration as stop:
                summary = stop.value
                break
            # NOTE: items are flushed at most every FLUSH_SECONDS (and with the request's
            # last event): one pipe write and one controller wake-up per item cost about
            # as much as a small installation's dry run. An item waits at most for the
            # next one (one installation's work); a lost buffer only means redoing
            # installations on resume, which is safe (finished applies are found).
            now = time.monotonic()
            _write(out, protocol.item(request_id, data), flush=now - flushed >= FLUSH_SECONDS)
            if now - flushed >= FLUSH_SECONDS:
                flushed = now
    except Exception as exc:
        _write(out, protocol.error(request_id, exc))
        return
    _write(out, protocol.done(request_id, summary if summary is not None else {}))


def serve(inp: BinaryIO, out: BinaryIO) -> int:
    """Serve requests from ``inp`` until end of input; return the exit status (0)."""
    while True:
        line = inp.readline()
        if not line:
            return 0
        if not line.strip():
            continue
        try:
            request = protocol.decode(line)
        except protocol.ProtocolError as exc:
            _write(out, protocol.error(None, exc))
            continue
        handle(request, out)


def main(inp: BinaryIO | None = None, package_sha256: str | None = None) -> int:
    """Start the agent on this process's stdin/stdout (or ``inp``); return its exit status.

    NOTE: stdout must carry only protocol lines. The protocol gets a private duplicate of
    file descriptor 1, and descriptor 1 itself (plus ``sys.stdout``) is pointed at stderr,
    so a stray ``print`` or a child process writing to its stdout cannot corrupt the stream.
    """
    if inp is None:
        inp = sys.stdin.buffer
    sys.stdout.flush()
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    ops.set_package_sha256(package_sha256)
    ops.load_ops()
    from patchd.patcher import batch  # NOTE: after load_ops, like every op's imports

    try:
        profile_dir = os.environ.get("PATCHD_AGENT_PROFILE")
        if profile_dir:  # NOTE: for bench/: the agent's own cProfile, one file per agent
            import cProfile

            prof = cProfile.Profile()
            try:
                with batch.session_pool():
                    return prof.runcall(serve, inp, out)
            finally:
                prof.dump_stats(os.path.join(profile_dir, f"agent-{os.getpid()}.prof"))
        # NOTE: one privilege-drop worker for the whole session (patchd.patcher.batch).
        with batch.session_pool():
            return serve(inp, out)
    finally:
        out.close()


def _write(out: BinaryIO, message: dict[str, Any], *, flush: bool = True) -> None:
    """Write one event line and (by default) flush, so the controller sees it at once."""
    try:
        line = protocol.encode(message)
    except (TypeError, ValueError) as exc:
        # NOTE: an op yielding something JSON cannot carry must not kill the agent.
        line = protocol.encode(protocol.error(message.get("id"), exc))
    out.write(line)
    if flush:
        out.flush()
