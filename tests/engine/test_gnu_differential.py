"""Differential test: patchd's engine against GNU patch 2.7.6 on random files and targets.

Each example makes 1-3 random files (lines from a small alphabet so context repeats;
LF, CRLF or mixed endings; sometimes no final newline; non-UTF-8 bytes), a random edit
of each, the unified diff of the edit, and a target per file: the original, the original
shifted by inserted/removed lines (offsets), the original with a line changed (failed
hunks), the original with other line endings, or the already patched file. GNU patch runs
``-p1 -F0 -f`` (and ``-F1``/``-F2`` in a smaller second test; ``-f``: never ask, never
assume a reversed patch, so "already applied" is a plain failure in both) as a dry run
and for real; every hunk verdict, reported line and offset, and the resulting bytes must
agree with :func:`apply_file`.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from patchd.engine.apply import applies, apply_file
from patchd.engine.parse import parse_diff
from patchd.engine.render import render_patch

from .gnu import GnuHunk, make_filepatch, run_patch

EXAMPLES = int(os.environ.get("PATCHD_DIFF_EXAMPLES", "600"))
ALPHABET = [b"a", b"b", b"c", b"{", b"}", b"", b"  x = 1;", b"\xff\xfe", b"caf\xc3\xa9", b"b\r"]
NAMES = ["f0", "dir/f1", "dir/sub/f2"]


@st.composite
def lines_of(draw: st.DrawFn, eol: bytes | None, min_size: int = 0, max_size: int = 5) -> list:
    words = draw(st.lists(st.sampled_from(ALPHABET), min_size=min_size, max_size=max_size))
    eols = st.sampled_from([b"\n", b"\r\n"])
    return [w + (eol if eol is not None else draw(eols)) for w in words]


def finish(lines: list[bytes], eol: bytes, final_newline: bool) -> bytes:
    """Join lines; only the last line may lack its EOL."""
    fixed = [ln if ln.endswith(b"\n") else ln + eol for ln in lines]
    if fixed and not final_newline:
        last = fixed[-1][: -len(b"\n")]
        if last.endswith(b"\r") and eol == b"\r\n":
            last = last[:-1]
        fixed[-1] = last
        if not last:
            fixed.pop()
    return b"".join(fixed)


@st.composite
def mutate(draw: st.DrawFn, lines: list[bytes], eol: bytes | None, max_ops: int) -> list[bytes]:
    """Insert, delete or replace a few runs of lines."""
    out = list(lines)
    for _ in range(draw(st.integers(0, max_ops))):
        op = draw(st.sampled_from(["insert", "delete", "replace"]))
        pos = draw(st.integers(0, len(out)))
        if op == "insert":
            out[pos:pos] = draw(lines_of(eol, 1, 4))
        elif op == "delete" and out:
            del out[pos : pos + draw(st.integers(1, 3))]
        elif op == "replace":
            out[pos : pos + draw(st.integers(1, 2))] = draw(lines_of(eol, 0, 3))
    return out


@st.composite
def file_case(draw: st.DrawFn) -> tuple[bytes, bytes, bytes, int]:
    """(original, new, target, context size) for one file."""
    eol_choice = draw(st.sampled_from([b"\n", b"\n", b"\r\n", None]))
    eol = eol_choice or b"\n"
    if draw(st.integers(0, 3)) == 0:
        # NOTE: a periodic file puts the same context at +k and -k from the guess, which is
        # where GNU's search order (forward first) decides.
        block = draw(lines_of(eol_choice, 1, 4))
        orig_lines = block * draw(st.integers(3, 12))
    else:
        orig_lines = draw(lines_of(eol_choice, 0, 24))
    orig = finish(orig_lines, eol, draw(st.integers(0, 4)) > 0)
    base = split_keep(orig)
    new_lines = draw(mutate(base, eol_choice, 4))
    new = finish(new_lines, eol, draw(st.integers(0, 4)) > 0)
    kind = draw(st.sampled_from(["orig", "shift", "shift", "top", "change", "eol", "patched"]))
    if kind == "orig":
        target = orig
    elif kind == "shift":
        target = finish(draw(mutate(base, eol_choice, 3)), eol, orig.endswith(b"\n") or not orig)
    elif kind == "top":
        target = b"".join(draw(lines_of(eol, 1, 3))) + orig
    elif kind == "change" and base:
        pos = draw(st.integers(0, len(base) - 1))
        changed = list(base)
        changed[pos] = b"changed" + (b"\n" if changed[pos].endswith(b"\n") else b"")
        target = b"".join(changed)
    elif kind == "eol":
        target = orig.replace(b"\r\n", b"\n") if b"\r\n" in orig else orig.replace(b"\n", b"\r\n")
    else:
        target = new
    context = draw(st.sampled_from([3, 3, 3, 2, 1, 0]))
    return orig, new, target, context


def split_keep(data: bytes) -> list[bytes]:
    parts = data.split(b"\n")
    return [p + b"\n" for p in parts[:-1]] + ([parts[-1]] if parts[-1] else [])


def engine_hunks(outcome) -> list[GnuHunk]:  # type: ignore[no-untyped-def]
    """The engine's outcome in GNU's terms (already applied is a failure going forward)."""
    return [
        GnuHunk(
            h.index,
            h.status.applied,
            h.line,
            h.offset if h.status.applied else 0,
            h.fuzz,
        )
        for h in outcome.hunks
    ]


SETTINGS: dict = dict(
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.mark.slow
@settings(max_examples=EXAMPLES, **SETTINGS)
@given(st.lists(file_case(), min_size=1, max_size=3))
def test_engine_agrees_with_gnu_patch(cases: list[tuple[bytes, bytes, bytes, int]]) -> None:
    """fuzz 0: the contract (every verdict, line, offset and byte must agree)."""
    check_against_gnu(cases, fuzz=0)


@pytest.mark.slow
@settings(max_examples=max(EXAMPLES // 4, 50), **SETTINGS)
@given(st.lists(file_case(), min_size=1, max_size=3), st.sampled_from([1, 2]))
def test_engine_agrees_with_gnu_patch_with_fuzz(
    cases: list[tuple[bytes, bytes, bytes, int]], fuzz: int
) -> None:
    """fuzz 1 and 2: GNU's rule of ignoring outer context lines."""
    check_against_gnu(cases, fuzz=fuzz)


def check_against_gnu(cases: list[tuple[bytes, bytes, bytes, int]], fuzz: int) -> None:
    """Build the diff, run GNU patch (dry run and real) and the engine; compare."""
    patches = []
    targets: dict[str, bytes] = {}
    for name, (orig, new, target, context) in zip(NAMES, cases, strict=False):
        fp = make_filepatch(name, orig, new, context=context)
        if fp is not None:
            patches.append(fp)
            targets[name] = target
    if not patches:
        return
    diff = render_patch(patches)
    parsed = parse_diff(diff)
    assert [p.without_positions() for p in parsed] == patches

    with tempfile.TemporaryDirectory(prefix="patchd-diff-") as tmp:
        tree = Path(tmp, "tree")
        for name, data in targets.items():
            (tree / name).parent.mkdir(parents=True, exist_ok=True)
            (tree / name).write_bytes(data)
        diff_path = Path(tmp, "p.diff")
        diff_path.write_bytes(diff)
        dry = run_patch(tree, diff_path, dry_run=True, fuzz=fuzz)
        real = run_patch(tree, diff_path, dry_run=False, fuzz=fuzz)
        assert dry.hunks == real.hunks, (dry.stdout, real.stdout)
        assert real.returncode in (0, 1), real.stdout

        all_ok = True
        for fp in parsed:
            outcome = apply_file(fp, targets[fp.path], fuzz=fuzz)
            for h in outcome.hunks:
                event(f"hunk {h.status.name}")
            ours = engine_hunks(outcome)
            theirs = real.hunks.get(fp.path)
            context = (diff, targets[fp.path], real.stdout, outcome)
            assert ours == theirs, context
            if outcome.ok:
                assert (tree / fp.path).read_bytes() == outcome.content, context
            if fuzz == 0:
                # the patcher's short-cut verdicts agree with the full apply, both ways
                target = targets[fp.path]
                assert applies(fp, target) == outcome.ok, context
                back = apply_file(fp, target, reverse=True).ok
                assert applies(fp, target, reverse=True) == back, context
            all_ok = all_ok and outcome.ok
        assert (real.returncode == 0) == all_ok, real.stdout
