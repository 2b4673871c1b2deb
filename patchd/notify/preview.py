"""Preview: each email as an ``.eml`` file (``run<RUN>-<customer>.eml``), nothing sent."""

from __future__ import annotations

import os
from email.message import EmailMessage
from pathlib import Path


def eml_name(run_id: int, customer_id: str, of: str = "run") -> str:
    """The preview file name of the email of ``run_id`` (or scan, ``of="scan"``) to
    ``customer_id``."""
    return f"{of}{run_id}-{customer_id}.eml"


def write_preview(
    folder: Path, run_id: int, customer_id: str, msg: EmailMessage, of: str = "run"
) -> Path:
    """Write ``msg`` into ``folder`` (created, mode 0700) as a 0600 file; return its path."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = folder / eml_name(run_id, customer_id, of)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(msg.as_bytes())
    return path
