"""``patchd build`` on release tarballs that ship relative symlinks (issue 12, item 5)."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from patchd.cli.main import cli
from patchd.engine.parse import parse_diff
from patchd_fixtures.links import PUBLIC_HTML_LINKS, write_release_archive_with_links

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "fixtures" / "rules" / "wp-2026-001.yaml"


def _build(tmp: Path, old_links: dict[str, str], new_links: dict[str, str]):
    old = write_release_archive_with_links("wordpress", "6.4.2", tmp / "old", old_links)
    new = write_release_archive_with_links("wordpress", "6.4.3", tmp / "new", new_links)
    args = ["build", str(old), str(new), "--rules", str(RULES), "--undecided", "drop",
            "--no-lint", "--id", "wp-links", "--workdir", str(tmp / "work"),
            "--out", str(tmp / "out")]  # fmt: skip
    return CliRunner().invoke(cli, args, catch_exceptions=False), tmp / "out" / "wp-links"


def test_unchanged_links_are_accepted_and_ignored(tmp_path: Path) -> None:
    result, bundle = _build(tmp_path, PUBLIC_HTML_LINKS, PUBLIC_HTML_LINKS)
    assert result.exit_code == 0, result.output
    report = json.loads((bundle / "build-report.json").read_text())
    assert report["links"] == []
    assert "manual:" not in result.output
    paths = {fp.path for fp in parse_diff((bundle / "patch.diff").read_bytes())}
    assert not any(p.startswith("public_html") for p in paths)
    assert not any(p.is_symlink() for p in (tmp_path / "work").rglob("*"))


def test_added_and_changed_links_are_named_for_a_person_and_kept_out(tmp_path: Path) -> None:
    new_links = {**PUBLIC_HTML_LINKS, "public_html/plugins": "../plugins-v2",
                 "public_html/skins": "../skins"}  # fmt: skip
    del new_links["public_html/index.php"]
    result, bundle = _build(tmp_path, PUBLIC_HTML_LINKS, new_links)
    assert result.exit_code == 0, result.output
    report = json.loads((bundle / "build-report.json").read_text())
    by_path = {link["path"]: link for link in report["links"]}
    assert set(by_path) == {"public_html/plugins", "public_html/skins", "public_html/index.php"}
    assert (by_path["public_html/plugins"]["old"], by_path["public_html/plugins"]["new"]) == (
        "../plugins",
        "../plugins-v2",
    )
    assert by_path["public_html/skins"]["old"] is None
    assert by_path["public_html/skins"]["note"].startswith("link added (-> ../skins)")
    assert by_path["public_html/index.php"]["note"].startswith("link removed")
    assert "manual: public_html/plugins: link changed (-> ../plugins became -> ../plugins-v2)" in (
        result.output
    )
    diff = (bundle / "patch.diff").read_bytes()
    assert b"public_html" not in diff and b"plugins-v2" not in diff
    # the security hunks are still all there
    assert len([h for fp in parse_diff(diff) for h in fp.hunks]) == 3
    shown = CliRunner().invoke(cli, ["show", str(bundle)]).output
    assert "manual: public_html/skins: link added (-> ../skins)" in shown
