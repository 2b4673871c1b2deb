"""The static minimum-PHP analysis: features, strings/comments, findings with places."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from patchd.engine.parse import parse_diff
from patchd.matrix.minphp import min_php, scan_line, scan_patches, too_new_for

NEEDS = {
    "$x = $user?->name;": "8.0",
    "return match ($x) { 1 => 'a', default => 'b' };": "8.0",
    "htmlspecialchars($s, double_encode: false);": "8.0",
    "function f(int|string $x) {}": "8.0",
    "function f(): mixed { return 1; }": "8.0",
    "$x = $y ?? throw new Exception();": "8.0",
    "#[Deprecated]": "8.0",
    "public function __construct(private int $x) {}": "8.0",
    "enum Suit: string {": "8.1",
    "public readonly int $x;": "8.1",
    "function f(): never { exit; }": "8.1",
    "$f = strlen(...);": "8.1",
    "function f($a = new Foo()) {}": "8.1",
    "readonly class Point {": "8.2",
    "const string FOO = 'x';": "8.3",
    "$f = fn($x) => $x * 2;": "7.4",
    "private ?int $count = 0;": "7.4",
    "$a ??= 1;": "7.4",
    "$a = [...$b, 1];": "7.4",
    "$n = 1_000_000;": "7.4",
    "function f(?int $x): void {}": "7.1",
    "$x = $a ?? 'b';": "7.0",
}

PLAIN = [
    "$this->match($x);",
    "foo($a ? b : c);",
    "f(...$args);",
    "const FOO = 'x';",
    "public $count = 0;",
    "// $a?->b and enum Foo {",
    "$s = 'a?->b ?? c';",
    "$x = isset($a) ? $a : 'b';",
    "if ( ! empty( $comment->comment_author ) ) {",
    "case 'x':",
    "throw new Exception('x');",
    "return $a ?: 'x';",
    "$x = array('a' => 1);",
    " * @param int|string $x the value",
    "$a = $b & $c;",
]


@pytest.mark.parametrize(("line", "php"), sorted(NEEDS.items()))
def test_feature_needs_version(line: str, php: str) -> None:
    found = scan_line(line)
    assert found is not None and found.php == php


@pytest.mark.parametrize("line", PLAIN)
def test_plain_php5_lines_need_nothing(line: str) -> None:
    assert scan_line(line) is None


MODERN = """<?php
enum Status: string { case Open = 'open'; }
final class Box {
    public function __construct(public readonly int $size, private ?Box $inner = null) {}
    public function inner(): ?int { return $this->inner?->size; }
    public function label(int|string $x): string {
        return match (true) { is_int($x) => 'n', default => 's' };
    }
    public function stop(): never { throw new \\RuntimeException('x'); }
}
$len = strlen(...);
$double = fn(int $x): int => $x * 2;
$a = [...[1, 2], 3];
$opts ??= [];
echo htmlspecialchars('x', double_encode: false);
"""


def test_modern_sample_lints_with_real_php_and_needs_8_1(tmp_path: Path) -> None:
    """The sample is valid PHP for the installed binary, and every modern line is found."""
    src = tmp_path / "modern.php"
    src.write_text(MODERN)
    proc = subprocess.run(["php", "-n", "-l", str(src)], capture_output=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = MODERN.splitlines()[1:]
    found = {line.strip(): scan_line(line) for line in lines}
    missed = [
        line for line, f in found.items() if f is None and line not in ("}", "final class Box {")
    ]
    assert missed == []
    assert max(f.php for f in found.values() if f is not None) == "8.1"


DIFF = b"""--- a/x.php
+++ b/x.php
@@ -1,3 +1,5 @@
 <?php
-$a = $b;
+$a = $b ?? null;
+enum Status { case Open; }
 echo $a;
+$f = fn() => 1;
"""


def test_scan_patches_reports_file_line_and_newest() -> None:
    patches = parse_diff(DIFF)
    findings = scan_patches(patches)
    assert [(f.php, f.line) for f in findings] == [("7.0", 2), ("8.1", 3), ("7.4", 5)]
    assert min_php(patches) == "8.1"
    worst = too_new_for(findings, "7.4.33")
    assert worst is not None and worst.describe() == "enum (PHP 8.1) at x.php:3"
    assert too_new_for(findings, "8.1") is None


def test_removed_lines_do_not_count() -> None:
    diff = b"--- a/x.php\n+++ b/x.php\n@@ -1,2 +1,2 @@\n <?php\n-enum A {}\n+$a = 1;\n"
    assert min_php(parse_diff(diff)) is None
