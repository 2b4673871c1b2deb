"""Read a unified diff (bytes) into :class:`~patchd.engine.model.FilePatch` objects.

The reader here is strict and bytes-exact: every line keeps its end-of-line bytes (CRLF
stays CRLF), ``\\ No newline at end of file`` removes the EOL of the line before it, and
anything malformed raises :class:`~patchd.errors.DiffParseError` naming the 1-based line.
Features patchd will not apply (binary, rename/copy, mode changes, symlinks, context and
ed-style diffs) raise :class:`~patchd.errors.UnsupportedDiffError`.

NOTE: unidiff is lenient (it reads a blank line as context, skips stray text, joins a
``\\r`` into values) and does not report line numbers reliably, so it cannot be the source
of the model. It is used as a second opinion instead: a diff that this reader accepts must
give unidiff the same files, hunks and line bytes, or it is refused.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass, field

import unidiff

from patchd.engine.model import FilePatch, Hunk, HunkLine, LineKind
from patchd.engine.paths import safe_relpath
from patchd.errors import DiffParseError, UnsafePathError, UnsupportedDiffError

__all__ = ["parse_diff", "split_lines"]

_HUNK_RE = re.compile(rb"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@(.*)$", re.DOTALL)
_ED_RE = re.compile(rb"^\d+(?:,\d+)?[acd]\d+(?:,\d+)?$|^\d+(?:,\d+)?[acdi]$")
_GIT_MODE_RE = re.compile(rb"^(new file mode|deleted file mode|old mode|new mode) ([0-7]+)$")
_INDEX_RE = re.compile(rb"^index [0-9a-fA-F]+\.\.[0-9a-fA-F]+(?: ([0-7]+))?$")
_REGULAR_MODES = {b"100644", b"100755", b"100664"}
_DEV_NULL = b"/dev/null"
_MAX_NUMBER = 10**9  # NOTE: no real file has a billion lines; refuse absurd numbers early.
_C_ESCAPES = {
    ord("a"): 7,
    ord("b"): 8,
    ord("t"): 9,
    ord("n"): 10,
    ord("v"): 11,
    ord("f"): 12,
    ord("r"): 13,
    ord('"'): 34,
    ord("\\"): 92,
}


def split_lines(data: bytes) -> list[bytes]:
    """Split on ``\\n`` only, keeping it; the last line may lack it (no ``\\r`` splitting)."""
    parts = data.split(b"\n")
    lines = [p + b"\n" for p in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


def _body(line: bytes) -> bytes:
    """A line without its EOL (``\\n`` or ``\\r\\n``)."""
    if line.endswith(b"\n"):
        line = line[:-1]
    if line.endswith(b"\r"):
        line = line[:-1]
    return line


@dataclass
class _GitBlock:
    """What the extended header lines after ``diff --git`` said."""

    line_no: int
    names: tuple[bytes, bytes] | None
    new_file: bool = False
    deleted_file: bool = False


@dataclass
class _Reader:
    """One pass over the lines of a diff; builds the file patches."""

    lines: list[bytes]
    source: str
    strip: int
    files: list[FilePatch] = field(default_factory=list)
    seen_paths: set[str] = field(default_factory=set)
    spans: list[tuple[FilePatch, int, int]] = field(default_factory=list)  # [start, end)

    # -- errors -------------------------------------------------------------------------

    def fail(self, message: str, line_no: int, *, unsupported: bool = False) -> DiffParseError:
        """An error naming line ``line_no`` (1-based) and showing it when it exists."""
        line = self.lines[line_no - 1] if 0 < line_no <= len(self.lines) else None
        cls = UnsupportedDiffError if unsupported else DiffParseError
        return cls(message, line_no=line_no, line=line, source=self.source)

    # -- top level ----------------------------------------------------------------------

    def run(self) -> list[FilePatch]:
        """Read every file patch; text between file patches is kept as their header."""
        i = 0
        n = len(self.lines)
        header: list[bytes] = []
        git: _GitBlock | None = None
        after_hunk: int | None = None  # line no of the first stray line after a hunk
        while i < n:
            line = self.lines[i]
            no = i + 1
            body = _body(line)
            self._refuse_unsupported(body, no)
            if body.startswith(b"@@"):
                raise self.fail(
                    "text between hunks" if after_hunk is not None else "hunk without file header",
                    after_hunk if after_hunk is not None else no,
                )
            if b"\0" in line:
                raise self.fail("NUL byte outside a hunk", no)
            if body.startswith(b"diff --git "):
                if git is not None:
                    self._finish_git_block(git, header)
                    header = []
                git = _GitBlock(no, _split_git_names(body[len(b"diff --git ") :]))
                header.append(line)
                after_hunk = None
                i += 1
                continue
            if git is not None and self._git_extended(git, body, no):
                header.append(line)
                i += 1
                continue
            if body.startswith(b"--- ") and i + 1 < n and self.lines[i + 1].startswith(b"+++ "):
                if git is not None and not self._same_file(git, i):
                    # NOTE: a git block without ---/+++ (empty file) followed by a plain diff.
                    self._finish_git_block(git, header)
                    header, git = [], None
                i = self._file(i, header, git)
                header, git = [], None
                after_hunk = None
                if i < n:
                    after_hunk = self._stray_after_hunk(i)
                continue
            if body.startswith(b"--- ") and after_hunk is None:
                raise self.fail("'---' file header not followed by '+++'", no)
            if body.startswith(b"+++ ") and after_hunk is None:
                raise self.fail("'+++' file header without '---' before it", no)
            if git is not None and not body.startswith((b"--- ", b"+++ ")):
                self._finish_git_block(git, header)
                header, git = [], None
                continue  # re-read this line outside the git block
            header.append(line)
            i += 1
        if git is not None:
            self._finish_git_block(git, header)
        if not self.files:
            raise self.fail("no file patches found", max(n, 1))
        return self.files

    def _stray_after_hunk(self, i: int) -> int | None:
        """After a file's last hunk: refuse hunk-like lines, remember other text."""
        line = self.lines[i]
        body = _body(line)
        if body.startswith(b"@@") or body.startswith(b"diff ") or body.startswith(b"Index: "):
            return None
        nxt = self.lines[i + 1] if i + 1 < len(self.lines) else b""
        if body.startswith(b"--- ") and nxt.startswith(b"+++ "):
            return None
        if body in (b"--", b"-- "):
            return i + 1  # NOTE: the mail signature git format-patch appends
        if line[:1] in (b" ", b"-", b"+", b"\\"):
            raise self.fail("hunk has more lines than its header says", i + 1)
        return i + 1

    # -- unsupported features ------------------------------------------------------------

    def _refuse_unsupported(self, body: bytes, no: int) -> None:
        """Raise UnsupportedDiffError for a header line of a kind patchd will not apply."""
        if body == b"GIT binary patch" or (
            body.startswith(b"Binary files ") and body.endswith(b" differ")
        ):
            raise self.fail("binary diffs are not supported", no, unsupported=True)
        for word in (b"rename from ", b"rename to ", b"copy from ", b"copy to "):
            if body.startswith(word):
                raise self.fail("renamed or copied files are not supported", no, unsupported=True)
        if body.startswith(b"*** ") or body.startswith(b"***************"):
            raise self.fail("context diffs are not supported", no, unsupported=True)
        if _ED_RE.match(body):
            raise self.fail("ed-style and normal diffs are not supported", no, unsupported=True)

    def _git_extended(self, git: _GitBlock, body: bytes, no: int) -> bool:
        """Consume one extended header line of a ``diff --git`` block; False if not one."""
        m = _GIT_MODE_RE.match(body)
        if m:
            kind, mode = m.group(1), m.group(2)
            if kind in (b"old mode", b"new mode"):
                raise self.fail("file mode changes are not supported", no, unsupported=True)
            if mode not in _REGULAR_MODES:
                what = "symbolic links" if mode == b"120000" else f"file mode {mode.decode()}"
                raise self.fail(f"{what} are not supported", no, unsupported=True)
            if git.new_file or git.deleted_file:
                # NOTE: both would make a FilePatch without any name (found by bench/fuzz.py).
                raise self.fail("a second 'new file mode'/'deleted file mode' line", no)
            if kind == b"new file mode":
                git.new_file = True
            else:
                git.deleted_file = True
            return True
        m = _INDEX_RE.match(body)
        if m:
            if m.group(1) is not None and m.group(1) not in _REGULAR_MODES:
                mode = m.group(1)
                what = "symbolic links" if mode == b"120000" else f"file mode {mode.decode()}"
                raise self.fail(f"{what} are not supported", no, unsupported=True)
            return True
        return body.startswith((b"similarity index ", b"dissimilarity index "))

    def _same_file(self, git: _GitBlock, i: int) -> bool:
        """Do the ``---``/``+++`` lines at index ``i`` name the file of the git header?"""
        if git.names is None:
            return True
        names = (_header_name(self.lines[i], 4), _header_name(self.lines[i + 1], 4))
        return all(
            got is None or got in (_DEV_NULL, want)
            for got, want in zip(names, git.names, strict=True)
        )

    def _finish_git_block(self, git: _GitBlock, header: list[bytes]) -> None:
        """A ``diff --git`` block without ``---``/``+++``: only an empty new/deleted file."""
        if not (git.new_file or git.deleted_file):
            raise self.fail("git diff header without any change patchd can apply", git.line_no)
        if git.names is None:
            raise self.fail("cannot read the file names of this git diff header", git.line_no)
        old = None if git.new_file else self._path(git.names[0], git.line_no)
        new = None if git.deleted_file else self._path(git.names[1], git.line_no)
        self._add(FilePatch(old, new, (), source_line=git.line_no, header=tuple(header)))

    # -- one file ------------------------------------------------------------------------

    def _file(self, i: int, header: list[bytes], git: _GitBlock | None) -> int:
        """Read ``---``, ``+++`` and the hunks after them; return the next line index."""
        minus_no, plus_no = i + 1, i + 2
        old_name = _header_name(self.lines[i], 4)
        new_name = _header_name(self.lines[i + 1], 4)
        if old_name is None:
            raise self.fail("cannot read the file name", minus_no)
        if new_name is None:
            raise self.fail("cannot read the file name", plus_no)
        old = None if old_name == _DEV_NULL else self._path(old_name, minus_no)
        new = None if new_name == _DEV_NULL else self._path(new_name, plus_no)
        if old is None and new is None:
            raise self.fail("both file names are /dev/null", plus_no)
        if git is not None:
            if git.new_file and old is not None:
                raise self.fail("'new file mode' but the old name is not /dev/null", minus_no)
            if git.deleted_file and new is not None:
                raise self.fail("'deleted file mode' but the new name is not /dev/null", plus_no)
        i += 2
        hunks: list[Hunk] = []
        while i < len(self.lines) and self.lines[i].startswith(b"@@"):
            hunk, i = self._hunk(i, hunks[-1] if hunks else None)
            hunks.append(hunk)
        if not hunks:
            raise self.fail("file header without hunks", plus_no)
        # NOTE: ``diff -N`` marks a missing side with the epoch as its timestamp instead of
        # /dev/null; GNU patch then creates or removes the file, and so do we.
        if git is None and len(hunks) == 1:
            if old is not None and hunks[0].old_len == 0 and _epoch(self.lines[minus_no - 1]):
                old = None
            elif new is not None and hunks[0].new_len == 0 and _epoch(self.lines[plus_no - 1]):
                new = None
        if old is None and not (hunks[0].old_len == 0 and len(hunks) == 1):
            raise self.fail("a new file (/dev/null) must have one hunk with no old lines", minus_no)
        if new is None and not (hunks[0].new_len == 0 and len(hunks) == 1):
            raise self.fail("a deleted file must have one hunk with no new lines", plus_no)
        fp = FilePatch(old, new, tuple(hunks), source_line=minus_no, header=tuple(header))
        self._add(fp)
        self.spans.append((fp, minus_no - 1, i))
        return i

    def _add(self, fp: FilePatch) -> None:
        if fp.path in self.seen_paths:
            raise self.fail(f"file {fp.path!r} is patched twice", fp.source_line or 1)
        self.seen_paths.add(fp.path)
        self.files.append(fp)

    def _path(self, name: bytes, no: int) -> str:
        try:
            return safe_relpath(name, strip=self.strip)
        except UnsafePathError as exc:
            raise self.fail(f"unsafe file name ({exc.message})", no) from exc

    # -- one hunk ------------------------------------------------------------------------

    def _hunk(self, i: int, prev: Hunk | None) -> tuple[Hunk, int]:
        """Read the hunk whose ``@@`` header is line index ``i``."""
        head_no = i + 1
        raw = self.lines[i]
        if b"\0" in raw:
            raise self.fail("NUL byte in hunk header", head_no)
        text = raw[:-1] if raw.endswith(b"\n") else raw
        m = _HUNK_RE.match(text)
        if not m:
            raise self.fail("malformed hunk header", head_no)
        numbers = [int(g) if g is not None else 1 for g in m.group(1, 2, 3, 4)]
        if any(v > _MAX_NUMBER for v in numbers):
            raise self.fail("line number in hunk header too large", head_no)
        old_start, old_len, new_start, new_len = numbers
        section = m.group(5)
        if section.endswith(b"\r"):
            section = section[:-1]
        if (old_start == 0 and old_len) or (new_start == 0 and new_len):
            raise self.fail("hunk header starts at line 0 with lines", head_no)
        if old_len == 0 and new_len == 0:
            raise self.fail("empty hunk", head_no)
        if prev is not None:
            prev_first = prev.old_start if prev.old_len else prev.old_start + 1
            first = old_start if old_len else old_start + 1
            if first < prev_first + prev.old_len:
                raise self.fail("hunk overlaps or precedes the hunk before it", head_no)
        lines: list[HunkLine] = []
        old_left, new_left = old_len, new_len
        old_closed = new_closed = False  # a side's last line had no EOL
        i += 1
        while True:
            done = old_left == 0 and new_left == 0
            if i >= len(self.lines):
                if done:
                    break
                raise self.fail(
                    f"hunk truncated: {old_left} old and {new_left} new lines missing", head_no
                )
            line = self.lines[i]
            no = i + 1
            tag = line[:1]
            if tag == b"\\":
                if not lines or (lines[-1].data[-1:] != b"\n"):
                    raise self.fail("misplaced '\\ No newline at end of file'", no)
                last = lines[-1]
                lines[-1] = HunkLine(last.kind, last.data[:-1])
                if last.kind != "+":
                    old_closed = True
                if last.kind != "-":
                    new_closed = True
                i += 1
                continue
            if done:
                break
            if tag not in (b" ", b"-", b"+"):
                if line.startswith((b"@@", b"--- ", b"diff ")):
                    raise self.fail("hunk shorter than its header says", no)
                raise self.fail("invalid line in hunk (expected ' ', '-', '+' or '\\')", no)
            if not line.endswith(b"\n"):
                # NOTE: only the diff's very last line can lack it; guessing is not safe.
                raise self.fail("hunk line without end of line (diff truncated?)", no)
            kind: LineKind = tag.decode()  # type: ignore[assignment]
            if kind != "+":
                if old_left == 0:
                    raise self.fail("hunk has more old lines than its header says", no)
                if old_closed:
                    raise self.fail("line after the last line of the old file", no)
                old_left -= 1
            if kind != "-":
                if new_left == 0:
                    raise self.fail("hunk has more new lines than its header says", no)
                if new_closed:
                    raise self.fail("line after the last line of the new file", no)
                new_left -= 1
            lines.append(HunkLine(kind, line[1:]))
            i += 1
        hunk = Hunk(old_start, old_len, new_start, new_len, tuple(lines), section, head_no)
        return hunk, i


_EPOCH_RE = re.compile(
    rb"^(\d{4})-(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d)(?:\.\d+)? ?([+-])(\d\d)(\d\d)$"
)


def _epoch(line: bytes) -> bool:
    """Whether a ``---``/``+++`` line's timestamp is the Unix epoch (in any time zone)."""
    body = _body(line)
    if b"\t" not in body:
        return False
    stamp = body.split(b"\t", 1)[1].strip()
    if stamp.endswith(b"Jan  1 00:00:00 1970") or stamp.endswith(b"Jan 1 00:00:00 1970"):
        return True
    m = _EPOCH_RE.match(stamp)
    if not m:
        return False
    year, month, day, hh, mm, ss = (int(g) for g in m.groups()[:6])
    sign = 1 if m.group(7) == b"+" else -1
    offset = sign * (int(m.group(8)) * 3600 + int(m.group(9)) * 60)
    try:
        local = datetime.datetime(year, month, day, hh, mm, ss, tzinfo=datetime.UTC)
    except ValueError:
        return False
    return local.timestamp() - offset == 0


def _header_name(line: bytes, skip: int) -> bytes | None:
    """The file name of a ``---``/``+++`` line: up to a tab (timestamp), C-unquoted."""
    text = _body(line)[skip:]
    if text.startswith(b'"'):
        name, _rest = _c_unquote(text)
        return name
    name = text.split(b"\t", 1)[0]
    return name or None


def _split_git_names(rest: bytes) -> tuple[bytes, bytes] | None:
    """The two names of ``diff --git A B`` (quoted, or unquoted with equal halves)."""
    if rest.startswith(b'"'):
        a, tail = _c_unquote(rest)
        if a is None or not tail.startswith(b" "):
            return None
        tail = tail[1:]
        b = _c_unquote(tail)[0] if tail.startswith(b'"') else tail
        return (a, b) if b else None
    if rest.endswith(b'"'):
        pos = rest.find(b' "')
        if pos < 0:
            return None
        b, _ = _c_unquote(rest[pos + 1 :])
        return (rest[:pos], b) if b is not None else None
    # NOTE: unquoted names may contain spaces; git writes "a/X b/X", so split in the middle.
    if len(rest) % 2 == 1:
        half = len(rest) // 2
        a, b = rest[:half], rest[half + 1 :]
        if rest[half : half + 1] == b" " and a.split(b"/", 1)[-1] == b.split(b"/", 1)[-1]:
            return a, b
    return None


def _c_unquote(text: bytes) -> tuple[bytes | None, bytes]:
    """Decode a C-style quoted name at the start of ``text``; returns (name, rest)."""
    out = bytearray()
    i = 1
    while i < len(text):
        c = text[i]
        if c == ord('"'):
            return bytes(out), text[i + 1 :]
        if c == ord("\\"):
            i += 1
            if i >= len(text):
                return None, b""
            e = text[i]
            if ord("0") <= e <= ord("7"):
                digits = text[i : i + 3]
                if len(digits) < 3 or not all(ord("0") <= d <= ord("7") for d in digits):
                    return None, b""
                out.append(int(digits, 8) & 0xFF)
                i += 3
                continue
            if e not in _C_ESCAPES:
                return None, b""
            out.append(_C_ESCAPES[e])
            i += 1
            continue
        out.append(c)
        i += 1
    return None, b""


def _cross_check(reader: _Reader) -> None:
    """Compare each file patch with unidiff's reading of the same lines; refuse on mismatch.

    NOTE: unidiff gets one file patch at a time (from its ``---`` line to its last hunk
    line): it is confused by a git header without ``---`` before a plain diff, and per-file
    input lets an error name the file's line.
    """
    for fp, start, end in reader.spans:
        text = b"".join(reader.lines[start:end]).decode("latin-1")
        try:
            patch_set = unidiff.PatchSet(text)
        except unidiff.UnidiffParseError as exc:
            raise reader.fail(f"unidiff refuses this file patch ({exc})", start + 1) from exc
        if len(patch_set) != 1 or len(patch_set[0]) != len(fp.hunks):
            raise reader.fail("unidiff reads a different number of hunks", start + 1)
        for hunk, theirs in zip(fp.hunks, patch_set[0], strict=True):
            expected: list[tuple[str, bytes]] = []
            for ln in hunk.lines:
                if ln.data.endswith(b"\n"):
                    expected.append((ln.kind, ln.data))
                else:
                    expected.append((ln.kind, ln.data + b"\n"))
                    expected.append(("\\", b""))
            got = [
                (ul.line_type, b"" if ul.line_type == "\\" else ul.value.encode("latin-1"))
                for ul in theirs
            ]
            if got != expected:
                raise reader.fail("unidiff reads this hunk differently", hunk.source_line or 1)


def parse_diff(data: bytes, *, source: str = "diff", strip: int = 1) -> list[FilePatch]:
    """Parse a unified diff into file patches (paths stripped of ``strip`` components).

    Raises :class:`DiffParseError` (with ``line_no``) for malformed input,
    :class:`UnsupportedDiffError` for features patchd refuses.
    """
    if not isinstance(data, bytes):
        raise TypeError("parse_diff takes bytes")
    reader = _Reader(split_lines(data), source, strip)
    files = reader.run()
    _cross_check(reader)
    return files
