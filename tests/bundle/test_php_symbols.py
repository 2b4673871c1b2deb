"""The PHP symbol reader: PHP's tokenizer in one process, names resolved like PHP does."""

from __future__ import annotations

import pytest

from patchd.bundle.php_symbols import FileSymbols, read_symbols, symbol_key
from patchd.bundle.validate import find_php

PHP = find_php(None)

SOURCE = b"""<?php
namespace App\\Http;

use Foo\\Bar;
use Foo\\{Baz as Qux, function helper, const LIMIT};
use function Other\\fn2 as f2;

const TOP = 1;
define('GLOBAL_X', 2);

#[Attr]
final class Controller extends Base implements \\Countable
{
    use SomeTrait;
    public const A = 1, B = self::A;
    private static ?Bar $cache = null;
    protected $plain;

    public function __construct(private readonly Qux $qux, int $n = LIMIT) {}

    public function &run(Bar|Qux $x, string ...$rest): ?Result
    {
        // $this->commentedCall() and new InComment() must not count
        /* Hidden::STATIC_IN_COMMENT */
        $t = 'new InString() $this->inString() hidden_fn()';
        $h = <<<EOT
        heredoc_fn() and $plainvar
        EOT;
        if ($this->isAllowedX($x)) {
            static::sm(); self::CONST_X; parent::pm(); $x->unknown(); $x?->nullsafe();
            $o = new \\Full\\Name(); $q = new Bar\\Sub();
            helper(); f2(); strlen('x'); \\strlen('y'); TOP; \\PHP_EOL;
            $this->prop = $obj->other;
            try {} catch (\\RuntimeException | Bar $e) {}
            return $x instanceof Qux ? true : null;
        }
    }

    private function isAllowedX($x): bool { return true; }
}

function top_fn() {}
enum Suit: string { case Hearts = 'H'; }
"""


@pytest.fixture(scope="module")
def symbols() -> FileSymbols:
    return read_symbols({"a.php": SOURCE}, php=PHP)["a.php"]


def _refs(fs: FileSymbols, kind: str) -> set[str]:
    return {r.name for r in fs.refs if r.kind == kind}


def test_definitions_with_namespace_class_and_lines(symbols) -> None:
    assert symbols.error is None
    defs = {(d.kind, d.name): d.line for d in symbols.defs}
    assert defs == {
        ("const", "App\\Http\\TOP"): 8,
        ("const", "GLOBAL_X"): 9,
        ("class", "App\\Http\\Controller"): 12,
        ("classconst", "App\\Http\\Controller::A"): 15,
        ("classconst", "App\\Http\\Controller::B"): 15,
        ("property", "App\\Http\\Controller::$cache"): 16,
        ("property", "App\\Http\\Controller::$plain"): 17,
        ("method", "App\\Http\\Controller::__construct"): 19,
        ("property", "App\\Http\\Controller::$qux"): 19,
        ("method", "App\\Http\\Controller::run"): 21,
        ("method", "App\\Http\\Controller::isAllowedX"): 39,
        ("function", "App\\Http\\top_fn"): 42,
        ("class", "App\\Http\\Suit"): 43,
        ("classconst", "App\\Http\\Suit::Hearts"): 43,
    }


def test_use_aliases_and_namespaces_resolve_class_names(symbols) -> None:
    classes = _refs(symbols, "class")
    assert {"Foo\\Bar", "Foo\\Baz", "Full\\Name", "Foo\\Bar\\Sub", "RuntimeException"} <= classes
    assert {"App\\Http\\Base", "Countable", "App\\Http\\SomeTrait", "App\\Http\\Result"} <= classes
    assert "App\\Http\\Attr" in classes
    assert not any(c.lower() in ("int", "string", "bool", "self") for c in classes)


def test_methods_resolve_to_the_enclosing_class_or_unknown(symbols) -> None:
    methods = _refs(symbols, "method")
    assert "App\\Http\\Controller::isAllowedX" in methods
    assert "App\\Http\\Controller::sm" in methods
    assert "App\\Http\\Base::pm" in methods
    assert {"*::unknown", "*::nullsafe"} <= methods
    line = next(r.line for r in symbols.refs if r.name.endswith("::isAllowedX"))
    assert line == 29


def test_functions_constants_properties(symbols) -> None:
    functions = {(r.name, r.alt) for r in symbols.refs if r.kind == "function"}
    assert ("Foo\\helper", None) in functions
    assert ("Other\\fn2", None) in functions
    assert ("App\\Http\\strlen", "strlen") in functions
    assert ("strlen", None) in functions
    consts = {(r.name, r.alt) for r in symbols.refs if r.kind == "const"}
    assert ("Foo\\LIMIT", None) in consts and ("App\\Http\\TOP", "TOP") in consts
    assert ("PHP_EOL", None) in consts
    assert "App\\Http\\Controller::CONST_X" in _refs(symbols, "classconst")
    props = _refs(symbols, "property")
    assert {"App\\Http\\Controller::$prop", "*::$other"} <= props


def test_strings_and_comments_never_count(symbols) -> None:
    every = " ".join(r.name for r in symbols.refs)
    for hidden in (
        "commentedCall",
        "InComment",
        "Hidden",
        "STATIC_IN_COMMENT",
        "InString",
        "inString",
        "hidden_fn",
        "heredoc_fn",
    ):
        assert hidden not in every, hidden


def test_one_process_many_files_equal_contents_once_and_broken_code() -> None:
    files = {
        "x.php": b"<?php function x() { y(); }",
        "copy.php": b"<?php function x() { y(); }",
        "broken.php": b"<?php function ( {{{ class",
        "global.php": b"<?php class G { function m() { return $this->n(); } }",
    }
    got = read_symbols(files, php=PHP)
    assert set(got) == set(files)
    assert got["x.php"] == got["copy.php"]
    assert [d.name for d in got["x.php"].defs] == ["x"]
    assert [r.name for r in got["global.php"].refs] == ["G::n"]
    assert got["broken.php"].error is None  # the tokenizer does not parse: no error


def test_symbol_keys_follow_php_case_rules() -> None:
    assert symbol_key("class", "Foo\\Bar") == symbol_key("class", "foo\\BAR")
    assert symbol_key("method", "A::isAllowedX") == symbol_key("method", "a::ISALLOWEDX")
    assert symbol_key("const", "Ns\\LIMIT") == symbol_key("const", "NS\\LIMIT")
    assert symbol_key("const", "LIMIT") != symbol_key("const", "limit")
    assert symbol_key("property", "A::$x") != symbol_key("property", "A::$X")


def test_definitions_only_where_references_are_not_wanted() -> None:
    files = {"a.php": b"<?php function a() { b(); }", "c.php": b"<?php function c() { d(); }"}
    got = read_symbols(files, php=PHP, refs=["a.php"])
    assert [r.name for r in got["a.php"].refs] == ["b"]
    assert got["c.php"].refs == () and [d.name for d in got["c.php"].defs] == ["c"]


def test_the_php7_token_get_all_path_reads_the_same() -> None:
    import base64
    import json
    import subprocess

    from patchd.bundle.php_symbols import script_source

    payload = json.dumps({"files": {"a": base64.b64encode(SOURCE).decode()}, "refs": ["a"]})
    outs = []
    for legacy in ("0", "1"):
        proc = subprocess.run(
            [PHP, "-n", "-d", "extension=tokenizer", "-r", "?>" + script_source()],
            input=payload.encode(),
            capture_output=True,
            env={"PATCHD_PHP_SYMBOLS_LEGACY": legacy},
            check=True,
        )
        outs.append(json.loads(proc.stdout))
    assert outs[0] == outs[1]
    assert outs[0]["a"]["error"] is None and outs[0]["a"]["defs"]
