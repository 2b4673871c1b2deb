"""safe_relpath: stripping like ``patch -pN`` and refusing names that leave the root."""

from __future__ import annotations

import pytest

from patchd.engine.paths import safe_relpath
from patchd.errors import UnsafePathError


@pytest.mark.parametrize(
    ("name", "strip", "expected"),
    [
        ("a/wp-includes/x.php", 1, "wp-includes/x.php"),
        (b"b/index.php", 1, "index.php"),
        ("index.php", 0, "index.php"),
        ("a//b///c", 1, "b/c"),
        ("./x/y", 1, "x/y"),
        ("a/./x", 1, "x"),
        ("one/two/three", 2, "three"),
    ],
)
def test_strips_components(name: str | bytes, strip: int, expected: str) -> None:
    assert safe_relpath(name, strip=strip) == expected


def test_non_utf8_bytes_survive_with_surrogateescape() -> None:
    path = safe_relpath(b"a/caf\xe9.php")
    assert path == "caf\udce9.php"
    assert path.encode("utf-8", "surrogateescape") == b"caf\xe9.php"


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("", "empty"),
        ("/etc/passwd", "absolute"),
        (b"/etc/passwd", "absolute"),
        ("a/../../x", "'..'"),
        ("../x/y", "'..'"),
        ("a/x/..", "'..'"),
        ("a/x\0y", "NUL"),
        ("x", "too few"),
        ("a/", "too few"),
        ("a/.", "names no file"),
    ],
)
def test_refuses_unsafe_names(name: str | bytes, words: str) -> None:
    with pytest.raises(UnsafePathError) as info:
        safe_relpath(name)
    assert words in info.value.message
    if name:
        assert "path" in (info.value.where or "")


def test_error_names_the_path() -> None:
    with pytest.raises(UnsafePathError) as info:
        safe_relpath("a/../../etc/shadow")
    assert "a/../../etc/shadow" in str(info.value)
