"""patchd.rollout.health_step with a scripted checker: what a batch's records become."""

from __future__ import annotations

from concurrent.futures import Future
from pathlib import Path
from typing import Any

from patchd.errors import TransportError
from patchd.health.checker import SiteURL
from patchd.health.page import Page, read_page
from patchd.health.verdict import Verdict, compare
from patchd.inventory import ACCOUNT, Host
from patchd.ledger.models import FileState, ResultRecord, TouchedFileRecord
from patchd.outcomes import Outcome, Reason
from patchd.rollout.health_step import HealthStep
from tests.e2e import kit

PAGE = b"<title>Shop</title>" + b"x" * 1000


class _Checker:
    """Answers baselines 200 and, after the apply, what ``after`` says per URL."""

    def __init__(self, after: dict[str, Page], before: Page | None = None) -> None:
        self.after_pages = after
        self.before = before or read_page(200, PAGE)

    def baseline(self, host: str, site: SiteURL) -> Future[Page]:
        return _done(self.before)

    def after(self, host: str, site: SiteURL, before: Page) -> Future[Verdict]:
        return _done(compare(site.url, before, self.after_pages[site.url]))


def _done(value: Any) -> Future[Any]:
    future: Future[Any] = Future()
    future.set_result(value)
    return future


def _account(name: str) -> Any:
    url = f"https://{name}.example/"
    return ACCOUNT.validate_python(
        kit.account(name, "web", Path(f"/srv/{name}"), sites=[{"path": "html", "url": url}])
    )


def _patched(name: str) -> tuple[ResultRecord, list[TouchedFileRecord]]:
    record = ResultRecord(
        account=name, host="web", path="html", outcome=Outcome.PATCHED,
        detail="patched 1 file(s)", journal=f"/b/1/{name}/journal.json",
    )  # fmt: skip
    files = [TouchedFileRecord(account=name, path="html", file="a.php", state=FileState.VERIFIED)]
    return record, files


def _run(after: dict[str, Page], undo: Any) -> dict[str, tuple[ResultRecord, Any]]:
    accounts = [_account(n) for n in ("ok", "bad")]
    step = HealthStep(_Checker(after), {"web": Host(transport="local")})  # type: ignore[arg-type]
    checks = step.batch("web", [(a, "html", True) for a in accounts])
    got = [_patched(n) for n in ("ok", "bad")]
    for record, _files in got:
        checks.applied(record)
    return {r.account: (r, f) for r, f in checks.finish(undo, got)}


def test_worse_is_undone_and_recorded_reverted() -> None:
    asked: list[Any] = []

    def undo(requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
        asked.extend(requests)
        files = [{"path": "a.php", "status": "restored"}]
        return [
            {**r, "ok": True, "detail": "rolled back 1 file(s)", "files": files} for r in requests
        ]

    out = _run(
        {"https://ok.example/": read_page(200, PAGE), "https://bad.example/": read_page(500, b"")},
        undo,
    )
    assert [(r["account"], r["path"], r["root"]) for r in asked] == [("bad", "html", "/srv/bad")]
    ok, bad = out["ok"][0], out["bad"][0]
    assert ok.outcome is Outcome.PATCHED
    assert (
        ok.detail
        == "patched 1 file(s); health check: HTTP 200 before and after (https://ok.example/)"
    )
    assert (bad.outcome, bad.reason) == (Outcome.REVERTED, Reason.HEALTH_CHECK)
    assert bad.detail == (
        "health check: HTTP 200 before, HTTP 500 after: server error (https://bad.example/); "
        "undone at once: rolled back 1 file(s), verified by hash"
    )
    assert bad.journal == "/b/1/bad/journal.json"
    assert [f.state for f in out["bad"][1]] == [FileState.ROLLED_BACK]


def test_a_failed_undo_is_an_error_of_the_health_check() -> None:
    def undo(requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
        raise TransportError("connection lost", host="web")

    out = _run(
        {"https://ok.example/": read_page(200, PAGE), "https://bad.example/": read_page(502, b"")},
        undo,
    )
    bad = out["bad"][0]
    assert (bad.outcome, bad.reason) == (Outcome.ERROR, Reason.HEALTH_CHECK)
    assert "the undo failed (host web: connection lost)" in (bad.detail or "")
    assert "the patch is still applied, undo it with patchd rollback" in (bad.detail or "")
    assert out["ok"][0].outcome is Outcome.PATCHED


def test_a_conflict_while_undoing_is_an_error_with_the_file_marked() -> None:
    def undo(requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
        files = [{"path": "a.php", "status": "conflict"}]
        return [
            {**r, "ok": False, "detail": "a.php: changed since", "files": files} for r in requests
        ]

    out = _run(
        {"https://ok.example/": read_page(200, PAGE), "https://bad.example/": read_page(500, b"")},
        undo,
    )
    assert out["bad"][0].outcome is Outcome.ERROR
    assert [f.state for f in out["bad"][1]] == [FileState.ROLLBACK_CONFLICT]


def test_not_applied_or_without_url_is_not_checked() -> None:
    step = HealthStep(_Checker({}), {"web": Host(transport="local")})  # type: ignore[arg-type]
    checks = step.batch("web", [(_account("ok"), "html", False), (_account("x"), "other", True)])
    assert checks.sites == {} and not checks.checking
