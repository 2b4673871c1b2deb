"""Hostile diffs through ``patchd apply`` and in a bundle loaded by ``patchd rollout``.

Every refused diff exits 2 with an error naming the diff line; nothing is written in the
target folder or beside it and no command runs (ed-style ``!cmd`` was GNU patch's
CVE-2018-1000156). Diffs that are odd but valid (``!`` text, NUL bytes in content, CRLF,
no final newline) apply exactly. Context that only matches elsewhere applies at an offset,
like GNU patch, and the report shows the line and offset. A 200k-line hunk is parsed and
applied in bounded time.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from patchd.cli.main import cli
from tests.adversarial.trees import Site, tree_state
from tests.e2e import kit

PWNED = Path(f"/tmp/patchd-adv-pwned-{uuid.uuid4().hex}")

#: case -> (diff, diff line named in the error, words of the error)
REFUSED: dict[str, tuple[bytes, int, str]] = {
    "dotdot-new-name": (b"--- a/x.php\n+++ ../../x.php\n@@ -1 +1 @@\n-a\n+b\n", 2, "'..'"),
    "dotdot-both": (b"--- a/../../x\n+++ b/../../x\n@@ -0,0 +1 @@\n+pwned\n", 1, "'..'"),
    "absolute": (b"--- /etc/x\n+++ /etc/x\n@@ -1 +1 @@\n-a\n+b\n", 1, "absolute"),
    "symlink-then-beneath": (
        b"diff --git a/lnk b/lnk\nnew file mode 120000\n--- /dev/null\n+++ b/lnk\n"
        b"@@ -0,0 +1 @@\n+/etc\n\\ No newline at end of file\n"
        b"diff --git a/lnk/passwd b/lnk/passwd\n--- a/lnk/passwd\n+++ b/lnk/passwd\n"
        b"@@ -1 +1 @@\n-root\n+pwned\n",
        2,
        "symbolic links",
    ),
    "ed-style": (b"1c\nhello\n.\nw\n", 1, "ed-style"),
    "ed-bang": (b"1c\n.\n!touch " + bytes(PWNED) + b"\nw\n", 1, "ed-style"),
    "git-binary": (
        b"diff --git a/x.png b/x.png\nindex 1..2 100644\nGIT binary patch\nliteral 5\n"
        b"McmZ?wbhEHb0\n\nliteral 0\nHcmV?d00001\n\n",
        3,
        "binary",
    ),
    "binary-differ": (b"Binary files a/x.png and b/x.png differ\n", 1, "binary"),
    "mode-change": (
        b"diff --git a/x.php b/x.php\nold mode 100644\nnew mode 104755\n--- a/x.php\n"
        b"+++ b/x.php\n@@ -1 +1 @@\n-a\n+b\n",
        2,
        "mode",
    ),
    "rename-out": (
        b"diff --git a/x.php b/../../y\nsimilarity index 100%\nrename from x.php\n"
        b"rename to ../../y\n",
        3,
        "renamed",
    ),
    "counts-too-big": (b"--- a/x.php\n+++ b/x.php\n@@ -1,5 +1,2 @@\n-a\n+b\n", 3, "truncated"),
    "counts-too-small": (
        b"--- a/x.php\n+++ b/x.php\n@@ -1 +1 @@\n-a\n-c\n+b\n",
        5,
        "more old lines",
    ),
    "nul-in-name": (b"--- a/x\x00.php\n+++ b/x\x00.php\n@@ -1 +1 @@\n-a\n+b\n", 1, "NUL"),
}


def _apply(diff: Path, folder: Path, *extra: str) -> tuple[int, str]:
    res = CliRunner().invoke(cli, ["apply", str(diff), str(folder), *extra])
    assert res.exception is None or isinstance(res.exception, SystemExit), res.output
    return res.exit_code, res.output


@pytest.fixture
def area(tmp_path: Path) -> Path:
    target = tmp_path / "site"
    target.mkdir()
    (target / "x.php").write_bytes(b"a\n")
    (target / "lnk").mkdir()
    (target / "lnk" / "passwd").write_bytes(b"root\n")
    (tmp_path / "x.php").write_bytes(b"a\n")  # what '../x.php' would hit
    return tmp_path


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_apply_refuses_hostile_diff(case: str, area: Path) -> None:
    diff, line, words = REFUSED[case]
    path = area / "evil.diff"
    path.write_bytes(diff)
    before = tree_state(area)
    code, out = _apply(path, area / "site")
    assert code == 2, out
    assert f"line {line}" in out and words in out, out
    assert tree_state(area) == before
    assert not PWNED.exists()


#: case -> (file before, diff, file after): odd but valid, applied byte-exactly
EXACT: dict[str, tuple[bytes, bytes, bytes]] = {
    "bang-text": (b"a\n", b"--- a/x.php\n+++ b/x.php\n@@ -1 +1 @@\n-a\n+!id\n", b"!id\n"),
    "nul-content": (
        b"a\x00\n",
        b"--- a/x.php\n+++ b/x.php\n@@ -1 +1 @@\n-a\x00\n+b\x00\n",
        b"b\x00\n",
    ),
    "crlf": (
        b"a\r\nb\r\n",
        b"--- a/x.php\r\n+++ b/x.php\r\n@@ -1,2 +1,2 @@\r\n a\r\n-b\r\n+c\r\n",
        b"a\r\nc\r\n",
    ),
    "no-final-newline": (
        b"a\nb",
        b"--- a/x.php\n+++ b/x.php\n@@ -1,2 +1,2 @@\n a\n-b\n\\ No newline at end of file\n+c\n",
        b"a\nc\n",
    ),
}


@pytest.mark.parametrize("case", sorted(EXACT))
def test_odd_but_valid_diffs_apply_exactly(case: str, tmp_path: Path) -> None:
    old, diff, new = EXACT[case]
    site = tmp_path / "site"
    site.mkdir()
    (site / "x.php").write_bytes(old)
    (tmp_path / "d.diff").write_bytes(diff)
    code, out = _apply(tmp_path / "d.diff", site)
    assert code == 0, out
    assert (site / "x.php").read_bytes() == new
    assert not PWNED.exists() and sorted(p.name for p in site.iterdir()) == ["x.php"]


def test_context_only_at_a_wrong_place_is_reported_with_its_offset(tmp_path: Path) -> None:
    """The hunk says line 3; its context exists only at line 43. Like GNU patch (the oracle),
    it applies there, and the report names the line and the offset."""
    lines = [f"filler {n};\n".encode() for n in range(60)]
    lines[42:45] = [b"check();\n", b"echo $x;\n", b"done();\n"]
    old = b"".join(lines)
    diff = (
        b"--- a/x.php\n+++ b/x.php\n@@ -2,3 +2,3 @@\n"
        b" check();\n-echo $x;\n+echo esc($x);\n done();\n"
    )
    gnu = tmp_path / "gnu"
    for folder in (tmp_path / "site", gnu):
        folder.mkdir()
        (folder / "x.php").write_bytes(old)
    (tmp_path / "d.diff").write_bytes(diff)
    code, out = _apply(tmp_path / "d.diff", tmp_path / "site", "--json")
    assert code == 0, out
    hunk = json.loads(out)["files"][0]["hunks"][0]
    assert (hunk["status"], hunk["line"], hunk["offset"]) == ("offset", 43, 41)
    subprocess.run(
        ["patch", "-s", "-p1", "-F0", "-i", str(tmp_path / "d.diff")], cwd=gnu, check=True
    )
    assert (tmp_path / "site" / "x.php").read_bytes() == (gnu / "x.php").read_bytes()


def test_huge_hunk_is_bounded(tmp_path: Path) -> None:
    """A 200,000-line hunk (replace every line of a 100k-line file) parses and applies in
    seconds, not minutes (measured: about 1 s on the CI machine)."""
    n = 100_000
    old = b"".join(b"line %d\n" % i for i in range(n))
    body = b"".join(b"-line %d\n" % i for i in range(n)) + b"".join(
        b"+LINE %d\n" % i for i in range(n)
    )
    diff = b"--- a/x.php\n+++ b/x.php\n@@ -1,%d +1,%d @@\n" % (n, n) + body
    site = tmp_path / "site"
    site.mkdir()
    (site / "x.php").write_bytes(old)
    (tmp_path / "d.diff").write_bytes(diff)
    started = time.monotonic()
    code, out = _apply(tmp_path / "d.diff", site)
    took = time.monotonic() - started
    assert code == 0, out[-500:]
    assert (site / "x.php").read_bytes() == old.replace(b"line", b"LINE")
    assert took < 20, took
    # A huge hunk whose counts lie is refused naming its header line, as fast.
    (tmp_path / "bad.diff").write_bytes(diff.replace(b"+1,%d" % n, b"+1,%d" % (n + 1), 1))
    started = time.monotonic()
    code, out = _apply(tmp_path / "bad.diff", site)
    assert code == 2 and "line 3" in out, out[-500:]
    assert time.monotonic() - started < 20


@pytest.mark.parametrize("case", ["dotdot-new-name", "absolute", "symlink-then-beneath", "ed-bang"])
def test_rollout_refuses_bundle_with_hostile_diff(
    case: str, make_site: Callable[..., Site]
) -> None:
    """A bundle whose diff is hostile (its digest matches: the attacker built it) is refused
    by ``patchd rollout`` before anything is written: exit 2 naming the diff line."""
    diff, _line, words = REFUSED[case]
    site = make_site("local")
    shutil.rmtree(site.bundle)
    kit.build_bundle(site.bundle, transform=lambda d: d + diff)
    site.add("victim", docroots=["html"])
    site.finish()
    before = site.state()
    res = kit.patchd(site.ledger, *site.rollout_args())
    assert res.code == 2, res.out + res.err
    assert "patch.diff" in res.err and "line" in res.err and words in res.err, res.err
    assert site.state() == before and list(site.backups.iterdir()) == []
    assert not PWNED.exists()
