"""A real SMTP server (aiosmtpd) in a separate process on 127.0.0.1, recording what it gets.

The server process binds a free port itself (no race), writes it to a ready file, and
saves every accepted message as ``NNNN.eml`` (the data as received) plus ``NNNN.json``
(envelope sender and recipients) in its folder, each written atomically.
:class:`SMTPServer` starts, stops (a "server down" for failure tests) and restarts it and
reads the received messages back; the ``smtp_server`` fixture yields a running one.

The harness fails loudly (never skips) if aiosmtpd is missing: it is a test dependency.

Run as ``python -m tests.support.smtp OUT_DIR READY_FILE`` (what :class:`SMTPServer` does).
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

import pytest

HOST = "127.0.0.1"
START_TIMEOUT = 15.0
REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Received:
    """One message as the server received it."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    raw: bytes

    @property
    def message(self) -> EmailMessage:
        """The parsed message (modern policy: headers as objects)."""
        msg = email.message_from_bytes(self.raw, policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        return msg


class SMTPServer:
    """A server process recording into ``folder``; :meth:`start` / :meth:`stop` it."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self.proc: subprocess.Popen[bytes] | None = None
        self.port: int = 0
        self.host = HOST

    def start(self) -> None:
        """Start the server (a new free port each time) and wait until it listens."""
        ready = self.folder.parent / f"{self.folder.name}.ready"
        ready.unlink(missing_ok=True)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.support.smtp", str(self.folder), str(ready)],
            cwd=REPO,
            stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + START_TIMEOUT
        while not ready.exists() or not ready.read_text().strip():
            if self.proc.poll() is not None:
                raise RuntimeError(f"SMTP server exited with {self.proc.returncode}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("SMTP server did not start")
            time.sleep(0.02)
        self.port = int(ready.read_text())

    def stop(self) -> None:
        """Stop the server; connections to its port are refused afterwards."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def messages(self) -> list[Received]:
        """Every message received so far, in arrival order."""
        out: list[Received] = []
        for meta in sorted(self.folder.glob("*.json")):
            env = json.loads(meta.read_text())
            raw = meta.with_suffix(".eml").read_bytes()
            out.append(Received(env["mail_from"], tuple(env["rcpt_tos"]), raw))
        return out


@pytest.fixture
def smtp_server(tmp_path: Path) -> Iterator[SMTPServer]:
    """A running SMTP server on loopback, stopped after the test."""
    server = SMTPServer(tmp_path / "smtp-received")
    server.start()
    try:
        yield server
    finally:
        server.stop()


# -- the server process -------------------------------------------------------------------


class _Recorder:
    """aiosmtpd handler: save each message and its envelope into a folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.count = len(list(folder.glob("*.json")))

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        self.count += 1
        stem = self.folder / f"{self.count:04d}"
        data = envelope.original_content or envelope.content  # type: ignore[attr-defined]
        if isinstance(data, str):
            data = data.encode("utf-8", "surrogateescape")
        meta = {
            "mail_from": envelope.mail_from,  # type: ignore[attr-defined]
            "rcpt_tos": list(envelope.rcpt_tos),  # type: ignore[attr-defined]
        }
        for path, content in (
            (stem.with_suffix(".eml"), data),
            (stem.with_suffix(".json"), json.dumps(meta).encode()),
        ):
            tmp = path.with_suffix(path.suffix + ".tmp")
            tmp.write_bytes(content)
            os.replace(tmp, path)
        return "250 Message accepted for delivery"


async def _serve(folder: Path, ready: Path) -> None:
    from aiosmtpd.smtp import SMTP

    loop = asyncio.get_running_loop()
    handler = _Recorder(folder)
    server = await loop.create_server(
        lambda: SMTP(handler, decode_data=False, enable_SMTPUTF8=True), HOST, 0
    )
    port = server.sockets[0].getsockname()[1]
    tmp = ready.with_suffix(".tmp")
    tmp.write_text(str(port))
    os.replace(tmp, ready)
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    await stop.wait()
    server.close()
    await server.wait_closed()


if __name__ == "__main__":
    asyncio.run(_serve(Path(sys.argv[1]), Path(sys.argv[2])))
