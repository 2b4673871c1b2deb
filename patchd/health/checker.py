"""Fetching sites for the health check: concurrent, bounded per host, with timeouts.

One :class:`HealthChecker` per rollout runs an asyncio event loop in a thread of its own
with one pooled ``httpx.AsyncClient``; the rollout's host threads hand it fetches and get
:class:`concurrent.futures.Future` objects back, so the checks of one batch run while the
host applies the next installations. At most ``per_host`` requests go to one host at once
(waiting, e.g. for opcache, holds no slot).

Stale code: PHP's opcache may serve the old code after a file was replaced, until it
looks at the file's time again: ``opcache.revalidate_freq`` seconds (default 2) after it
last did, counted in whole seconds, so up to 3 s by default. A check that finds the site
fine before ``settle`` seconds (default 3) have passed since the apply fetches once more
when they have; a site
that looks worse is fetched once more after :data:`CONFIRM_PAUSE` (a passing hiccup is no
reason to undo a security fix). At most :data:`MAX_FETCHES` fetches per check.
"""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

import httpx

from patchd.health.page import MAX_BODY, Page, no_answer, read_page
from patchd.health.verdict import Verdict, baseline_down, compare

#: Seconds between a worse answer and the fetch that confirms it.
CONFIRM_PAUSE = 0.5
#: Most fetches of one check after the apply.
MAX_FETCHES = 4
USER_AGENT = "patchd-health-check"


@dataclass(frozen=True, slots=True)
class SiteURL:
    """A URL to check and, optionally, the IP address to connect to for it."""

    url: str
    resolve: str | None = None


class HealthChecker:
    """Fetches baselines and checks after applies (see the module docstring)."""

    def __init__(self, *, per_host: int = 4, timeout: float = 10.0, settle: float = 3.0) -> None:
        self.per_host = per_host
        self.timeout = timeout
        self.settle = settle
        self._limits: dict[str, asyncio.Semaphore] = {}
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="patchd-health", daemon=True
        )
        self._thread.start()
        self._client: httpx.AsyncClient = self._run(self._open()).result()

    async def _open(self) -> httpx.AsyncClient:
        # NOTE: no certificate check: the check compares what the site answers, sends no
        # secrets, and a customer's expired certificate must not switch it off.
        return httpx.AsyncClient(
            verify=False,
            follow_redirects=False,
            timeout=httpx.Timeout(self.timeout),
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=256),
            headers={"User-Agent": USER_AGENT, "Cache-Control": "no-cache"},
        )

    def _run(self, coro: Any) -> Future[Any]:
        return asyncio.run_coroutine_threadsafe(coro, self._loop)

    def baseline(self, host: str, site: SiteURL) -> Future[Page]:
        """The site's answer now (before the apply)."""
        return self._run(self._fetch(host, site))

    def after(self, host: str, site: SiteURL, before: Page) -> Future[Verdict]:
        """The verdict on the site after an apply that finished just now."""
        return self._run(self._after(host, site, before, time.monotonic()))

    def close(self) -> None:
        """Stop the loop (checks still running are abandoned)."""
        if not self._loop.is_running():
            return
        self._run(self._client.aclose()).result()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()

    def __enter__(self) -> HealthChecker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def _after(self, host: str, site: SiteURL, before: Page, applied: float) -> Verdict:
        if not before.up:
            return baseline_down(site.url, before)
        streak = 0
        verdict = None
        for _ in range(MAX_FETCHES):
            verdict = compare(site.url, before, await self._fetch(host, site))
            if verdict.worse:
                streak += 1
                if streak == 2:
                    return verdict
                await asyncio.sleep(CONFIRM_PAUSE)
                continue
            streak = 0
            left = applied + self.settle - time.monotonic()
            if left <= 0:
                return verdict
            await asyncio.sleep(left)
        assert verdict is not None
        return verdict

    async def _fetch(self, host: str, site: SiteURL) -> Page:
        limit = self._limits.get(host)
        if limit is None:
            limit = self._limits[host] = asyncio.Semaphore(self.per_host)
        url, headers, extensions = _request(site)
        async with limit:
            try:
                async with asyncio.timeout(self.timeout * 2):
                    return await self._get(url, headers, extensions)
            except (httpx.HTTPError, OSError, TimeoutError) as exc:
                return no_answer(exc)

    async def _get(self, url: httpx.URL, headers: dict[str, str], extensions: dict) -> Page:
        body = bytearray()
        request = self._client.build_request("GET", url, headers=headers, extensions=extensions)
        response = await self._client.send(request, stream=True)
        try:
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) >= MAX_BODY:
                    break
        finally:
            await response.aclose()
        return read_page(response.status_code, bytes(body[:MAX_BODY]))


def _request(site: SiteURL) -> tuple[httpx.URL, dict[str, str], dict[str, Any]]:
    """The URL to connect to, headers and extensions: with ``resolve``, the connection goes
    to that address while Host header and TLS server name stay the URL's (curl --resolve)."""
    url = httpx.URL(site.url)
    if site.resolve is None:
        return url, {}, {}
    host = url.host
    headers = {"Host": url.netloc.decode("ascii")}
    return url.copy_with(host=site.resolve), headers, {"sni_hostname": host}
