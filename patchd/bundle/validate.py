"""Validation of a patch before it is written into a bundle.

:func:`validate_patch` runs these checks on one diff (``patch.diff`` or a variant) and
returns one :class:`~patchd.bundle.report.CheckEntry` per check and file:

- ``renders``: the rendered diff parses back to exactly the same file patches;
- ``applies-exactly``: every hunk applies to the release it was made for at its stated
  position: no offset, no fuzz (:func:`patchd.engine.apply.apply_file`, GNU-compatible);
- ``matches-new`` (when the fixed release is given): in every region a hunk changes, the
  patched file equals the fixed release's file; the other differences between the patched
  file and the fixed release (the dropped changes) lie elsewhere;
- ``reverse-applies-on-new`` (same): the patch reverse-applies on the fixed release, so
  an up-to-date installation is recognised as already patched. Where only the context
  differs (a kept change next to a dropped one, ``matches-new`` holds) the check passes and
  says so: such an installation fails its dry run rather than counting as patched;
- ``php-lint``: every patched PHP file passes ``php -l`` (on a scratch copy: release files
  are never executed, ``-l`` only parses).

NOTE: all checks run on every file even after a failure, so one report names every
problem at once.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from patchd.bundle.report import CheckEntry
from patchd.engine.apply import HunkStatus, apply_file
from patchd.engine.model import FilePatch, Hunk
from patchd.engine.parse import parse_diff
from patchd.engine.render import render_patch
from patchd.errors import PatchdError
from patchd.release.linediff import diff_lines, split_lines

#: Reads a release file by relative path; None when the file does not exist.
ReadFile = Callable[[str], bytes | None]

PHP_SUFFIXES = (".php", ".phtml", ".inc")
LINT_TIMEOUT = 30


class ValidationError(PatchdError):
    """A patch failed validation; ``checks`` holds every check (failed ones have ok=False)."""

    def __init__(self, message: str, checks: Sequence[CheckEntry], *, where: str | None = None):
        failed = [c for c in checks if not c.ok]
        lines = "".join(f"\n  {c.variant}: {c.check}: {c.detail}" for c in failed[:20])
        more = f"\n  ... and {len(failed) - 20} more" if len(failed) > 20 else ""
        super().__init__(message + lines + more, where=where)
        self.checks = tuple(checks)


@dataclass(frozen=True)
class Validated:
    """The checks of one diff and the patched file contents (None: the patch deletes it)."""

    checks: tuple[CheckEntry, ...]
    patched: dict[str, bytes | None]

    @property
    def ok(self) -> bool:
        """True when every check passed."""
        return all(c.ok for c in self.checks)


def find_php(php: str | None) -> str:
    """The PHP binary for ``php -l`` (``php`` on PATH by default); error when missing."""
    candidate = php or "php"
    found = shutil.which(candidate)
    if found is None:
        raise PatchdError(
            f"PHP binary {candidate!r} not found: validation lints patched PHP files with "
            "'php -l' (install php-cli or pass --php PATH)"
        )
    return found


def validate_patch(
    patches: Sequence[FilePatch],
    read_old: ReadFile,
    *,
    variant: str,
    php: str | None,
    read_new: ReadFile | None = None,
) -> Validated:
    """Run every check on ``patches`` against the release ``read_old`` reads (see module).

    ``php`` None skips ``php -l`` (``patchd build --no-lint``; the manifest records it).
    """
    checks: list[CheckEntry] = []
    patched: dict[str, bytes | None] = {}

    def add(check: str, ok: bool, detail: str) -> None:
        checks.append(CheckEntry(variant, check, ok, detail))

    rendered = render_patch(patches)
    try:
        again = [fp.without_positions() for fp in parse_diff(rendered, source=variant)]
        same = again == [fp.without_positions() for fp in patches]
        add("renders", same, "" if same else "the rendered diff parses to different patches")
    except PatchdError as exc:
        add("renders", False, str(exc))

    for fp in patches:
        old = read_old(fp.path)
        outcome = apply_file(fp, old, fuzz=0)
        bad = [
            f"hunk {h.index}: {h.status.value}"
            + (f" (offset {h.offset})" if h.offset else "")
            + (f": {h.reason}" if h.reason else "")
            for h in outcome.hunks
            if h.status is not HunkStatus.APPLIED or h.offset
        ]
        if outcome.error:
            bad.insert(0, outcome.error)
        add("applies-exactly", not bad, f"{fp.path}: " + "; ".join(bad) if bad else fp.path)
        if bad:
            continue
        patched[fp.path] = None if outcome.deleted else outcome.content
        if read_new is not None:
            new = read_new(fp.path)
            problem = region_problem(fp, patched[fp.path], new)
            add("matches-new", problem is None, f"{fp.path}: {problem}" if problem else fp.path)
            back = apply_file(fp, new, reverse=True, fuzz=0)
            detail = fp.path if back.ok else f"{fp.path}: {back.reason}"
            if not back.ok and problem is None:
                # NOTE (issue 12): a kept change next to a dropped one (interleaved commits)
                # has OLD's version of the dropped lines as context. Its own lines match
                # NEW (matches-new), so this is no defect of the patch; it only means an
                # installation carrying NEW's file is not recognised as already patched:
                # its dry run fails (failure list), it is never patched twice.
                detail = (
                    f"{fp.path}: only context differs ({back.reason}); dropped changes lie "
                    "next to kept ones, so an installation with NEW's file fails its dry run "
                    "instead of counting as already patched"
                )
                add("reverse-applies-on-new", True, detail)
                continue
            add("reverse-applies-on-new", back.ok, detail)
    if php is not None:
        checks.extend(lint_php(patched, php=php, variant=variant))
    return Validated(tuple(checks), patched)


def region_problem(fp: FilePatch, patched: bytes | None, new: bytes | None) -> str | None:
    """Why the patched file differs from ``new`` where ``fp`` changed it (None: it does not)."""
    if patched is None or new is None:
        if patched is None and new is None:
            return None
        return "the fixed release " + ("still has the file" if patched is None else "lacks it")
    touched, points = _changed_positions(fp.hunks)
    rest_lines: set[int] = set()
    rest_points: set[int] = set()
    for h in diff_lines(split_lines(patched), split_lines(new), context=0):
        if h.old_len:
            rest_lines.update(range(h.old_start, h.old_start + h.old_len))
        else:
            rest_points.add(h.old_start + 1)
    clash = sorted((touched & rest_lines) | (points & rest_points))
    if clash:
        return f"differs from the fixed release at patched line {clash[0]}"
    return None


def _changed_positions(hunks: Sequence[Hunk]) -> tuple[set[int], set[int]]:
    """Lines the hunks added (1-based, in the patched file) and where they removed lines."""
    touched: set[int] = set()
    points: set[int] = set()
    for h in hunks:
        pos = h.new_start if h.new_len else h.new_start + 1
        for ln in h.lines:
            if ln.kind == "+":
                touched.add(pos)
                pos += 1
            elif ln.kind == "-":
                points.add(pos)
            else:
                pos += 1
    return touched, points


def is_php(path: str, content: bytes) -> bool:
    """A file ``php -l`` should parse: ``.php``/``.phtml``, or ``.inc`` holding ``<?php``."""
    lower = path.lower()
    if lower.endswith(".inc"):
        return b"<?php" in content[:4096]
    return lower.endswith(PHP_SUFFIXES)


def lint_php(patched: dict[str, bytes | None], *, php: str, variant: str) -> list[CheckEntry]:
    """``php -l`` every patched PHP file on a scratch copy; one check entry per file."""
    targets = {p: c for p, c in patched.items() if c is not None and is_php(p, c)}
    if not targets:
        return []
    out: list[CheckEntry] = []
    with tempfile.TemporaryDirectory(prefix="patchd-lint-") as scratch:
        for i, (path, content) in enumerate(sorted(targets.items())):
            # NOTE: a flat scratch name: the release path is not trusted as a file name.
            copy = Path(scratch) / f"{i}.php"
            copy.write_bytes(content)
            try:
                proc = subprocess.run(
                    [php, "-n", "-l", str(copy)],
                    capture_output=True,
                    timeout=LINT_TIMEOUT,
                    env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
                    check=False,
                )
                ok = proc.returncode == 0
                text = (proc.stdout + proc.stderr).decode("utf-8", "replace")
                detail = path if ok else f"{path}: {_lint_message(text, str(copy))}"
            except subprocess.TimeoutExpired:
                ok, detail = False, f"{path}: php -l timed out after {LINT_TIMEOUT}s"
            out.append(CheckEntry(variant, "php-lint", ok, detail))
    return out


def _lint_message(text: str, scratch_name: str) -> str:
    for line in text.splitlines():
        if "error" in line.lower():
            return line.replace(f" in {scratch_name}", "").strip()
    return text.strip().replace(scratch_name, "<file>") or "php -l failed"
