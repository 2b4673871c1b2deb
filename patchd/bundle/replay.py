"""Replay the commits of a range on the OLD release's files, remembering every line's origin.

The minimal patch of a ``--git`` build is ``diff(OLD, OLD + the security commits of the
range, applied in order)``. :func:`replay` computes both trees that need, per file touched
by a security commit and shipped by the release:

- *secure*: OLD's file with only the security commits applied;
- *full*: OLD's file with every commit of the range applied (it should be NEW's file).

Each commit is applied as a 3-way merge against its own parent blob
(:func:`patchd.bundle.linemerge.merge_tagged`), so a security commit whose parent contains
earlier non-security changes still lands on OLD-plus-security-only. Every line carries a
tag: ``("old", n)`` for OLD's line *n* (0-based), ``(sha, k)`` for the *k*-th line a
commit added. The tags give the attribution exactly, and they show whether a later commit
removed or rewrote a line a security commit added (the cross-check).

Paths: repository path = release path minus ``prefix``; repository paths the release does
not ship (neither in OLD nor NEW: tests, docs, build files) are ignored and listed.
Merge commits are skipped (their changes are in the commits they merge); the order is
``git rev-list --topo-order --reverse``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from patchd.bundle.linemerge import MergeConflict, Tag, merge_tagged
from patchd.release.linediff import split_lines

#: Reads a blob by its sha (hex); the replay never touches a work tree.
ReadBlob = Callable[[str], bytes]
#: Reads a release file by release path; None when the release does not have it.
ReadRelease = Callable[[str], "bytes | None"]


@dataclass(frozen=True)
class FileStep:
    """One commit's change of one file: blob shas of parent and commit (None: absent)."""

    repo_path: str
    old_blob: str | None
    new_blob: str | None


@dataclass(frozen=True)
class Commit:
    """A commit of the range in replay order, with the files it changed."""

    sha: str
    security: bool
    steps: tuple[FileStep, ...]


@dataclass
class Track:
    """One file during a replay: its lines and their tags (None: the file is absent)."""

    lines: list[bytes] | None
    tags: list[Tag]
    #: tag of a removed line -> the commit that removed it
    removed_by: dict[Tag, str] = field(default_factory=dict)
    commits: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, data: bytes | None) -> Track:
        if data is None:
            return cls(None, [])
        lines = split_lines(data)
        return cls(lines, [("old", n) for n in range(len(lines))])

    @property
    def data(self) -> bytes | None:
        return None if self.lines is None else b"".join(self.lines)


@dataclass(frozen=True)
class Stuck:
    """A commit that did not replay on a file: why, in words."""

    sha: str
    path: str
    reason: str


@dataclass
class ReplayedFile:
    """A release file touched by a security commit: OLD, secure and full replays."""

    path: str
    old: bytes | None
    secure: Track
    full: Track
    stuck: list[Stuck] = field(default_factory=list)


@dataclass
class Replay:
    """The result of :func:`replay`."""

    files: dict[str, ReplayedFile]
    #: repository paths a security commit touched that the release does not ship
    ignored: list[str]


def replay(
    commits: Sequence[Commit],
    read_blob: ReadBlob,
    read_old: ReadRelease,
    read_new: ReadRelease,
    release_path: Callable[[str], str | None],
) -> Replay:
    """Replay ``commits`` (oldest first) on the OLD release's files, see the module doc."""
    touched: set[str] = set()
    ignored: set[str] = set()
    for c in commits:
        if not c.security:
            continue
        for step in c.steps:
            rel = release_path(step.repo_path)
            if rel is None or (read_old(rel) is None and read_new(rel) is None):
                ignored.add(step.repo_path)
            else:
                touched.add(step.repo_path)
    files: dict[str, ReplayedFile] = {}
    for repo_path in sorted(touched):
        rel = release_path(repo_path)
        assert rel is not None
        old = read_old(rel)
        files[repo_path] = ReplayedFile(rel, old, Track.of(old), Track.of(old))
    cache: dict[str, list[bytes]] = {}

    def blob(sha: str | None) -> list[bytes] | None:
        if sha is None:
            return None
        if sha not in cache:
            cache[sha] = split_lines(read_blob(sha))
        return cache[sha]

    for c in commits:
        for step in c.steps:
            f = files.get(step.repo_path)
            if f is None:
                continue
            base, theirs = blob(step.old_blob), blob(step.new_blob)
            tracks = (f.secure, f.full) if c.security else (f.full,)
            for track in tracks:
                problem = _apply(track, base, theirs, c.sha)
                if problem is not None:
                    f.stuck.append(Stuck(c.sha, f.path, problem))
    return Replay(files, sorted(ignored))


def _apply(
    track: Track, base: list[bytes] | None, theirs: list[bytes] | None, sha: str
) -> str | None:
    """Apply one commit's change of one file to ``track``; a reason when it cannot."""
    if track.lines is None:
        if base is not None and theirs is not None:
            return "the commit changes the file, but it is not there"
        if theirs is None:
            return None  # deleted here and there
        track.lines = list(theirs)
        track.tags = [(sha, k) for k in range(len(theirs))]
        track.commits.append(sha)
        return None
    if theirs is None:
        if base is not None and track.lines != base:
            return "the commit deletes the file, but its content here differs from the parent's"
        for t in track.tags:
            track.removed_by[t] = sha
        track.lines, track.tags = None, []
        track.commits.append(sha)
        return None
    if base is None:
        if track.lines == theirs:
            return None
        return "the commit adds the file, but a different one is already there"
    counter = iter(range(1 << 62))
    merged = merge_tagged(base, track.lines, track.tags, theirs, None)
    if merged.conflicts:
        return _conflict_text(merged.conflicts)
    if merged.lines == track.lines:
        return None
    track.lines = merged.lines
    track.tags = [t if t is not None else (sha, next(counter)) for t in merged.tags]
    for t in merged.removed:
        track.removed_by[t] = sha
    track.commits.append(sha)
    return None


def _conflict_text(conflicts: Sequence[MergeConflict]) -> str:
    first = conflicts[0]
    more = f" (and {len(conflicts) - 1} more places)" if len(conflicts) > 1 else ""
    return f"3-way merge conflict: {first.describe()}, which are changed here{more}"
