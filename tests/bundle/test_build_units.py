"""Builder pieces on their own: regex splits, region check, backport porting, lint, times."""

from __future__ import annotations

import re
import shutil

import pytest

from patchd.bundle.backport import port_patch
from patchd.bundle.builder import created_at, split_by_regex
from patchd.bundle.validate import find_php, lint_php, region_problem, validate_patch
from patchd.engine.model import FilePatch
from patchd.errors import UsageError
from tests.bundle.helpers import release_hunk

PHP = find_php(None)
OLD = b"".join(f"line {i}\n".encode() for i in range(1, 21))


def _mixed():
    return release_hunk(
        "a.php",
        [" line 4", " line 5", "-line 6", "+safe 6", " line 7", " line 8", "-line 9", "+other 9",
         " line 10", " line 11"],
        old_start=4,
    )  # fmt: skip


def test_split_by_regex_keeps_only_matching_runs() -> None:
    rh = _mixed()
    parts = split_by_regex(rh.hunk, rh, re.compile("safe"))
    assert parts is not None and len(parts) == 1
    changed = [ln for ln in parts[0].lines if ln.kind != " "]
    assert [ln.data for ln in changed] == [b"line 6\n", b"safe 6\n"]
    assert split_by_regex(rh.hunk, rh, re.compile(r"\d")) is None  # every run matches


def test_region_check_accepts_kept_part_and_refuses_a_half_change() -> None:
    rh = _mixed()
    new = OLD.replace(b"line 6\n", b"safe 6\n").replace(b"line 9\n", b"other 9\n")
    kept = split_by_regex(rh.hunk, rh, re.compile("safe"))
    assert kept is not None
    fp = FilePatch("a.php", "a.php", kept)
    patched = OLD.replace(b"line 6\n", b"safe 6\n")
    assert region_problem(fp, patched, new) is None
    wrong = new.replace(b"safe 6\n", b"safer 6\n")
    assert "patched line 6" in (region_problem(fp, patched, wrong) or "")


def test_port_lists_hunks_that_do_not_port_and_stores_no_variant() -> None:
    rh = _mixed()
    fp = FilePatch("a.php", "a.php", (rh.hunk,))
    older = OLD.replace(b"line 7\n", b"changed 7\n")
    ported = port_patch(
        [fp], {"a.php": [rh.id]}, {"a.php": older}.get, version="1.0.0", fuzz=0, php=PHP
    )
    assert ported.patches is None and ported.entry.status == "manual"
    assert [m.hunk for m in ported.entry.manual] == [rh.id]
    shifted = b"extra\nextra\n" + OLD
    ok = port_patch(
        [fp], {"a.php": [rh.id]}, {"a.php": shifted}.get, version="1.0.0", fuzz=0, php=PHP
    )
    assert ok.entry.status == "ok" and ok.entry.offsets == {rh.id: 2}
    # exact context of 3 lines: "line 3" sits at line 5 of the shifted file
    assert ok.patches is not None and ok.patches[0].hunks[0].old_start == 5
    assert all(c.ok for c in ok.checks)


def test_validate_reports_offset_and_lint_failures() -> None:
    rh = _mixed()
    fp = FilePatch("a.php", "a.php", (rh.hunk,))
    shifted = b"extra\n" + OLD
    result = validate_patch([fp], {"a.php": shifted}.get, variant="patch.diff", php=PHP)
    failed = [c for c in result.checks if not c.ok]
    assert failed and failed[0].check == "applies-exactly" and "offset 1" in failed[0].detail
    lint = lint_php({"x.php": b"<?php\nif ( {\n", "ok.php": b"<?php echo 1;\n"}, php=PHP,
                    variant="v")  # fmt: skip
    assert {c.detail.split(":")[0]: c.ok for c in lint} == {"ok.php": True, "x.php": False}


def test_created_at_from_option_or_source_date_epoch(monkeypatch) -> None:
    assert created_at("2026-01-15T09:00:00+00:00") == "2026-01-15T09:00:00+00:00"
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "0")
    assert created_at(None) == "1970-01-01T00:00:00+00:00"
    with pytest.raises(UsageError):
        created_at("yesterday")


def test_php_is_found() -> None:
    assert shutil.which("php") is not None
