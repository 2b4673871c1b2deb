"""The smoke test: serve an installation with ``php -S`` and request a few URLs.

The same URLs are requested before and after patching; the cell fails when a status code
changes or a PHP error (fatal, parse error, warning) appears after patching that was not
there before. Comparing before with after keeps the test meaningful for installations that
cannot fully run on the test machine (no database, no configuration): an error they show
anyway is the same before and after, while an error the patch introduces is new.

NOTE: error messages are compared without line numbers and with the docroot cut off, so a
patch that shifts the line of an existing error does not count as a new error.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

#: Entry URLs per CMS when the matrix names none.
DEFAULT_URLS: dict[str, tuple[str, ...]] = {
    "wordpress": ("/", "/index.php", "/wp-login.php"),
    "typo3": ("/", "/index.php"),
    "roundcube": ("/", "/index.php", "/?_task=mail"),
}
FALLBACK_URLS: tuple[str, ...] = ("/", "/index.php")
MAX_BODY = 1024 * 1024
START_TIMEOUT = 10.0

_ERROR_RE = re.compile(
    r"^\s*(?:PHP )?(?:<b>)?(Fatal error|Parse error|Recoverable fatal error|Warning)(?:</b>)?:"
    r"\s*(.+)$",
    re.MULTILINE,
)


@dataclass(frozen=True)
class Page:
    """One URL's response: status (None: no response), the PHP errors in the body."""

    url: str
    status: int | None
    errors: tuple[str, ...] = ()
    problem: str | None = None  # why there is no response


@dataclass(frozen=True)
class SmokeRun:
    """Every URL of one serving of the installation."""

    pages: tuple[Page, ...]
    problem: str | None = None  # the server did not start

    def page(self, url: str) -> Page | None:
        """The response for ``url``, if requested."""
        return next((p for p in self.pages if p.url == url), None)


def urls_for(
    cms: str, urls: Sequence[str] | None, patched: Iterable[str], docroot: str | None, probe: bool
) -> list[str]:
    """The URLs to request: the entry URLs, then each patched PHP file below the docroot."""
    out = list(urls) if urls else list(DEFAULT_URLS.get(cms, FALLBACK_URLS))
    if probe:
        prefix = f"{docroot.strip('/')}/" if docroot else ""
        for rel in sorted(patched):
            if rel.endswith(".php") and rel.startswith(prefix):
                url = "/" + rel[len(prefix) :]
                if url not in out:
                    out.append(url)
    return out


def normalise_error(line: str, docroot: Path) -> str:
    """One error line without the docroot prefix, line numbers and include paths."""
    text = line.strip()
    for root in {str(docroot), os.path.realpath(docroot)}:
        text = text.replace(root.rstrip("/") + "/", "")
    text = re.sub(r" on line \d+", "", text)
    text = re.sub(r"(\.(?:php|inc|phtml)):\d+", r"\1", text)
    text = re.sub(r"\s*\(include_path='[^']*'\)", "", text)
    return text


def php_errors(body: str, docroot: Path) -> tuple[str, ...]:
    """The distinct PHP errors shown in ``body`` (``Fatal error: ...``), normalised."""
    found: list[str] = []
    for m in _ERROR_RE.finditer(body):
        err = f"{m.group(1)}: {normalise_error(m.group(2), docroot)}"
        if err not in found:
            found.append(err)
    return tuple(found)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:  # type: ignore[override]
        return None


def _fetch(base: str, url: str, docroot: Path, timeout: float) -> Page:
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(base + url, timeout=timeout) as resp:
            status, body = resp.status, resp.read(MAX_BODY)
    except urllib.error.HTTPError as exc:
        status, body = exc.code, exc.read(MAX_BODY)
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        return Page(url, None, (), f"no response: {getattr(exc, 'reason', exc)}")
    return Page(url, status, php_errors(body.decode("utf-8", "replace"), docroot))


def _wait_listening(proc: subprocess.Popen[bytes], port: int, limit: float) -> bool:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.02)
    return False


def serve_and_fetch(
    php_binary: str, docroot: Path, urls: Sequence[str], *, timeout: float = 10.0
) -> SmokeRun:
    """Start ``php -S 127.0.0.1:PORT -t docroot``, request every URL, stop the server."""
    docroot = Path(docroot).resolve()
    for _attempt in range(3):
        port = _free_port()
        # NOTE: errors are shown in the body (that is what the test reads) as plain text;
        # the server's own log goes nowhere so a chatty app cannot fill a pipe and stall.
        proc = subprocess.Popen(
            [
                php_binary,
                "-d",
                "display_errors=1",
                "-d",
                "html_errors=0",
                "-d",
                "error_reporting=E_ALL",
                "-d",
                "log_errors=0",
                "-S",
                f"127.0.0.1:{port}",
                "-t",
                str(docroot),
            ],
            cwd=docroot,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={"PATH": "/usr/bin:/bin", "LC_ALL": "C"},
        )
        try:
            if not _wait_listening(proc, port, START_TIMEOUT):
                continue  # NOTE: most likely the port was taken in between; try another.
            base = f"http://127.0.0.1:{port}"
            return SmokeRun(tuple(_fetch(base, url, docroot, timeout) for url in urls))
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    return SmokeRun((), f"{php_binary} -S did not start listening")


def compare(before: SmokeRun, after: SmokeRun) -> str | None:
    """The first problem the patch introduced (``GET /: ...``), or None."""
    if after.problem:
        return f"after patching: {after.problem}"
    for page in after.pages:
        old = before.page(page.url)
        if page.status is None and (old is None or old.status is not None):
            return f"GET {page.url}: {page.problem} after patching"
        if old is not None and old.status != page.status:
            return f"GET {page.url}: status {old.status} before patching, {page.status} after"
        new = [e for e in page.errors if old is None or e not in old.errors]
        if new:
            return f"GET {page.url}: new PHP error after patching: {new[0]}"
    return None


def summary(before: SmokeRun, after: SmokeRun) -> str:
    """A short account of a passing smoke test (URLs, and errors present both times)."""
    urls = len(after.pages)
    same = sum(1 for p in after.pages if p.errors)
    text = f"{urls} URLs, same status and no new PHP error after patching"
    if same:
        text += f" ({same} show errors both before and after)"
    return text
