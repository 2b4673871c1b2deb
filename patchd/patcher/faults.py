"""Named fault points for crash tests: ``PATCHD_FAULT=<point>[:oserror]``.

``PATCHD_FAULT=after_backup`` makes the process die at that point with ``os._exit(137)``
(what ``kill -9`` looks like to everyone else: no ``finally``, no flush);
``PATCHD_FAULT=after_backup:oserror`` raises :class:`OSError` there instead, which the
caller must handle like any real I/O error.

NOTE: stdlib-only. The check costs one dictionary lookup, so the points stay in production
code; that is what makes "kill at every point, then resume" a cheap test.
"""

from __future__ import annotations

import errno
import os

#: The points the patcher passes, in order.
FAULT_POINTS = ("after_backup", "after_journal", "after_first_replace", "before_verify")

ENV_VAR = "PATCHD_FAULT"


def fault_point(name: str) -> None:
    """Die or raise here if ``$PATCHD_FAULT`` names this point; otherwise do nothing."""
    assert name in FAULT_POINTS, name
    wanted = os.environ.get(ENV_VAR)
    if not wanted:
        return
    point, _, mode = wanted.partition(":")
    if point != name:
        return
    if mode == "oserror":
        raise OSError(errno.EIO, f"injected fault at {name}")
    os._exit(137)
