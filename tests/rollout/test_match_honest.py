"""Issue 13: matching never calls a vulnerable or unreadable installation not-affected."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from patchd.bundle.manifest import load_bundle, write_bundle
from patchd.rollout.match import Matcher


@dataclass(frozen=True)
class Ext:
    name: str
    version: str | None


@dataclass(frozen=True)
class Inst:
    cms: str
    version: str | None
    path: str = "html"
    version_error: str | None = None
    facts: dict[str, Any] = field(default_factory=dict)
    extensions: tuple[Ext, ...] = ()


DIFF = b"--- a/x.php\n+++ b/x.php\n@@ -1 +1 @@\n-a\n+b\n"


def _bundle(tmp_path: Path, component: str = "core"):
    write_bundle(
        tmp_path / "b",
        {
            "id": "t",
            "title": "t",
            "cms": "typo3",
            "component": component,
            "affected": "12.4.0-12.4.10",
            "fixed_in": "12.4.11",
            "summary": {"de": "x", "en": "x"},
            "variants": [{"versions": "12.4.8-12.4.10", "file": "patch.diff"}],
        },
        {"patch.diff": DIFF},
    )
    return load_bundle(tmp_path / "b")


def test_kinds(tmp_path: Path) -> None:
    m = Matcher(_bundle(tmp_path))
    assert m.match(Inst("typo3", "12.4.9")).kind == "target"
    nov = m.match(Inst("typo3", "12.4.3"))
    assert (nov.kind, nov.affected, nov.variant) == ("no-variant", True, None)
    assert nov.why.endswith("update to 12.4.11 or newer")
    assert m.match(Inst("typo3", "12.4.11")).kind == "not-affected"
    assert m.match(Inst("wordpress", "12.4.3")).kind == "not-affected"
    unknown = m.match(Inst("typo3", None, version_error="Typo3Version.php: unreadable"))
    assert (unknown.kind, unknown.affected, unknown.checked_on_host) == (
        "version-unknown",
        False,
        True,
    )
    assert unknown.why == "version unknown: Typo3Version.php: unreadable"
    assert m.match(Inst("typo3", "twelve")).kind == "version-unknown"


def test_component_absent_is_not_affected_but_its_unknown_version_is_not(tmp_path: Path) -> None:
    m = Matcher(_bundle(tmp_path, component="news"))
    assert m.match(Inst("typo3", "12.4.3")).kind == "not-affected"
    assert m.match(Inst("typo3", "12.4.3", extensions=(Ext("news", None),))).kind == (
        "version-unknown"
    )
    assert m.match(Inst("typo3", None, extensions=(Ext("news", "12.4.9"),))).kind == "target"
