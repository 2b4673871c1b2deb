"""A real headless Chromium driven over the DevTools protocol on a pipe (stdlib only).

``--remote-debugging-pipe`` makes Chromium read NUL-terminated JSON commands from fd 3 and
write replies and events to fd 4, so no websocket library and no TCP port are needed.
:class:`Browser` opens a page, evaluates JavaScript, and clicks and types with real input
events (``Input.dispatchMouseEvent`` / ``Input.insertText``), which run the page's own
handlers the way a user's clicks do.

Fails loudly (never skips) when ``/usr/bin/chromium`` is missing: CI installs it
(scripts/test.sh), and a skipped browser test would hide a broken report.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

CHROMIUM = "/usr/bin/chromium"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--remote-debugging-pipe",
)
TIMEOUT = 20.0


class BrowserError(RuntimeError):
    """The browser did not answer, or a command failed."""


class Browser:
    """One Chromium process with one page; use as a context manager."""

    def __init__(self) -> None:
        if not os.access(CHROMIUM, os.X_OK):
            raise BrowserError(f"{CHROMIUM} is missing: apt-get install -y chromium")
        self._profile = tempfile.mkdtemp(prefix="patchd-chromium-")
        cmd_r, self._cmd_w = os.pipe()
        self._resp_r, resp_w = os.pipe()

        def child_fds() -> None:  # runs in the child between fork and exec
            # NOTE: via high numbers first, so one pipe end cannot overwrite the other.
            a, b = os.dup2(cmd_r, 100), os.dup2(resp_w, 101)
            os.dup2(a, 3)
            os.dup2(b, 4)

        self.proc = subprocess.Popen(
            [CHROMIUM, *FLAGS, f"--user-data-dir={self._profile}", "about:blank"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=child_fds,
            # NOTE: dup2 makes fds 3 and 4 inheritable; close_fds would close them again.
            close_fds=False,
        )
        os.close(cmd_r)
        os.close(resp_w)
        self._buf = b""
        self._next_id = 0
        self._session: str | None = None

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop Chromium and remove its profile."""
        with contextlib.suppress(OSError):
            self._send("Browser.close", {}, wait=False)
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for fd in (self._cmd_w, self._resp_r):
            with contextlib.suppress(OSError):
                os.close(fd)
        shutil.rmtree(self._profile, ignore_errors=True)

    # -- protocol ---------------------------------------------------------------------

    def _read_message(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buf:
            if time.monotonic() > deadline:
                raise BrowserError("timeout waiting for chromium")
            chunk = os.read(self._resp_r, 65536)
            if not chunk:
                raise BrowserError("chromium closed the pipe")
            self._buf += chunk
        raw, self._buf = self._buf.split(b"\0", 1)
        return json.loads(raw)

    def _send(self, method: str, params: dict[str, Any], *, wait: bool = True) -> dict[str, Any]:
        self._next_id += 1
        msg: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if self._session and not method.startswith(("Target.", "Browser.")):
            msg["sessionId"] = self._session
        os.write(self._cmd_w, json.dumps(msg).encode() + b"\0")
        if not wait:
            return {}
        deadline = time.monotonic() + TIMEOUT
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise BrowserError(f"{method}: {reply['error']}")
                return reply.get("result", {})

    # -- page -------------------------------------------------------------------------

    def open(self, path: Path, fragment: str = "") -> None:
        """Open ``path`` (a local file) with ``#fragment`` and wait until its script ran."""
        url = path.resolve().as_uri() + (f"#{fragment}" if fragment else "")
        target = self._send("Target.createTarget", {"url": url})["targetId"]
        self._session = self._send("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"
        ]
        # NOTE: right after createTarget the old about:blank may still be there (no element).
        self.wait_for(
            "location.href.startsWith('file:') && document.documentElement !== null"
            " && document.documentElement.getAttribute('data-ready') === '1'"
        )

    def evaluate(self, expression: str) -> Any:
        """The value of ``expression`` in the page (JSON-serialisable)."""
        res = self._send(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
        )
        if "exceptionDetails" in res:
            raise BrowserError(f"{expression}: {res['exceptionDetails']}")
        return res["result"].get("value")

    def wait_for(self, expression: str) -> None:
        """Poll until ``expression`` is true."""
        deadline = time.monotonic() + TIMEOUT
        while not self.evaluate(expression):
            if time.monotonic() > deadline:
                raise BrowserError(f"timeout waiting for {expression}")
            time.sleep(0.05)

    def click(self, selector: str) -> None:
        """A real mouse click (press and release) in the middle of ``selector``."""
        box = self.evaluate(
            f"(() => {{ const e = document.querySelector({json.dumps(selector)});"
            " e.scrollIntoView({block: 'center'}); const r = e.getBoundingClientRect();"
            " return [r.x + r.width / 2, r.y + r.height / 2]; })()"
        )
        x, y = box
        for kind in ("mousePressed", "mouseReleased"):
            self._send(
                "Input.dispatchMouseEvent",
                {"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1},
            )

    def type_into(self, selector: str, text: str) -> None:
        """Focus ``selector`` and type ``text`` as keyboard input."""
        self.evaluate(f"document.querySelector({json.dumps(selector)}).focus()")
        self._send("Input.insertText", {"text": text})

    def select(self, selector: str, value: str) -> None:
        """Choose ``value`` in a ``<select>`` the way a user's choice does (change event)."""
        self.evaluate(
            f"(() => {{ const s = document.querySelector({json.dumps(selector)});"
            f" s.value = {json.dumps(value)};"
            " s.dispatchEvent(new Event('change', {bubbles: true})); })()"
        )

    def visible_rows(self, column: str) -> list[str]:
        """The ``column`` cell text of every shown row of the results table, in order."""
        return self.evaluate(
            "Array.from(document.querySelectorAll('#results tbody tr'))"
            ".filter(tr => !tr.hidden)"
            f".map(tr => tr.querySelector('td.c-{column}').textContent)"
        )
