"""Git attribution by replay: the minimal patch is OLD plus the security commits, on trees.

How it works (one ``git log`` for the range, one blob read per touched file version):

1. ``prepare`` reads ``git log --raw OLDREF..NEWREF`` once, oldest first in topological
   order: every commit with its parents, message and the blobs of the files it changed. A
   commit is a *security commit* when its message matches ``security_pattern``; merge
   commits are skipped (their changes are in the commits they merge).
2. :func:`patchd.bundle.replay.replay` applies the commits, in order, to the OLD release's
   copy of every file a security commit touched: once the security commits only (the
   *secure* file), once all of them (the *full* file, which should be NEW's). Each commit
   is a 3-way merge against its own parent blob, never a line match, and every line
   remembers which commit added it.
3. The *security changes* of a file are the runs where the secure file differs from OLD,
   read from the line tags. Each is assigned to the release hunk whose OLD range holds it;
   a release hunk with security changes is kept (split down to them when it also holds
   other changes), one without is dropped naming the commits its lines come from.
4. Cross-check: every line a security commit added must still be in the full replay, and
   no later commit may put back a line a security commit removed; a security change must
   lie in the release diff. Otherwise the build stops and names the commit that rewrote
   or reverted the fix (:class:`ReplayCheckError`).

A security commit that does not replay on OLD's file (3-way conflict: OLD differs from
the repository where the commit changes) leaves that file's hunks undecided with the
reason. Paths: the repository may be a sub-folder of the release (``prefix``): release
path ``typo3/sysext/core/Classes/X.php`` is repository path ``Classes/X.php`` for
``prefix="typo3/sysext/core/"``; release paths outside the prefix, and files no commit of
the range touched, get no opinion. Repository paths the release does not ship (tests,
docs) are ignored.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import git

from patchd.bundle.interface import (
    Classifier,
    FileChangeLike,
    ReadRelease,
    ReleaseDiffLike,
    ReleaseHunkLike,
    Verdict,
)
from patchd.bundle.replay import Commit, FileStep, Replay, ReplayedFile, replay
from patchd.engine.model import Hunk
from patchd.errors import PatchdError, UsageError
from patchd.release.linediff import diff_lines, split_lines

DEFAULT_SECURITY_PATTERN: re.Pattern[str] = re.compile(
    r"\[SECURITY\]|\bCVE-\d{4}-\d{4,}\b|\b(?:XSS|CSRF|SQL[ -]?injection|SQLi|RCE"
    r"|remote[ -]code[ -]execution|path[ -]traversal|directory[ -]traversal|SSRF|XXE"
    r"|open[ -]redirect|privilege[ -]escalation|security)\b",
    re.IGNORECASE,
)
CVE_RE = re.compile(r"\bCVE-\d{4}-\d{4,}\b", re.IGNORECASE)
_NULL_SHA = "0" * 40
_ALNUM = re.compile(rb"[A-Za-z0-9]")


class GitAttributionError(PatchdError):
    """The git repository or the revision range cannot be read."""


class ReplayCheckError(GitAttributionError):
    """The security commits' result is not what NEW ships: the build stops and explains."""

    exit_code = 1


@dataclass(frozen=True)
class CommitInfo:
    """One commit of the range as far as attribution needs it."""

    sha: str
    parents: tuple[str, ...]
    message: str
    security: bool
    paths: frozenset[str] = frozenset()
    steps: tuple[FileStep, ...] = ()

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


@dataclass(frozen=True)
class SecurityRun:
    """One security change of a file: OLD lines ``[start, end)`` (0-based) become ``new``."""

    start: int
    end: int
    new: tuple[bytes, ...]
    commits: tuple[str, ...]


@dataclass
class FileAttribution:
    """A release file a security commit touched: its security runs per release hunk id."""

    replayed: ReplayedFile
    runs: list[SecurityRun]
    by_hunk: dict[str, list[SecurityRun]] = field(default_factory=dict)
    #: the full replay gave NEW's file exactly (the tags then name every hunk's commits)
    full_is_new: bool = False


class GitAttribution(Classifier):
    """Attribute release hunks to commits of ``rev_range`` (``OLDREF..NEWREF``) in ``repo``."""

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
        self.order: list[str] = []  # oldest first (topological)
        self.files: dict[str, FileAttribution] = {}
        self.replayed: Replay | None = None
        self._read_old: ReadRelease | None = None
        self._read_new: ReadRelease | None = None
        self._prepared = False

    def bind_releases(self, read_old: ReadRelease, read_new: ReadRelease) -> None:
        """The OLD and NEW release files the commits are replayed on (before ``prepare``)."""
        self._read_old, self._read_new = read_old, read_new

    # -- preparation -------------------------------------------------------------------

    def prepare(self, diff: ReleaseDiffLike) -> None:
        """Read the range, replay it on OLD's files and check the result against NEW."""
        if self._prepared:
            return
        self._prepared = True
        self._read_log()
        if self._read_old is None or self._read_new is None:
            raise GitAttributionError(
                "git attribution needs the OLD and NEW release files (bind_releases)"
            )
        commits = [
            Commit(c.sha, c.security, c.steps)
            for c in (self.commits[s] for s in self.order)
            if len(c.parents) <= 1
        ]
        self.replayed = replay(
            commits, self._read_blob, self._read_old, self._read_new, self.release_path
        )
        changes = {c.path: c for c in diff.files}
        problems: list[str] = []
        for f in self.replayed.files.values():
            if any(self.commits[s.sha].security for s in f.stuck):
                self.files[f.path] = FileAttribution(f, [])
                continue
            fa = FileAttribution(f, _security_runs(f), full_is_new=self._full_is_new(f))
            self.files[f.path] = fa
            problems.extend(self._cross_check(fa, changes.get(f.path)))
        if problems:
            raise ReplayCheckError(
                "the security commits of "
                f"{self.rev_range} do not give what NEW ships, so the minimal patch would "
                "not be NEW's fix: " + "; ".join(problems)
            )

    def _read_log(self) -> None:
        out = self._git(
            "log",
            "--topo-order",
            "--reverse",
            "--raw",
            "-z",
            "--no-abbrev",
            "--no-renames",
            "--no-color",
            "--format=%x01%H%x00%P%x00%B%x02",
            self.rev_range,
        )
        for chunk in out.split("\x01")[1:]:
            head, _, raw = chunk.partition("\x02")
            sha, parents, message = head.split("\x00", 2)
            steps = tuple(_parse_raw(raw))
            info = CommitInfo(
                sha,
                tuple(parents.split()),
                message,
                bool(self.security_pattern.search(message)),
                frozenset(s.repo_path for s in steps),
                steps,
            )
            self.commits[sha] = info
            self.order.append(sha)

    def _read_blob(self, sha: str) -> bytes:
        try:
            return bytes(self.repo.odb.stream(bytes.fromhex(sha)).read())
        except (ValueError, git.BadObject) as exc:
            raise GitAttributionError(f"cannot read blob {sha}: {exc}") from None

    def _full_is_new(self, f: ReplayedFile) -> bool:
        assert self._read_new is not None
        return not f.stuck and f.full.data == self._read_new(f.path)

    # -- the cross-check ---------------------------------------------------------------

    def _cross_check(self, fa: FileAttribution, change: FileChangeLike | None) -> list[str]:
        f = fa.replayed
        problems: list[str] = []
        if not f.stuck:
            survivors = set(f.full.tags)
            for tag in f.secure.tags:
                if tag[0] == "old" or tag in survivors:
                    continue
                by = f.full.removed_by.get(tag)
                who = f"commit {self.commits[by].describe()}" if by else "a later change"
                added = self.commits[tag[0]].describe()
                problems.append(
                    f"{f.path}: a line security commit {added} added is not in NEW: "
                    f"{who} removed or rewrote it"
                )
                break
            problems.extend(self._reverted(f))
        if not fa.full_is_new:
            # NOTE: the history does not give NEW's file exactly (a commit did not replay,
            # or the release generates part of the file): check the text NEW ships.
            new_lines = split_lines(self._read_new_file(f.path) or b"")
            for run in fa.runs:
                if run.new and not _contains(new_lines, run.new):
                    problems.append(
                        f"{f.path}: the lines security {_list(self._infos(run.commits))} adds "
                        f"at OLD line {run.start + 1} are not in NEW's file"
                    )
        if change is None:
            if fa.runs:
                problems.append(f"{f.path}: the security commits change it, NEW does not")
            return problems
        hunks = list(change.hunks)
        if change.kind == "added" and f.secure.data != self._read_new_file(f.path):
            problems.append(
                f"{f.path}: the file a security commit adds was changed again before NEW by "
                f"{_list(self._later(f))}; a new file can only ship whole"
            )
            return problems
        if change.kind in ("added", "removed", "binary"):
            if hunks and fa.runs:
                fa.by_hunk[hunks[0].id] = list(fa.runs)
            return problems
        for run in fa.runs:
            target = _assign(run, hunks)
            if target is None:
                problems.append(
                    f"{f.path}: the change of security {_list(self._infos(run.commits))} at "
                    f"OLD line {run.start + 1} is not in NEW (a later commit reverted it)"
                )
                continue
            fa.by_hunk.setdefault(target.id, []).append(run)
        return problems

    def _reverted(self, f: ReplayedFile) -> list[str]:
        """A line a security commit removed that a later non-security commit put back in
        the same place (between the same surviving neighbours)."""
        tags = f.secure.tags
        removed = [(t, sha) for t, sha in f.secure.removed_by.items() if t[0] == "old"]
        if not removed or f.old is None or f.full.lines is None:
            return []
        old_lines = split_lines(f.old)
        position = {t: i for i, t in enumerate(f.full.tags)}
        secure_old = sorted(t[1] for t in tags if t[0] == "old")
        for (_, n), sha in sorted(removed):
            text = old_lines[n]
            if not _ALNUM.search(text):
                continue
            before = max((k for k in secure_old if k < n), default=None)
            after = min((k for k in secure_old if k > n), default=None)
            lo = position.get(("old", before), -1) if before is not None else -1
            hi = position.get(("old", after), len(f.full.tags)) if after is not None else None
            if hi is None:
                hi = len(f.full.tags)
            for i in range(lo + 1, hi):
                tag = f.full.tags[i]
                if (
                    f.full.lines[i] == text
                    and tag[0] not in ("old", sha)
                    and not self.commits[tag[0]].security
                ):
                    return [
                        f"{f.path}: security commit {self.commits[sha].describe()} removed "
                        f"line {n + 1} ({text.decode('utf-8', 'replace').strip()!r}); "
                        f"commit {self.commits[tag[0]].describe()} put it back"
                    ]
        return []

    def _read_new_file(self, path: str) -> bytes | None:
        assert self._read_new is not None
        return self._read_new(path)

    def _later(self, f: ReplayedFile) -> list[CommitInfo]:
        return [self.commits[s] for s in f.full.commits if not self.commits[s].security]

    def _infos(self, shas: Iterable[str]) -> list[CommitInfo]:
        return [self.commits[s] for s in dict.fromkeys(shas)]

    # -- classification ----------------------------------------------------------------

    def classify(self, hunk: ReleaseHunkLike | None, change: FileChangeLike) -> Verdict | None:
        """Keep the security changes (split where needed), drop the rest; None when git
        cannot tell (outside the prefix, or no commit of the range touched the file)."""
        repo_path = self.repo_path(change.path)
        if repo_path is None:
            return None
        fa = self.files.get(change.path)
        if fa is None:
            touching = [self.commits[s] for s in self.order if repo_path in self.commits[s].paths]
            if not touching:
                return None
            return self._drop(touching, what="from" if hunk is not None else "file changed by")
        stuck = [s for s in fa.replayed.stuck if self.commits[s.sha].security]
        if stuck:
            first = stuck[0]
            return Verdict(
                "undecided",
                f"security commit {self.commits[first.sha].describe()} does not replay on "
                f"OLD's {change.path}: {first.reason}; decide with --rules or --review",
                classifier=self.name,
                commits=(first.sha[:7],),
            )
        hunk_id = hunk.id if hunk is not None else None
        runs = fa.by_hunk.get(hunk_id, []) if hunk_id is not None else list(fa.runs)
        if not runs:
            return self._drop(self._hunk_commits(fa, hunk), what="from")
        shas = tuple(dict.fromkeys(s for r in runs for s in r.commits))
        security = self._infos(shas)
        if hunk is None or change.kind != "modified":
            return self._keep(security, what="from")
        old = split_lines(fa.replayed.old or b"")
        whole = _apply_runs(old, [_as_run(hunk.hunk)])
        mine = _apply_runs(old, runs)
        if mine == whole:
            return self._keep(security, what="from")
        split = tuple(diff_lines(old, mine))
        others = [c for c in self._hunk_commits(fa, hunk) if c.sha not in shas]
        rest = f"drops the rest (from {_list(others)})" if others else "drops the rest"
        return Verdict(
            "keep",
            f"split: keeps the changes of security {_list(security)}; {rest}",
            classifier=self.name,
            split=split,
            commits=tuple(c.short for c in security),
        )

    def _keep(self, commits: Sequence[CommitInfo], *, what: str) -> Verdict:
        return Verdict(
            "keep",
            f"{what} security {_list(commits)}",
            classifier=self.name,
            commits=tuple(c.short for c in commits),
        )

    def _drop(self, commits: Sequence[CommitInfo], *, what: str) -> Verdict:
        named = [c for c in commits if not c.security] or list(commits)
        label = "non-security " if all(not c.security for c in named) else ""
        reason = f"{what} {label}{_list(named)}" if named else f"{what} no commit of the range"
        return Verdict("drop", reason, classifier=self.name, commits=tuple(c.short for c in named))

    def _hunk_commits(self, fa: FileAttribution, hunk: ReleaseHunkLike | None) -> list[CommitInfo]:
        """The commits a release hunk's lines come from (exact when the full replay gave
        NEW's file), else every commit that changed the file in the range."""
        f = fa.replayed
        if hunk is None or not fa.full_is_new:
            return self._infos(f.full.commits)
        h = hunk.hunk
        shas: list[str] = []
        new_no = h.new_start - 1 if h.new_len else h.new_start
        old_no = h.old_start - 1 if h.old_len else h.old_start
        for ln in h.lines:
            if ln.kind == "+":
                tag = f.full.tags[new_no]
                if tag[0] != "old":
                    shas.append(tag[0])
                new_no += 1
            elif ln.kind == "-":
                by = f.full.removed_by.get(("old", old_no))
                if by:
                    shas.append(by)
                old_no += 1
            else:
                old_no += 1
                new_no += 1
        return self._infos(shas) or self._infos(f.full.commits)

    def repo_path(self, release_path: str) -> str | None:
        """The repository path of a release path, or None outside the prefix."""
        if not self.prefix:
            return release_path
        if release_path.startswith(self.prefix):
            return release_path[len(self.prefix) :]
        return None

    def release_path(self, repo_path: str) -> str:
        """The release path of a repository path."""
        return self.prefix + repo_path

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


def _parse_raw(raw: str) -> Iterable[FileStep]:
    """The file steps of one commit's ``--raw -z`` output (submodules skipped)."""
    parts = raw.strip("\n").split("\x00")
    i = 0
    while i < len(parts):
        meta = parts[i].strip("\n")
        if not meta.startswith(":"):
            i += 1
            continue
        path = parts[i + 1] if i + 1 < len(parts) else ""
        i += 2
        fields = meta[1:].split()
        if len(fields) < 5 or "160000" in fields[:2]:
            continue
        old_blob, new_blob = fields[2], fields[3]
        yield FileStep(
            path,
            None if old_blob == _NULL_SHA else old_blob,
            None if new_blob == _NULL_SHA else new_blob,
        )


def _security_runs(f: ReplayedFile) -> list[SecurityRun]:
    """The runs where the secure replay differs from OLD, read from the line tags."""
    old_n = len(split_lines(f.old)) if f.old is not None else 0
    if f.secure.lines is None:
        if f.old is None:
            return []
        commits = tuple(dict.fromkeys(f.secure.removed_by.values()))
        return [SecurityRun(0, old_n, (), commits)]
    runs: list[SecurityRun] = []
    expect = 0
    added: list[bytes] = []
    added_by: list[str] = []

    def flush(upto: int) -> None:
        nonlocal added, added_by
        if upto > expect or added:
            removed_by = [f.secure.removed_by.get(("old", k), "") for k in range(expect, upto)]
            commits = tuple(dict.fromkeys(s for s in [*added_by, *removed_by] if s))
            runs.append(SecurityRun(expect, upto, tuple(added), commits))
        added, added_by = [], []

    for line, tag in zip(f.secure.lines, f.secure.tags, strict=True):
        if tag[0] == "old":
            flush(tag[1])
            expect = tag[1] + 1
        else:
            added.append(line)
            added_by.append(str(tag[0]))
    flush(old_n)
    return runs


def _contains(lines: Sequence[bytes], block: Sequence[bytes]) -> bool:
    n = len(block)
    first = block[0]
    return any(
        lines[i] == first and tuple(lines[i : i + n]) == tuple(block)
        for i in range(len(lines) - n + 1)
    )


def _as_run(h: Hunk) -> SecurityRun:
    first = h.old_start - 1 if h.old_len else h.old_start
    return SecurityRun(first, first + h.old_len, tuple(h.new_lines), ())


def _apply_runs(old: list[bytes], runs: Sequence[SecurityRun]) -> list[bytes]:
    out = list(old)
    for r in sorted(runs, key=lambda r: r.start, reverse=True):
        out[r.start : r.end] = r.new
    return out


def _assign(run: SecurityRun, hunks: Sequence[ReleaseHunkLike]) -> ReleaseHunkLike | None:
    """The release hunk whose OLD range holds (most of) ``run``; None when none touches it."""
    best, best_overlap = None, -1
    for rh in hunks:
        h = rh.hunk
        first = h.old_start - 1 if h.old_len else h.old_start
        end = first + h.old_len
        if run.end > run.start:
            overlap = min(end, run.end) - max(first, run.start)
        else:
            overlap = 0 if first <= run.start <= end else -1
        if overlap >= 0 and overlap > best_overlap:
            best, best_overlap = rh, overlap
    return best


def _list(commits: Sequence[CommitInfo]) -> str:
    word = "commit" if len(commits) == 1 else "commits"
    return f"{word} " + "; ".join(c.describe() for c in commits)
