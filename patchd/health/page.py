"""What the health check keeps of one answer of a site: status, title, size, error lines.

Only this digest is kept (a rollout may hold the baselines of thousands of sites), never
the body itself.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

#: PHP's error markers: a page holding one the baseline did not hold got worse.
ERROR_MARKERS: tuple[str, ...] = ("Fatal error", "Parse error", "Uncaught")
#: Most bytes of a body read (a larger body counts as this long).
MAX_BODY = 1 << 20
#: Most characters of an error line kept for ``detail``.
MAX_ERROR_LINE = 240

_TITLE = re.compile(rb"<title[^>]*>(.*?)</title\s*>", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r"<[^>]*>")
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True, slots=True)
class Page:
    """One answer of a site (``status`` None: no answer at all, ``error`` says why)."""

    status: int | None
    size: int = 0
    title: str | None = None
    markers: frozenset[str] = frozenset()
    error_line: str | None = None  # the first line holding a marker, tags stripped
    error: str | None = None  # why there was no answer (timeout, refused, ...)

    @property
    def up(self) -> bool:
        """The site answered with 2xx or 3xx."""
        return self.status is not None and 200 <= self.status < 400

    def describe(self) -> str:
        """``HTTP 200`` or ``no answer (ConnectTimeout: ...)``."""
        if self.status is None:
            return f"no answer ({self.error})"
        return f"HTTP {self.status}"


def read_page(status: int, body: bytes) -> Page:
    """The digest of an answer with ``status`` and (at most :data:`MAX_BODY` of) ``body``."""
    title_match = _TITLE.search(body[:65536])
    title = None
    if title_match:
        title = _one_line(title_match.group(1).decode("utf-8", "replace")) or None
    text = body.decode("utf-8", "replace")
    markers = frozenset(m for m in ERROR_MARKERS if m in _TAG.sub("", text))
    return Page(status, len(body), title, markers, _error_line(text) if markers else None)


def no_answer(error: BaseException) -> Page:
    """The digest of a request that got no answer."""
    message = str(error) or "no detail"
    return Page(None, error=_one_line(f"{type(error).__name__}: {message}")[:MAX_ERROR_LINE])


def _error_line(text: str) -> str | None:
    for line in text.splitlines():
        found = _from_marker(_one_line(_TAG.sub("", line)))
        if found:
            return found
    # NOTE: a marker split over lines by markup (<b>Fatal error</b>:<br />...)
    return _from_marker(_one_line(_TAG.sub(" ", text)))


def _from_marker(plain: str) -> str | None:
    """``plain`` from its first marker on (with a ``PHP `` before it), or None."""
    found = [at for at in (plain.find(m) for m in ERROR_MARKERS) if at >= 0]
    if not found:
        return None
    at = min(found)
    if plain[max(0, at - 4) : at] == "PHP ":
        at -= 4
    return plain[at : at + MAX_ERROR_LINE]


def _one_line(text: str) -> str:
    return _SPACE.sub(" ", html.unescape(text)).strip()
