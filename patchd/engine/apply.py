"""Apply (or reverse) a file patch to bytes in memory, with a per-hunk report.

Pure: bytes in, bytes and outcomes out; no file I/O. The placement of hunks follows GNU
patch 2.7.6 (``locate_hunk``/``apply_hunk``) so that a dry run here agrees with ``patch
-p1 -F0 -f`` hunk by hunk: the same first guess (hunk start plus the offset carried from
earlier hunks), the same alternating +/- offset search, no match before the end of the
previous hunk, hunks at the start/end of the file pinned there, and lines compared as
exact bytes (a CRLF line never matches an LF line).

NOTE: stdlib-only; the host-side agent imports it.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from patchd.engine.model import FilePatch, Hunk

__all__ = [
    "FileOutcome",
    "HunkOutcome",
    "HunkStatus",
    "applies",
    "apply_file",
    "apply_patch",
]


class HunkStatus(enum.Enum):
    """What happened to one hunk."""

    APPLIED = "applied"  # at its position (after the offset carried from earlier hunks: 0)
    OFFSET = "offset"  # applied, but the file's lines are shifted
    FUZZ = "fuzz"  # applied ignoring some outer context lines
    ALREADY_APPLIED = "already-applied"  # forward fails, the reversed hunk matches
    FAILED = "failed"

    @property
    def applied(self) -> bool:
        """True for the three statuses that changed the file."""
        return self in (HunkStatus.APPLIED, HunkStatus.OFFSET, HunkStatus.FUZZ)


@dataclass(frozen=True)
class HunkOutcome:
    """One hunk's result. ``line`` is 1-based in the resulting file, as GNU patch prints it."""

    index: int
    status: HunkStatus
    line: int
    offset: int = 0
    fuzz: int = 0
    reason: str = ""


@dataclass(frozen=True)
class FileOutcome:
    """One file's result: the patched bytes when every hunk applied, else ``None``."""

    path: str
    content: bytes | None
    hunks: tuple[HunkOutcome, ...]
    error: str | None = None  # a failure of the file as a whole (e.g. deletion differs)
    deleted: bool = False  # the patch deletes the file and it applied

    @property
    def ok(self) -> bool:
        """Every hunk applied and the file as a whole is fine."""
        return self.error is None and all(h.status.applied for h in self.hunks)

    @property
    def already_applied(self) -> bool:
        """Every hunk is already applied (the file holds the patch's result)."""
        return bool(self.hunks) and all(h.status is HunkStatus.ALREADY_APPLIED for h in self.hunks)

    @property
    def failed_hunks(self) -> tuple[HunkOutcome, ...]:
        """The hunks that did not apply (FAILED or ALREADY_APPLIED)."""
        return tuple(h for h in self.hunks if not h.status.applied)

    @property
    def reason(self) -> str:
        """One human readable line: the file error or the first failed hunk's reason."""
        if self.error:
            return self.error
        bad = self.failed_hunks
        return bad[0].reason if bad else ""


def _split(data: bytes) -> list[bytes]:
    """Lines split on ``\\n`` only, keeping it (GNU patch splits input the same way)."""
    if b"\r" not in data:
        # NOTE: without CR, bytes.splitlines splits on LF only: the same lines, in C.
        return data.splitlines(keepends=True)
    parts = data.split(b"\n")
    lines = [p + b"\n" for p in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


def _first(start: int, length: int) -> int:
    """GNU's ``pch_first``: a hunk with no old lines inserts *after* line ``start``."""
    return start if length else start + 1


def _context(hunk: Hunk) -> tuple[int, int]:
    """Leading and trailing context line counts."""
    return hunk.context


class _Applier:
    """GNU patch's per-file state: input lines, carried offset, frozen lines, output."""

    def __init__(self, old: bytes) -> None:
        self.inp = _split(old)
        self.in_offset = 0  # where hunks are found relative to where they say they are
        self.out_offset = 0  # output line numbers relative to input line numbers
        self.frozen = 0  # input lines already copied or consumed
        self.out: list[bytes] = []
        self.after_newline = True

    def _lines_equal_to(self, line: bytes, lo: int, hi: int) -> Iterator[int]:
        """The 1-based numbers ``lo..hi`` of input lines equal to ``line``, ascending.

        NOTE: ``list.index`` scans in C; a hunk that is not in the file costs one scan.
        """
        inp = self.inp
        start, stop = max(lo, 1) - 1, min(hi, len(inp))
        while start < stop:
            try:
                start = inp.index(line, start, stop)
            except ValueError:
                return
            yield start + 1
            start += 1

    # -- locating -------------------------------------------------------------------------

    def _match(self, pat: list[bytes], where: int, prefix_fuzz: int, suffix_fuzz: int) -> bool:
        """GNU ``patch_match``: does ``pat`` (minus fuzzed ends) sit at input line ``where``?"""
        lo, hi = where + prefix_fuzz, where + len(pat) - suffix_fuzz  # 1-based, hi exclusive
        if lo >= hi:
            return True
        if lo < 1 or hi - 1 > len(self.inp):
            return False
        # NOTE: one C-level slice comparison instead of a Python loop per line.
        return self.inp[lo - 1 : hi - 1] == pat[prefix_fuzz : len(pat) - suffix_fuzz]

    def locate(self, hunk: Hunk, fuzz: int, *, commit: bool = True) -> int:
        """GNU ``locate_hunk``: the 1-based input line of the hunk, or 0; updates in_offset."""
        pat = hunk.old_lines
        pat_lines = len(pat)
        first = _first(hunk.old_start, hunk.old_len)
        first_guess = first + self.in_offset
        prefix_context, suffix_context = _context(hunk)
        context = max(prefix_context, suffix_context)
        prefix_fuzz = fuzz + prefix_context - context
        suffix_fuzz = fuzz + suffix_context - context
        input_lines = len(self.inp)
        max_where = input_lines - (pat_lines - suffix_fuzz) + 1
        min_where = self.frozen + 1
        max_pos_offset = max_where - first_guess
        max_neg_offset = first_guess - min_where

        if not pat_lines:  # NOTE: GNU: a null range matches always
            return first_guess
        if first_guess <= max_neg_offset:  # do not try lines <= 0
            max_neg_offset = first_guess - 1

        found: int | None = None
        if prefix_fuzz < 0 and first <= 1:
            # Can only match the start of the file (the hunk has less leading context).
            if suffix_fuzz < 0 and (pat_lines != input_lines or prefix_context < self.frozen):
                return 0
            offset = 1 - first_guess
            if (
                self.frozen <= prefix_context
                and offset <= max_pos_offset
                and self._match(pat, first_guess + offset, 0, suffix_fuzz)
            ):
                found = offset
        else:
            prefix_fuzz = max(prefix_fuzz, 0)
            if suffix_fuzz < 0:
                # Can only match the end of the file (the hunk has less trailing context).
                offset = first_guess - (input_lines - pat_lines + 1)
                if offset <= max_neg_offset and self._match(
                    pat, first_guess - offset, prefix_fuzz, 0
                ):
                    found = -offset
            else:
                found = self._search(
                    pat, first_guess, prefix_fuzz, suffix_fuzz, max_pos_offset, max_neg_offset
                )
        if found is None:
            return 0
        if commit:
            self.in_offset += found
        return first_guess + found

    def _search(
        self,
        pat: list[bytes],
        first_guess: int,
        prefix_fuzz: int,
        suffix_fuzz: int,
        max_pos_offset: int,
        max_neg_offset: int,
    ) -> int | None:
        """The offset GNU's search finds: it tries 0, +1, -1, +2, -2, ... so when the
        context occurs twice the nearer place wins and ties go forward; None if none.

        NOTE: same answer as that loop, but only places whose first compared line is right
        are tried (from an index of the input's lines), so a hunk that is not in the file
        costs one lookup instead of a comparison at every line.
        """
        if max(max_pos_offset, max_neg_offset) < 0:
            return None
        # NOTE: GNU tries offset 0 on the forward side only ("0 < offset" guards the
        # backward side); it matters when fuzz leaves nothing to compare past the end.
        if max_pos_offset >= 0 and self._match(pat, first_guess, prefix_fuzz, suffix_fuzz):
            return 0
        if prefix_fuzz >= len(pat) - suffix_fuzz:
            # nothing left to compare: the first place tried wins (offset 0 was not
            # allowed forward, so it is one line back, if that is allowed)
            return -1 if max_neg_offset >= 1 else None
        best: int | None = None
        lowest = first_guess - max_neg_offset + prefix_fuzz  # line numbers of pat[prefix_fuzz]
        highest = first_guess + max_pos_offset + prefix_fuzz
        for line_no in self._lines_equal_to(pat[prefix_fuzz], lowest, highest):
            offset = line_no - prefix_fuzz - first_guess
            if offset > max_pos_offset or -offset > max_neg_offset:
                continue
            if best is not None and (abs(offset), offset < 0) >= (abs(best), best < 0):
                if offset > 0:
                    break  # ascending: every later place is farther
                continue
            if self._match(pat, first_guess + offset, prefix_fuzz, suffix_fuzz):
                best = offset
        return best

    # -- output ---------------------------------------------------------------------------

    def _write(self, data: bytes, *, fix_newline: bool) -> None:
        # NOTE: GNU adds a newline before copied lines (and trailing added lines) when the
        # output so far ends without one; only reachable with odd hunks, kept for parity.
        if fix_newline and not self.after_newline:
            self.out.append(b"\n")
        self.out.append(data)
        self.after_newline = data.endswith(b"\n")

    def copy_till(self, last: int) -> bool:
        """Copy input lines up to ``last`` (1-based, inclusive); False if already past it."""
        if self.frozen > last:
            return False
        chunk = self.inp[self.frozen : min(last, len(self.inp))]
        self.frozen = max(self.frozen, last)
        if chunk:
            # NOTE: only the input's last line can lack its newline, so within the chunk
            # just its first line may need the fix _write does (same bytes, one extend).
            if not self.after_newline:
                self.out.append(b"\n")
            self.out.extend(chunk)
            self.after_newline = chunk[-1].endswith(b"\n")
        return True

    def apply(self, hunk: Hunk, where: int) -> bool:
        """GNU ``apply_hunk``: write the hunk's new lines in place of its old ones."""
        # GNU walks the old side and the new side separately: within a run of changed
        # lines, the removed lines are consumed before the added ones are written
        # (Hunk.runs has them in that order, made once per hunk).
        base = where - 1
        old_idx = 1
        pat_lines = len(hunk.old_lines)
        trailing: list[bytes] = []
        for kind, count, added in hunk.runs:
            if kind == " ":
                old_idx += count
            elif kind == "-":
                if not self.copy_till(base + old_idx - 1):
                    return False
                self.frozen += count
                old_idx += count
            elif old_idx > pat_lines:
                trailing.extend(added)
            else:
                if not self.copy_till(base + old_idx - 1):
                    return False
                for data in added:
                    self._write(data, fix_newline=False)
        if trailing:
            if not self.copy_till(base + old_idx - 1):
                return False
            for data in trailing:
                self._write(data, fix_newline=True)
        self.out_offset += len(hunk.new_lines) - len(hunk.old_lines)
        return True

    def finish(self) -> bytes:
        """Copy the rest of the input and return the output bytes."""
        self.copy_till(len(self.inp))
        return b"".join(self.out)

    # -- explaining failures -------------------------------------------------------------

    def why(self, hunk: Hunk, index: int) -> str:
        """A reason for a hunk that was not found: the first differing line at its spot."""
        pat = hunk.old_lines
        where = _first(hunk.old_start, hunk.old_len) + self.in_offset
        for k, expected in enumerate(pat):
            line_no = where + k
            if line_no < 1 or line_no > len(self.inp):
                return f"hunk #{index} does not match: the file ends at line {len(self.inp)}"
            if self.inp[line_no - 1] != expected:
                return f"hunk #{index} does not match: context differs at line {line_no}"
        return f"hunk #{index} does not match: it overlaps the hunk before it"


def _max_fuzz(hunk: Hunk, fuzz: int) -> int:
    prefix, suffix = _context(hunk)
    return min(fuzz, max(prefix, suffix))


def _locate_any(app: _Applier, hunk: Hunk, fuzz: int, *, commit: bool) -> tuple[int, int]:
    """Try fuzz 0, 1, ... up to the allowed fuzz; return (where, fuzz used)."""
    for f in range(_max_fuzz(hunk, fuzz) + 1):
        where = app.locate(hunk, f, commit=commit)
        if where:
            return where, f
    return 0, 0


def _reverse_matches(app: _Applier, hunk: Hunk, fuzz: int) -> bool:
    """Does the reversed hunk match near its place (without changing the state)?"""
    back = hunk.reversed()
    if not back.old_lines:
        return False
    return _locate_any(app, back, fuzz, commit=False)[0] != 0


def _all_failed(fp: FilePatch, reason: str, status: HunkStatus) -> tuple[HunkOutcome, ...]:
    return tuple(
        HunkOutcome(i, status, _first(h.old_start, h.old_len), reason=reason)
        for i, h in enumerate(fp.hunks, 1)
    )


def _apply_hunks(fp: FilePatch, old: bytes, fuzz: int) -> tuple[bytes | None, list[HunkOutcome]]:
    app = _Applier(old)
    outcomes: list[HunkOutcome] = []
    ok = True
    for index, hunk in enumerate(fp.hunks, 1):
        where, used = _locate_any(app, hunk, fuzz, commit=True)
        newwhere = (where or _first(hunk.old_start, hunk.old_len)) + app.out_offset
        if where and app.apply(hunk, where):
            if used:
                status = HunkStatus.FUZZ
                reason = f"hunk #{index} applied with fuzz {used}"
            elif app.in_offset:
                status = HunkStatus.OFFSET
                reason = f"hunk #{index} applied at offset {app.in_offset}"
            else:
                status = HunkStatus.APPLIED
                reason = ""
            outcomes.append(HunkOutcome(index, status, newwhere, app.in_offset, used, reason))
            continue
        ok = False
        if where:
            reason = f"hunk #{index} is out of order"
            status = HunkStatus.FAILED
        elif _reverse_matches(app, hunk, fuzz):
            reason = f"hunk #{index} already applied"
            status = HunkStatus.ALREADY_APPLIED
        else:
            reason = app.why(hunk, index)
            status = HunkStatus.FAILED
        outcomes.append(HunkOutcome(index, status, newwhere, app.in_offset, 0, reason))
    content = app.finish()
    return (content if ok else None), outcomes


def apply_file(
    fp: FilePatch, old: bytes | None, *, fuzz: int = 0, reverse: bool = False
) -> FileOutcome:
    """Apply ``fp`` (or undo it with ``reverse``) to ``old``; ``None`` = file missing.

    A creation onto a non-empty existing file, a modification of a missing file, and a
    deletion whose result is not empty fail with a reason; a creation whose content is
    already there, or a deletion of an absent file, report ALREADY_APPLIED.
    """
    if fuzz < 0:
        raise ValueError("fuzz must be >= 0")
    patch = fp.reversed() if reverse else fp
    path = patch.path
    if old is None:
        if patch.is_deleted:
            return FileOutcome(
                path,
                None,
                _all_failed(patch, "file already deleted", HunkStatus.ALREADY_APPLIED),
                error="file already deleted",
            )
        if not patch.is_new:
            return FileOutcome(
                path,
                None,
                _all_failed(patch, "file missing", HunkStatus.FAILED),
                error="file missing",
            )
        old = b""
    elif patch.is_new and old:
        undone, _ = _apply_hunks(patch.reversed(), old, 0)
        if undone == b"" and patch.hunks:
            status, reason = HunkStatus.ALREADY_APPLIED, "file already created"
        else:
            status, reason = HunkStatus.FAILED, "file already exists"
        return FileOutcome(path, None, _all_failed(patch, reason, status), error=reason)

    content, outcomes = _apply_hunks(patch, old, fuzz)
    hunks = tuple(outcomes)
    if content is None:
        return FileOutcome(path, None, hunks)
    if patch.is_deleted:
        if content:
            return FileOutcome(
                path, None, hunks, error="not deleting the file: its content differs from patch"
            )
        return FileOutcome(path, None, hunks, deleted=True)
    return FileOutcome(path, content, hunks)


def applies(fp: FilePatch, old: bytes | None, *, reverse: bool = False) -> bool:
    """``apply_file(fp, old, reverse=reverse).ok`` (fuzz 0), stopping at the first hunk
    that does not apply and without the per-hunk report.

    NOTE: the patcher's already-patched check runs on every installation and fails on all
    vulnerable ones; explaining each failed hunk there is wasted work.
    """
    patch = fp.reversed() if reverse else fp
    if old is None or patch.is_new or patch.is_deleted:
        return apply_file(fp, old, reverse=reverse).ok
    app = _Applier(old)
    for hunk in patch.hunks:
        where, _used = _locate_any(app, hunk, 0, commit=True)
        if not where or not app.apply(hunk, where):
            return False
    return True


def apply_patch(
    patches: Sequence[FilePatch],
    files: Mapping[str, bytes | None],
    *,
    fuzz: int = 0,
    reverse: bool = False,
) -> list[FileOutcome]:
    """Apply every file patch to ``files[path]`` (missing key = file missing)."""
    return [apply_file(fp, files.get(fp.path), fuzz=fuzz, reverse=reverse) for fp in patches]
