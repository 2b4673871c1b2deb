"""A person resolves a backport conflict in review; the rules file reproduces it
(issue 13, item 3)."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from patchd.bundle.manifest import load_bundle
from patchd.cli.main import cli
from patchd_fixtures.drift import WORDPRESS_DRIFTS, write_drifted_release
from patchd_fixtures.releases import write_release_archive

ROOT = Path(__file__).resolve().parents[2]
PATH = "wp-includes/comment-template.php"
RESOLVED = "\tprint( esc_html( $author ) ); // legacy output path\n"


@pytest.fixture(scope="module")
def releases(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("review")
    return {
        "old": write_release_archive("wordpress", "6.4.2", tmp / "rel"),
        "new": write_release_archive("wordpress", "6.4.3", tmp / "rel"),
        "ctx": write_drifted_release(
            "wordpress", "6.4.1", tmp / "wp-6.4.1", WORDPRESS_DRIFTS["context"]
        ),
        "res": write_drifted_release(
            "wordpress", "6.4.0", tmp / "wp-6.4.0", WORDPRESS_DRIFTS["restructured"]
        ),
    }


def _build(
    releases: dict[str, Path], rules: Path, out: Path, *extra: str, stdin: str = ""
) -> tuple[int, str]:
    args = [
        "build", str(releases["old"]), str(releases["new"]), "--rules", str(rules),
        "--backport", str(releases["ctx"]), "--backport", str(releases["res"]),
        "--id", "wp-review", "--no-lint", "--undecided", "drop", "--out", str(out), *extra,
    ]  # fmt: skip
    # NOTE: the review asks about the 3 undecided hunks first (answered "n": drop)
    result = CliRunner().invoke(cli, args, input=("n\n" * 3 + stdin) if "--review" in extra else "")
    return result.exit_code, result.output


def _rules(tmp: Path) -> Path:
    rules = tmp / "rules.yaml"
    shutil.copy(ROOT / "fixtures/rules/wp-2026-001.yaml", rules)
    return rules


def test_resolution_from_a_file_is_recorded_and_reproduced(
    releases: dict[str, Path], tmp_path: Path
) -> None:
    rules = _rules(tmp_path)
    answer = tmp_path / "answer.txt"
    answer.write_text(RESOLVED)
    code, output = _build(releases, rules, tmp_path / "a", "--review", stdin=f"f {answer}\n")
    assert code == 0, output
    assert "backport 6.4.0: wp-includes/comment-template.php@conflict1" in output
    assert "release 6.4.0 has:" in output and "| \tprint( $author ); // legacy" in output
    bundle = load_bundle(tmp_path / "a" / "wp-review")
    methods = {v.versions: v.method for v in bundle.manifest.variants}
    assert methods == {"6.4.2": "exact", "6.4.1": "merge", "6.4.0": "resolved"}
    variant = (tmp_path / "a" / "wp-review" / "variants" / "6.4.0.diff").read_text()
    assert "+" + RESOLVED in variant and "-\tprint( $author ); // legacy output path\n" in variant
    # applied with GNU patch to the restructured release: the person's lines, exactly
    work = tmp_path / "site"
    shutil.copytree(releases["res"], work)
    proc = subprocess.run(
        ["patch", "-p1", "-F0", "-s", "-i", str(tmp_path / "a/wp-review/variants/6.4.0.diff")],
        cwd=work, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert RESOLVED in (work / PATH).read_text()
    report = json.loads((tmp_path / "a/wp-review/build-report.json").read_text())
    v640 = next(v for v in report["variants"] if v["version"] == "6.4.0")
    assert v640["method"] == "resolved" and v640["status"] == "ok"
    assert v640["merged"] == {PATH: "3-way merge, 1 conflict(s) resolved in review"}
    same = next(c for c in report["validation"] if c["variant"] == "variants/6.4.0.diff"
                and c["check"] == "same-changes")  # fmt: skip
    assert same["ok"] and "a person resolved a conflict" in same["detail"]
    # recorded in the rules file by version and conflict id, with the conflict's digest
    data = yaml.safe_load(rules.read_text())
    (res,) = data["resolutions"]
    assert res["resolve"]["version"] == "6.4.0"
    assert res["resolve"]["hunk"] == f"{PATH}@conflict1"
    assert len(res["resolve"]["conflict"]) == 64 and res["result"] == RESOLVED
    assert data["rules"]  # the rules are still there
    shown = CliRunner().invoke(cli, ["show", str(tmp_path / "a" / "wp-review")]).output
    assert "variant variants/6.4.0.diff: versions 6.4.0, 2 files, resolved" in shown
    assert f"backport 6.4.0: {PATH} ported by 3-way merge, 1 conflict(s) resolved" in shown
    # a rebuild without review reproduces the variant byte for byte
    code, output = _build(releases, rules, tmp_path / "b")
    assert code == 0, output
    assert (tmp_path / "b/wp-review/variants/6.4.0.diff").read_text() == variant


def test_resolution_in_the_editor(releases: dict[str, Path], tmp_path: Path) -> None:
    rules = _rules(tmp_path)
    # a stand-in for $EDITOR: keeps the release's side, fixed (a person's edit)
    editor = tmp_path / "editor.py"
    editor.write_text(
        "import sys\n"
        "p = sys.argv[1]\n"
        "text = open(p).read()\n"
        "assert text.startswith('<<<<<<< release 6.4.0\\n'), text\n"
        "assert '>>>>>>> the fix (patched OLD)' in text\n"
        f"open(p, 'w').write({RESOLVED!r})\n"
    )
    editor.chmod(editor.stat().st_mode | stat.S_IXUSR)
    env = {"EDITOR": f"{sys.executable} {editor}"}
    old_env = {k: os.environ.get(k) for k in ("EDITOR", "VISUAL")}
    os.environ.pop("VISUAL", None)
    os.environ.update(env)
    try:
        code, output = _build(releases, rules, tmp_path / "a", "--review", stdin="e\n")
    finally:
        for k, v in old_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    assert code == 0, output
    assert "+" + RESOLVED in (tmp_path / "a/wp-review/variants/6.4.0.diff").read_text()


def test_skipping_leaves_manual_work_and_a_marker_answer_is_refused(
    releases: dict[str, Path], tmp_path: Path
) -> None:
    rules = _rules(tmp_path)
    bad = tmp_path / "bad.txt"
    bad.write_text("<<<<<<< mine\nx\n=======\ny\n>>>>>>> theirs\n")
    code, output = _build(releases, rules, tmp_path / "a", "--review", stdin=f"f {bad}\ns\n")
    assert code == 0, output
    assert "still has conflict markers" in output
    assert "backport 6.4.0: needs manual work" in output
    assert "resolutions" not in (yaml.safe_load(rules.read_text()) or {})


def test_a_stale_resolution_is_not_used(releases: dict[str, Path], tmp_path: Path) -> None:
    rules = _rules(tmp_path)
    answer = tmp_path / "answer.txt"
    answer.write_text(RESOLVED)
    code, output = _build(releases, rules, tmp_path / "a", "--review", stdin=f"f {answer}\n")
    assert code == 0, output
    data = yaml.safe_load(rules.read_text())
    data["resolutions"][0]["resolve"]["conflict"] = "0" * 64  # made for another conflict
    rules.write_text(yaml.safe_dump(data, sort_keys=False))
    code, output = _build(releases, rules, tmp_path / "b")
    assert code == 0, output
    report = json.loads((tmp_path / "b/wp-review/build-report.json").read_text())
    v640 = next(v for v in report["variants"] if v["version"] == "6.4.0")
    assert v640["status"] == "manual"
    assert "no longer fits" in v640["manual"][0]["reason"]
