"""The dependency closure check (issue 12, item 4): a kept hunk must not use what only a
dropped hunk defines; the build refuses naming the symbol and both hunks."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from patchd.bundle import builder
from patchd.bundle.builder import BuildOptions, ClosureError, build_bundle
from patchd.bundle.closure import check_all
from patchd.bundle.validate import find_php, validate_patch
from patchd.cli.main import cli
from patchd.release.tree import diff_trees
from patchd_fixtures.closure import (
    ClosurePair,
    write_closure_pair,
    write_older_release,
    write_rules,
)

PHP = find_php(None)


@pytest.fixture(scope="module")
def pair(tmp_path_factory) -> ClosurePair:
    return write_closure_pair(tmp_path_factory.mktemp("closure"))


def _build(pair: ClosurePair, tmp: Path, roles: list[str], bundle_id: str = "closure"):
    rules = write_rules(tmp / f"{bundle_id}.yaml", pair, roles)
    args = ["build", str(pair.old), str(pair.new), "--rules", str(rules)]
    args += ["--id", bundle_id, "--out", str(tmp / "out"), "--no-lint"]
    return CliRunner().invoke(cli, args), rules


def test_call_kept_definition_dropped_is_refused(pair, tmp_path) -> None:
    result, _ = _build(pair, tmp_path, ["call"])
    assert result.exit_code == 1, result.output
    call, definition = pair.hunks["call"], pair.hunks["definition"]
    assert (
        f"  method WP_Comment_Guard::isAllowedX(): used in kept hunk {call} (patched line 25), "
        f"defined in dropped hunk {definition} (NEW line 128)"
    ) in result.output
    assert f'- {{include: {{hunk: "{definition}"}}' in result.output
    assert "PHP fatal error" in result.output
    assert not (tmp_path / "out" / "closure").exists()


def test_the_suggested_rule_makes_the_build_pass(pair, tmp_path) -> None:
    result, rules = _build(pair, tmp_path, ["call"])
    suggested = [ln for ln in result.output.splitlines() if ln.startswith("  - {include:")]
    assert len(suggested) == 1
    text = rules.read_text()
    rules.write_text(text.replace("rules:\n", f"rules:\n{suggested[0]}\n", 1))
    args = ["build", str(pair.old), str(pair.new), "--rules", str(rules), "--no-lint"]
    again = CliRunner().invoke(cli, [*args, "--id", "fixed", "--out", str(tmp_path / "out")])
    assert again.exit_code == 0, again.output
    report = json.loads((tmp_path / "out" / "fixed" / "build-report.json").read_text())
    kept = {h["id"] for h in report["hunks"] if h["decision"] == "kept"}
    assert kept == {pair.hunks["call"], pair.hunks["definition"]}


def test_keeping_call_and_definition_builds_and_reports_the_check(pair, tmp_path) -> None:
    result, _ = _build(pair, tmp_path, ["call", "definition"])
    assert result.exit_code == 0, result.output
    bundle = tmp_path / "out" / "closure"
    closure = json.loads((bundle / "build-report.json").read_text())["closure"]
    assert closure["status"] == "ok" and closure["problems"] == []
    assert "wp-includes/class-wp-comment-guard.php" in closure["files"]
    left_out = {d["symbol"]: d["hunk"] for d in closure["dropped"]}
    assert "method WP_Comment_Guard::isAllowedX()" not in left_out
    assert left_out["method WP_Comment_Guard::moderators_of()"] == pair.hunks["unused-definition"]
    assert left_out["class WP\\Guard\\Nonce_Check"] == pair.hunks["new-class-file"]
    shown = CliRunner().invoke(cli, ["show", str(bundle)]).output
    assert "  closure: ok: no kept hunk uses a symbol that only dropped hunks define" in shown
    as_json = json.loads(CliRunner().invoke(cli, ["show", str(bundle), "--json"]).output)
    assert as_json["closure"]["status"] == "ok"


def test_a_new_class_file_that_a_kept_hunk_instantiates_is_refused(pair, tmp_path) -> None:
    result, _ = _build(pair, tmp_path, ["new-class-use"])
    assert result.exit_code == 1, result.output
    assert (
        f"  class WP\\Guard\\Nonce_Check: used in kept hunk {pair.hunks['new-class-use']} "
        f"(patched line 14), defined in dropped hunk {pair.hunks['new-class-file']} (NEW line 10)"
    ) in result.output
    # $check->verify() is the same dropped file: not listed twice
    assert "->verify()" not in result.output
    ok, _ = _build(pair, tmp_path, ["new-class-use", "new-class-file"], "with-file")
    assert ok.exit_code == 0, ok.output


def test_a_renamed_function_is_refused_and_the_rename_named(pair, tmp_path) -> None:
    result, _ = _build(pair, tmp_path, ["rename-call"])
    assert result.exit_code == 1, result.output
    assert (
        f"  function wp_comment_author_unfiltered(): used in kept hunk "
        f"{pair.hunks['rename-call']} (patched line 35), defined in dropped hunk "
        f"{pair.hunks['rename-definition']} (NEW line 11)"
    ) in result.output
    assert "the dropped hunk renames wp_comment_author_raw to wp_comment_author_unfiltered" in (
        result.output
    )


def test_symbols_old_already_defines_are_fine(pair, tmp_path) -> None:
    result, _ = _build(pair, tmp_path, ["existing-use"])
    assert result.exit_code == 0, result.output


def test_every_refusal_at_once_through_the_api(pair, tmp_path) -> None:
    rules = write_rules(tmp_path / "all.yaml", pair, ["call", "new-class-use", "rename-call"])
    opts = BuildOptions(pair.old, pair.new, out=tmp_path / "out", rules=rules, lint=False)
    with pytest.raises(ClosureError) as err:
        build_bundle(opts)
    assert err.value.exit_code == 1
    used = {p.used_in for p in err.value.result.problems}
    assert used == {pair.hunks["call"], pair.hunks["new-class-use"], pair.hunks["rename-call"]}


def test_without_php_and_with_no_lint_the_check_is_skipped_and_recorded(
    pair, tmp_path, monkeypatch
) -> None:
    monkeypatch.setattr(builder.shutil, "which", lambda *_a, **_k: None)
    rules = write_rules(tmp_path / "call.yaml", pair, ["call"])
    opts = BuildOptions(
        pair.old, pair.new, out=tmp_path / "out", rules=rules, lint=False, id="nophp"
    )
    result = build_bundle(opts)
    assert result.manifest.skipped_checks == ("php-lint", "closure")
    assert result.report.closure is not None and result.report.closure.status == "skipped"
    shown = CliRunner().invoke(cli, ["show", str(result.path)]).output
    assert "not checked: php-lint, closure" in shown
    assert "closure: not checked (built with --no-lint on a machine without PHP)" in shown
    args = ["build", str(pair.old), str(pair.new), "--rules", str(rules), "--no-lint"]
    cli_result = CliRunner().invoke(cli, [*args, "--id", "nophp2", "--out", str(tmp_path / "o")])
    assert cli_result.exit_code == 0, cli_result.output
    assert (
        "closure check skipped (built with --no-lint on a machine without PHP): kept hunks may "
        "use symbols only dropped hunks define; build on a machine with PHP before publishing"
    ) in cli_result.output


# --- the check on small hand-made pairs ---------------------------------------------


def _check(tmp: Path, old: dict[str, str], new: dict[str, str], keep: str):
    """check_closure with the hunks whose added lines match ``keep`` kept."""
    for side, files in (("old", old), ("new", new)):
        for path, text in files.items():
            (tmp / side / path).parent.mkdir(parents=True, exist_ok=True)
            (tmp / side / path).write_text(text)
    diff = diff_trees(tmp / "old", tmp / "new")
    patches, ids = [], {}
    for fc in diff.files:
        kept = [
            rh
            for rh in fc.hunks
            if any(ln.kind == "+" and re.search(keep, ln.data.decode()) for ln in rh.hunk.lines)
        ]
        if kept:
            patches.append(fc.to_file_patch(kept))
            ids[fc.path] = [rh.id for rh in kept]

    def reader(side: str):
        def read(path: str) -> bytes | None:
            p = tmp / side / path
            return p.read_bytes() if p.is_file() else None

        return read

    patched = validate_patch(patches, reader("old"), variant="t", php=None).patched
    return check_all(
        diff, patches, ids, patched, reader("old"), reader("new"), php=PHP, old_root=tmp / "old"
    )[0]


_PAD = "".join(f"    public function pad{n}() {{ return {n}; }}\n" for n in range(12))


def _cls(body_top: str, body_end: str, name: str = "Box") -> str:
    return f"<?php\nclass {name} {{\n{body_top}{_PAD}{body_end}}}\n"


def test_unknown_receiver_is_matched_by_name_and_says_so(tmp_path) -> None:
    old = {"a.php": _cls("", ""), "b.php": "<?php\nfunction use_box($b) {\n    return 1;\n}\n"}
    new = {
        "a.php": _cls("", "    public function sealed() { return true; }\n"),
        "b.php": "<?php\nfunction use_box($b) {\n    return $b->sealed();\n}\n",
    }
    result = _check(tmp_path, old, new, r"->sealed\(")
    assert [p.symbol for p in result.problems] == ["method ->sealed()"]
    assert "the object's class is unknown: matched by name against method Box::sealed()" in (
        result.problems[0].note
    )


def test_unknown_receiver_is_fine_when_a_checked_class_still_defines_the_name(tmp_path) -> None:
    other = "<?php\nclass Other {\n    public function sealed() { return 1; }\n}\n"
    old = {"a.php": _cls("", ""), "o.php": other + "// v1\n", "b.php": "<?php\n$x = 1;\n"}
    new = {
        "a.php": _cls("", "    public function sealed() { return true; }\n"),
        "o.php": other + "// v2\n",
        "b.php": "<?php\n$x = $b->sealed();\n",
    }
    result = _check(tmp_path, old, new, r"->sealed\(|// v2")
    assert result.status == "ok", result.problems


def test_class_constant_and_property_added_in_dropped_hunks(tmp_path) -> None:
    old = {"a.php": _cls("    public function run() {\n        return 0;\n    }\n", "")}
    new = {
        "a.php": _cls(
            "    public function run() {\n        return self::LIMIT + $this->count;\n    }\n",
            "    const LIMIT = 3;\n    private $count = 0;\n",
        )
    }
    result = _check(tmp_path, old, new, r"self::LIMIT")
    assert {p.symbol for p in result.problems} == {
        "class constant Box::LIMIT",
        "property Box::$count",
    }


def test_a_namespaced_unqualified_call_checks_the_namespace_function(tmp_path) -> None:
    old = {
        "f.php": "<?php\nnamespace App;\n\nfunction a() {}\n" + "\n" * 8 + "function z() {}\n",
        "c.php": "<?php\nnamespace App;\n\n$x = 1;\n",
    }
    new = {
        "f.php": "<?php\nnamespace App;\n\nfunction a() {}\nfunction helper() {}\n"
        + "\n" * 8
        + "function z() {}\n",
        "c.php": "<?php\nnamespace App;\n\n$x = helper();\n",
    }
    result = _check(tmp_path, old, new, r"= helper\(")
    assert [p.symbol for p in result.problems] == ["function App\\helper()"]


def test_a_variant_whose_release_lacks_a_helper_the_fix_calls_is_not_shipped(
    pair, tmp_path
) -> None:
    older = write_older_release(tmp_path)
    rules = write_rules(tmp_path / "helper.yaml", pair, ["helper-use", "existing-use"])
    args = ["build", str(pair.old), str(pair.new), "--rules", str(rules), "--no-lint"]
    args += ["--backport", str(older), "--id", "helper", "--out", str(tmp_path / "out")]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output  # the main patch is fine
    bundle = tmp_path / "out" / "helper"
    report = json.loads((bundle / "build-report.json").read_text())
    (variant,) = report["variants"]
    assert variant["version"] == "6.4.1" and variant["status"] == "manual"
    assert variant["file"] is None and not (bundle / "variants" / "6.4.1.diff").exists()
    (manual,) = variant["manual"]
    assert manual["hunk"] == pair.hunks["helper-use"]
    assert manual["reason"].startswith(
        "method WP_Comment_Guard::owner_id() used at line 81: release 6.4.1 does not define it"
    )
    assert report["closure"]["variants"] == ["6.4.1"]
    assert "6.4.1" in report["uncovered"]


def test_the_documented_refusal_is_the_real_one(pair, tmp_path) -> None:
    result, _ = _build(pair, tmp_path, ["call"])
    docs = (Path(__file__).resolve().parents[2] / "docs" / "security-team.md").read_text()
    lines = result.output.rstrip("\n").splitlines()
    assert len(lines) == 4
    for line in lines:
        assert f"\n{line}\n" in docs, line


def test_one_php_process_per_build_for_the_patch_and_every_variant(
    pair, tmp_path, monkeypatch
) -> None:
    import patchd.bundle.php_symbols as php_symbols

    calls = []
    real = php_symbols.subprocess.run

    def counting(cmd, *args, **kwargs):
        if any(str(c).endswith("php_symbols.php") for c in cmd):
            calls.append(cmd)
        return real(cmd, *args, **kwargs)

    monkeypatch.setattr(php_symbols.subprocess, "run", counting)
    older = write_older_release(tmp_path)
    rules = write_rules(tmp_path / "r.yaml", pair, ["call", "definition", "existing-use"])
    opts = BuildOptions(
        pair.old, pair.new, out=tmp_path / "out", rules=rules, backports=(older,), id="one"
    )
    result = build_bundle(opts)
    assert len(calls) == 1
    assert result.report.closure is not None and result.report.closure.variants == ("6.4.1",)


def test_unknown_receiver_is_fine_when_an_untouched_file_defines_the_name(tmp_path) -> None:
    lib = "<?php\nclass Lib {\n    public function sealed() { return 1; }\n}\n"
    old = {"a.php": _cls("", ""), "lib.php": lib, "b.php": "<?php\n$x = 1;\n"}
    new = {
        "a.php": _cls("", "    public function sealed() { return true; }\n"),
        "lib.php": lib,
        "b.php": "<?php\n$x = $b->sealed();\n",
    }
    result = _check(tmp_path, old, new, r"->sealed\(")
    assert result.status == "ok", result.problems


def test_a_method_the_parent_class_defines_is_inherited(tmp_path) -> None:
    base = "<?php\nclass Base {\n    public function check() { return 1; }\n}\n"
    child_old = (
        "<?php\nclass Child extends Base {\n    public function run() {\n"
        "        return 0;\n    }\n" + _PAD + "}\n"
    )
    child_new = (
        "<?php\nclass Child extends Base {\n    public function run() {\n"
        "        return $this->check();\n    }\n"
        + _PAD
        + "    public function check() { return 2; }\n}\n"
    )
    old = {"base.php": base + "// v1\n", "child.php": child_old}
    new = {"base.php": base + "// v2 function\n", "child.php": child_new}
    result = _check(tmp_path, old, new, r"this->check\(")
    assert result.status == "ok", result.problems
    # the parent was not read: still refused, and the message says why it may be fine
    result = _check(tmp_path / "2", {"child.php": child_old}, {"child.php": child_new}, r"this->")
    (problem,) = result.problems
    assert problem.symbol == "method Child::check()"
    assert problem.note == (
        "Child extends Base, which the check did not read: if Base defines it, keeping the "
        "hunk is harmless"
    )


def test_a_renamed_class_names_the_hunk_that_renames_it(tmp_path) -> None:
    box = "<?php\nclass NAME {\n" + _PAD + "    public function open() { return 1; }\n}\n"
    old = {"box.php": box.replace("NAME", "Old_Box"), "use.php": "<?php\n$x = 1;\n"}
    new = {
        "box.php": box.replace("NAME", "New_Box"),
        "use.php": "<?php\n$x = New_Box::open();\n",
    }
    result = _check(tmp_path, old, new, r"New_Box::open")
    (problem,) = result.problems  # the class, not its method again
    assert problem.symbol == "class New_Box"
    assert problem.defined_in.startswith("box.php@1-")
    assert problem.note == "the dropped hunk renames Old_Box to New_Box"
    # the method keeps its unchanged line, but is left out with the hunk that renames the class
    dropped = {d.symbol: d.hunk for d in result.dropped}
    assert dropped["method New_Box::open()"] == problem.defined_in


def test_a_split_that_leaves_the_definition_out_is_refused(tmp_path) -> None:
    from patchd_fixtures.closure import closure_trees
    from patchd_fixtures.releases import write_tree

    old_tree, new_tree = closure_trees()
    path = "wp-includes/class-wp-split-guard.php"
    body = (
        "<?php\nclass WP_Split_Guard {\n\tpublic function check( $c ) {\n"
        "\t\tif ( ! $c ) {\n\t\t\treturn false;\n\t\t}\n{call}"
        "\t\treturn true;\n\t}\n\n\tpublic function a() { return 1; }\n"
        "\tpublic function b() { return 2; }\n{definition}}\n"
    )
    old_tree[path] = body.replace("{call}", "").replace("{definition}", "").encode()
    new_tree[path] = (
        body.replace(
            "{call}", "\t\tif ( ! $this->isAllowedY( $c ) ) {\n\t\t\treturn false;\n\t\t}\n"
        )
        .replace("{definition}", "\tprivate function isAllowedY( $c ) { return true; }\n")
        .encode()
    )
    old = write_tree(old_tree, tmp_path / "old")
    new = write_tree(new_tree, tmp_path / "new")
    rules = tmp_path / "split.yaml"
    rules.write_text(
        "rules:\n"
        f'  - include: {{path: "{path}", line: "this->isAllowedY"}}\n'
        '    comment: "security: the call only"\n'
        '  - exclude: {path: "**"}\n    comment: "not part of the fix"\n'
    )
    args = ["build", str(old), str(new), "--rules", str(rules), "--no-lint"]
    result = CliRunner().invoke(cli, [*args, "--out", str(tmp_path / "out")])
    assert result.exit_code == 1, result.output
    (hunk,) = [ln for ln in result.output.splitlines() if ln.startswith("  method ")]
    assert hunk.startswith(f"  method WP_Split_Guard::isAllowedY(): used in kept hunk {path}@")
    assert f"defined in the dropped part of split hunk {path}@" in hunk


def test_the_report_round_trips_the_closure_section_and_reads_older_reports(pair, tmp_path) -> None:
    from patchd.bundle.report import BuildReport

    result, _ = _build(pair, tmp_path, ["call", "definition"])
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "out" / "closure" / "build-report.json").read_text())
    report = BuildReport.from_json(data)
    assert json.loads(report.dumps()) == data
    assert report.closure is not None and report.closure.dropped
    del data["closure"]
    older = BuildReport.from_json(data)
    assert older.closure is None and "closure" not in older.to_json()
