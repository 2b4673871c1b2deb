"""A PATH without ``php``: every other program of the current PATH, linked into one folder."""

from __future__ import annotations

import os
import sys
from pathlib import Path


def path_without_php(folder: Path) -> str:
    """Fill ``folder`` with links to every program on PATH except ``php*``; return the
    PATH to use (the venv's bin first, so ``patchd`` and ``python`` are this checkout's)."""
    folder.mkdir(parents=True, exist_ok=True)
    dirs = [str(Path(sys.executable).parent), *os.environ.get("PATH", "").split(os.pathsep)]
    for d in dirs:
        if not d or not os.path.isdir(d):
            continue
        for entry in os.scandir(d):
            target = folder / entry.name
            if entry.name.startswith("php") or target.exists() or target.is_symlink():
                continue
            target.symlink_to(entry.path)
    return str(folder)
