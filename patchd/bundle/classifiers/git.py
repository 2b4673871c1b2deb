"""Git attribution: trace each changed line of the release diff to the commit that made it.

How it works (one ``git log`` for the range, then at most two ``git blame`` per file):

1. ``prepare`` reads ``git log -p -U0 OLDREF..NEWREF`` once: every commit of the range with
   its parents, message, the files it touched and the lines it added and removed per file.
   A commit is a *security commit* when its message matches ``security_pattern``.
2. An **added** line of the release diff is new-file line *n*; ``git blame OLDREF..NEWREF``
   of that file names the commit that introduced line *n* (exact, also for common lines
   such as ``}``). Lines blamed on the boundary (older than the range) are unattributed.
3. A **removed** line is old-file line *n*; ``git blame --reverse OLDREF..NEWREF`` names the
   last commit in which it still existed; the commit that removed it is that commit's child
   in the range whose diff removed that text.
4. When blame disagrees with the release (the tarball's file differs from the repository's,
   e.g. generated or keyword-expanded files) the line falls back to text matching: the
   newest commit of the range that added the text, or the oldest that removed it.

Blame runs lazily, once per file and direction, so a release diff whose files the range
never touched costs one ``git log``. Paths: the repository may be a sub-folder of the
release (``prefix``): release path ``typo3/sysext/core/Classes/X.php`` is repository path
``Classes/X.php`` for ``prefix="typo3/sysext/core/"``; release paths outside the prefix,
and files no commit of the range touched, get no opinion.

Verdicts: all changed lines from security commits -> keep; all from other commits -> drop,
naming the commits; a mix -> keep only the security lines when :func:`split_hunk` can
split the hunk, else undecided with a hint; some lines unattributed -> undecided.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import git

from patchd.bundle.interface import (
    Classifier,
    FileChangeLike,
    ReleaseDiffLike,
    ReleaseHunkLike,
    Verdict,
)
from patchd.bundle.split import split_hunk
from patchd.engine.model import HunkLine
from patchd.errors import PatchdError, UsageError

DEFAULT_SECURITY_PATTERN: re.Pattern[str] = re.compile(
    r"\[SECURITY\]|\bCVE-\d{4}-\d{4,}\b|\b(?:XSS|CSRF|SQL[ -]?injection|SQLi|RCE"
    r"|remote[ -]code[ -]execution|path[ -]traversal|directory[ -]traversal|SSRF|XXE"
    r"|open[ -]redirect|privilege[ -]escalation|security)\b",
    re.IGNORECASE,
)
CVE_RE = re.compile(r"\bCVE-\d{4}-\d{4,}\b", re.IGNORECASE)
_BLAME_HEADER = re.compile(r"^([0-9a-f]{40}) (\d+) (\d+)(?: \d+)?$")


class GitAttributionError(PatchdError):
    """The git repository or the revision range cannot be read."""


@dataclass(frozen=True)
class CommitInfo:
    """One commit of the range as far as attribution needs it."""

    sha: str
    parents: tuple[str, ...]
    message: str
    security: bool
    added: dict[str, Counter[str]] = field(default_factory=dict)
    removed: dict[str, Counter[str]] = field(default_factory=dict)
    paths: frozenset[str] = frozenset()

    @property
    def short(self) -> str:
        """The abbreviated sha shown in reasons."""
        return self.sha[:7]

    @property
    def subject(self) -> str:
        """The first line of the message."""
        return self.message.strip().splitlines()[0] if self.message.strip() else "(no message)"

    def describe(self) -> str:
        """``abc1234: [SECURITY] Prevent XSS (CVE-2024-1234)``: subject plus CVE ids."""
        subject = self.subject
        cves = [
            c
            for c in dict.fromkeys(m.upper() for m in CVE_RE.findall(self.message))
            if c not in subject.upper()
        ]
        return f"{self.short}: {subject}" + (f" ({', '.join(cves)})" if cves else "")


class GitAttribution(Classifier):
    """Attribute changed lines to commits of ``rev_range`` (``OLDREF..NEWREF``) in ``repo``."""

    name = "git"

    def __init__(
        self,
        repo: Path,
        rev_range: str,
        *,
        security_pattern: re.Pattern[str] = DEFAULT_SECURITY_PATTERN,
        prefix: str = "",
    ) -> None:
        if ".." not in rev_range or "..." in rev_range:
            raise UsageError(f"git range must look like OLDREF..NEWREF, got {rev_range!r}")
        try:
            self.repo = git.Repo(repo)
        except (git.InvalidGitRepositoryError, git.NoSuchPathError) as exc:
            raise GitAttributionError(f"not a git repository: {exc}", where=str(repo)) from None
        self.rev_range = rev_range
        self.security_pattern = security_pattern
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.commits: dict[str, CommitInfo] = {}
        self.order: list[str] = []  # newest first, as git log prints them
        self._children: dict[str, list[str]] = {}
        self._blame: dict[tuple[str, bool], dict[int, tuple[str, str]]] = {}
        self._prepared = False

    # -- preparation -------------------------------------------------------------------

    def prepare(self, diff: ReleaseDiffLike) -> None:
        """Read the range's commits once (the diff itself is looked at lazily)."""
        if self._prepared:
            return
        self._prepared = True
        out = self._git(
            "log",
            "-p",
            "-U0",
            "--no-color",
            "--no-ext-diff",
            "--no-renames",
            "--format=%x01%H%x00%P%x00%B%x02",
            self.rev_range,
        )
        for chunk in out.split("\x01")[1:]:
            head, _, patch = chunk.partition("\x02")
            sha, parents, message = head.split("\x00", 2)
            added, removed, paths = _parse_patch(patch)
            info = CommitInfo(
                sha,
                tuple(parents.split()),
                message,
                bool(self.security_pattern.search(message)),
                added,
                removed,
                frozenset(paths),
            )
            self.commits[sha] = info
            self.order.append(sha)
            for parent in info.parents:
                self._children.setdefault(parent, []).append(sha)
        for kids in self._children.values():
            kids.reverse()  # oldest first

    # -- classification ----------------------------------------------------------------

    def classify(self, hunk: ReleaseHunkLike | None, change: FileChangeLike) -> Verdict | None:
        """Keep security lines, drop others, split or flag a mix; None when git cannot tell."""
        self.prepare(_EmptyDiff())
        repo_path = self.repo_path(change.path)
        if repo_path is None:
            return None
        touching = [
            self.commits[s] for s in reversed(self.order) if repo_path in self.commits[s].paths
        ]
        if not touching:
            return None
        if hunk is None:
            return self._verdict_for(touching, what="file changed by")
        lines = hunk.hunk.lines
        attributed: dict[int, CommitInfo | None] = {}
        old_no, new_no = (
            _first(hunk.hunk.old_start, hunk.hunk.old_len),
            _first(hunk.hunk.new_start, hunk.hunk.new_len),
        )
        for i, ln in enumerate(lines):
            if ln.kind == "+":
                attributed[i] = self._added_by(repo_path, change, new_no, _text(ln))
                new_no += 1
            elif ln.kind == "-":
                attributed[i] = self._removed_by(repo_path, change, old_no, _text(ln))
                old_no += 1
            else:
                old_no += 1
                new_no += 1
        known = {i: c for i, c in attributed.items() if c is not None}
        if not known:
            return None
        missing = len(attributed) - len(known)
        security = _unique(c for c in known.values() if c.security)
        other = _unique(c for c in known.values() if not c.security)
        if missing:
            return Verdict(
                "undecided",
                f"{missing} of {len(attributed)} changed lines not found in {self.rev_range}; "
                f"the rest from {_list(security + other)}",
                classifier=self.name,
            )
        if not other:
            return self._verdict_for(security, what="from")
        if not security:
            return self._verdict_for(other, what="from")
        parts = split_hunk(hunk, lambda i, _ln: bool(known[i].security))
        if parts is not None and parts[0]:
            return Verdict(
                "keep",
                f"split: keeps the lines from security {_list(security)}; "
                f"drops the lines from {_list(other)}",
                classifier=self.name,
                split=tuple(parts[0]),
            )
        return Verdict(
            "undecided",
            f"mixed hunk, split by hand: lines from security {_list(security)} "
            f"interleaved with lines from {_list(other)}",
            classifier=self.name,
        )

    def repo_path(self, release_path: str) -> str | None:
        """The repository path of a release path, or None outside the prefix."""
        if not self.prefix:
            return release_path
        if release_path.startswith(self.prefix):
            return release_path[len(self.prefix) :]
        return None

    def _verdict_for(self, commits: Sequence[CommitInfo], *, what: str) -> Verdict:
        if all(c.security for c in commits):
            return Verdict("keep", f"{what} security {_list(commits)}", classifier=self.name)
        if not any(c.security for c in commits):
            return Verdict("drop", f"{what} non-security {_list(commits)}", classifier=self.name)
        sec = [c for c in commits if c.security]
        rest = [c for c in commits if not c.security]
        return Verdict(
            "undecided", f"{what} security {_list(sec)} and {_list(rest)}", classifier=self.name
        )

    # -- line attribution --------------------------------------------------------------

    def _added_by(
        self, path: str, change: FileChangeLike, line_no: int, text: str
    ) -> CommitInfo | None:
        if change.kind != "removed":
            hit = self._blamed(path, reverse=False).get(line_no)
            if hit is not None and hit[1] == text:
                return self.commits.get(hit[0])
        for sha in self.order:  # newest first: the last commit that added the text
            if self.commits[sha].added.get(path, Counter())[text]:
                return self.commits[sha]
        return None

    def _removed_by(
        self, path: str, change: FileChangeLike, line_no: int, text: str
    ) -> CommitInfo | None:
        if change.kind != "added":
            hit = self._blamed(path, reverse=True).get(line_no)
            if hit is not None and hit[1] == text:
                for child in self._children.get(hit[0], []):
                    info = self.commits[child]
                    if info.removed.get(path, Counter())[text]:
                        return info
        for sha in reversed(self.order):  # oldest first: the first commit that removed it
            if self.commits[sha].removed.get(path, Counter())[text]:
                return self.commits[sha]
        return None

    def _blamed(self, path: str, *, reverse: bool) -> dict[int, tuple[str, str]]:
        """Line number -> (commit sha, line text) from (reverse) blame; cached per file."""
        key = (path, reverse)
        if key not in self._blame:
            args = [
                "blame",
                "--porcelain",
                *(["--reverse"] if reverse else []),
                self.rev_range,
                "--",
                path,
            ]
            try:
                self._blame[key] = _parse_blame(self._git(*args))
            except GitAttributionError:
                self._blame[key] = {}
        return self._blame[key]

    def _git(self, *args: str) -> str:
        try:
            out = self.repo.git.execute(
                ["git", "-c", "core.quotepath=off", *args], stdout_as_string=False
            )
        except git.GitCommandError as exc:
            raise GitAttributionError(
                f"git {args[0]} failed: {exc.stderr.strip()}", where=str(self.repo.working_dir)
            ) from None
        assert isinstance(out, bytes)
        return out.decode("utf-8", "surrogateescape")


class _EmptyDiff:
    files: tuple[FileChangeLike, ...] = ()


def _text(line: HunkLine) -> str:
    return line.data.decode("utf-8", "surrogateescape").rstrip("\n").rstrip("\r")


def _first(start: int, length: int) -> int:
    return start if length else start + 1


def _unique(commits: Iterable[CommitInfo]) -> list[CommitInfo]:
    return list({c.sha: c for c in commits}.values())


def _list(commits: Sequence[CommitInfo]) -> str:
    word = "commit" if len(commits) == 1 else "commits"
    return f"{word} " + "; ".join(c.describe() for c in commits)


def _parse_patch(patch: str) -> tuple[dict[str, Counter[str]], dict[str, Counter[str]], set[str]]:
    """Added and removed line texts per path, and every touched path, of one commit's -U0 diff."""
    added: dict[str, Counter[str]] = {}
    removed: dict[str, Counter[str]] = {}
    paths: set[str] = set()
    old_path = new_path = None
    in_hunk = False
    for line in patch.split("\n"):
        if line.startswith("diff --git "):
            in_hunk = False
            old_path = new_path = None
            rest = line[len("diff --git ") :]
            # NOTE: "a/X b/X" without renames: both halves are the same path.
            half = (len(rest) - 1) // 2
            if rest[:2] == "a/" and rest[half + 1 : half + 3] == "b/":
                paths.add(rest[2:half])
        elif not in_hunk and line.startswith("--- "):
            old_path = _strip_prefix(line[4:], "a/")
        elif not in_hunk and line.startswith("+++ "):
            new_path = _strip_prefix(line[4:], "b/")
            for p in (old_path, new_path):
                if p is not None:
                    paths.add(p)
        elif line.startswith("@@"):
            in_hunk = True
        elif in_hunk and line.startswith("+") and new_path is not None:
            added.setdefault(new_path, Counter())[line[1:].rstrip("\r")] += 1
        elif in_hunk and line.startswith("-") and old_path is not None:
            removed.setdefault(old_path, Counter())[line[1:].rstrip("\r")] += 1
    return added, removed, paths


def _strip_prefix(name: str, prefix: str) -> str | None:
    name = name.rstrip("\t")
    if name == "/dev/null":
        return None
    return name[len(prefix) :] if name.startswith(prefix) else name


def _parse_blame(out: str) -> dict[int, tuple[str, str]]:
    result: dict[int, tuple[str, str]] = {}
    current: tuple[str, int] | None = None
    for line in out.split("\n"):
        if line.startswith("\t"):
            if current is not None:
                result[current[1]] = (current[0], line[1:].rstrip("\r"))
            current = None
            continue
        m = _BLAME_HEADER.match(line)
        if m:
            current = (m.group(1), int(m.group(3)))
    return result
