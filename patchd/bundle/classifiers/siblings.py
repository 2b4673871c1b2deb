"""Sibling releases: a change is security when other branches shipped the same change.

Vendors that mark nothing in their history still release every supported branch on the
same security day (WordPress 6.4.3, 6.3.3, 6.2.4, ...), and the fix is the one change all
those releases share. ``patchd build OLD NEW --sibling OLD2 NEW2 ...`` gives this
classifier each sibling pair's release diff (:class:`SiblingRelease`).

Matching is on *changes*, not hunks, so context and offsets may differ per branch:

- a hunk is cut into **runs** of adjacent changed lines
  (:func:`patchd.bundle.split.change_runs`);
- a run's **key** is the multiset of its removed lines and the multiset of its added lines,
  each line whitespace-normalised (runs of whitespace collapsed, ends stripped) and blank
  lines left out. Multisets, not sequences, because two diffs of the same change may align
  a repeated line differently (a closing ``}`` added above the new method in one branch
  and below it in another). Removed and added lines must be equal after normalisation:
  there is no fuzzy matching. A run whose removed and added lines are equal after
  normalisation (a whitespace change) is **neutral**: no evidence either way, never kept
  by a split;
- a run is **found** in a sibling when that sibling's diff of the *same path* has a run
  with the same key (presence, not count: the same fix made twice in one file is still
  the same fix);
- a run of punctuation only (``}``, ``);``, ``?>``: no letter or digit on any line) is a
  **follower**: too common to be evidence on its own (a lone ``}`` added somewhere in the
  same file is no proof of anything). It follows its hunk: kept with a hunk kept whole,
  kept in a split only when found in N siblings itself, and never the reason for a keep.

The rule, with ``min_siblings`` = N (default: a majority of the siblings given,
``n // 2 + 1``; ``--min-siblings``):

- a run found in at least N siblings is **security**;
- a run found in fewer is **not security** only when at least N siblings *could* have made
  it: their OLD file holds the code it changes (every removed line, or, for a pure
  addition, the unchanged lines right above and below it; for a file without such lines,
  the file itself). A branch that never had the code cannot show the fix, and a run
  without that evidence is **unknown**.

Per hunk, over its non-follower runs: every run security -> ``keep``; some security, the
rest not -> ``keep`` with a split (:func:`patchd.bundle.split.split_hunk`) that ships only
the security runs (and followers found in N siblings); every run not security -> ``drop``;
any unknown run -> ``undecided`` (a suggestion: the chain goes on,
and a build never drops an undecided hunk silently). Every verdict carries ``siblings``:
the labels (NEW versions) of the siblings where a change of the hunk was found.

NOTE: the classifier sits after noise in the chain on purpose: release noise that every
branch shares (version bumps, bundled plugin updates, release notes) is dropped before it
could pass as "the same change everywhere".
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from patchd.bundle.interface import (
    Classifier,
    FileChangeLike,
    ReleaseDiffLike,
    ReleaseHunkLike,
    Verdict,
)
from patchd.bundle.split import change_runs, split_hunk
from patchd.engine.model import HunkLine

#: A run of changed lines: (sorted removed lines, sorted added lines), normalised.
RunKey = tuple[tuple[str, ...], tuple[str, ...]]
#: Reads a release file by relative path; None when the file does not exist.
ReadFile = Callable[[str], bytes | None]
#: What the siblings say about one run (see the module docstring).
RunState = Literal["security", "not", "unknown"]


def normalise(text: str) -> str:
    """One line with its whitespace runs collapsed to one space and its ends stripped."""
    return " ".join(text.split())


def _line(ln: HunkLine) -> str:
    return normalise(ln.data.decode("utf-8", "surrogateescape"))


def run_key(lines: Sequence[HunkLine]) -> RunKey | None:
    """The key of one run of changed lines; None for a neutral (whitespace-only) run."""
    removed = sorted(t for ln in lines if ln.kind == "-" and (t := _line(ln)))
    added = sorted(t for ln in lines if ln.kind == "+" and (t := _line(ln)))
    if removed == added:
        return None
    return tuple(removed), tuple(added)


def default_min_siblings(count: int) -> int:
    """A majority of ``count`` siblings: ``count // 2 + 1`` (1 of 1, 2 of 2 or 3, 3 of 4)."""
    return count // 2 + 1


@dataclass
class SiblingRelease:
    """One sibling pair as the classifier sees it: its label and its changes per path.

    ``read_old`` reads the sibling's OLD file (for "could this branch have made the
    change?"); ``has_file`` says whether the path exists in the sibling's OLD or NEW.
    """

    label: str
    runs: Mapping[str, frozenset[RunKey]]
    read_old: ReadFile
    has_file: Callable[[str], bool]
    _old_lines: dict[str, frozenset[str]] = field(default_factory=dict, repr=False)

    @classmethod
    def from_diff(
        cls,
        label: str,
        diff: ReleaseDiffLike,
        read_old: ReadFile,
        has_file: Callable[[str], bool],
    ) -> SiblingRelease:
        """Index the runs of every hunk of a sibling's release diff by path."""
        runs: dict[str, set[RunKey]] = {}
        for change in diff.files:
            for rh in change.hunks:
                lines = rh.hunk.lines
                for start, end in change_runs(lines):
                    key = run_key(lines[start:end])
                    if key is not None:
                        runs.setdefault(change.path, set()).add(key)
        return cls(label, {p: frozenset(k) for p, k in runs.items()}, read_old, has_file)

    def old_lines(self, path: str) -> frozenset[str]:
        """The normalised, non-blank lines of the sibling's OLD file (empty when absent)."""
        if path not in self._old_lines:
            data = self.read_old(path)
            text = data.decode("utf-8", "surrogateescape") if data is not None else ""
            self._old_lines[path] = frozenset(t for ln in text.splitlines() if (t := normalise(ln)))
        return self._old_lines[path]


@dataclass(frozen=True)
class _Run:
    start: int
    end: int
    key: RunKey
    found: tuple[str, ...]  # labels of the siblings that made this change
    could: int  # how many siblings had the code this run changes
    follower: bool  # punctuation only: no evidence on its own

    def state(self, need: int) -> RunState:
        if len(self.found) >= need:
            return "security"
        return "not" if self.could >= need else "unknown"


class SiblingsClassifier(Classifier):
    """Keep the changes that at least ``min_siblings`` sibling releases share."""

    name = "siblings"

    def __init__(self, siblings: Sequence[SiblingRelease], min_siblings: int | None = None):
        if not siblings:
            raise ValueError("SiblingsClassifier needs at least one sibling release")
        self.siblings = tuple(siblings)
        self.min_siblings = (
            min_siblings if min_siblings is not None else default_min_siblings(len(siblings))
        )
        if not 1 <= self.min_siblings <= len(self.siblings):
            raise ValueError(
                f"min_siblings must be 1 to {len(self.siblings)}, not {self.min_siblings}"
            )

    @property
    def labels(self) -> tuple[str, ...]:
        """Every sibling's label, in the order given."""
        return tuple(s.label for s in self.siblings)

    def classify(self, hunk: ReleaseHunkLike | None, change: FileChangeLike) -> Verdict | None:
        """keep / keep with split / drop / undecided (see the module docstring), or None
        for a hunkless change or a hunk with only whitespace changes."""
        if hunk is None:
            return None
        lines = hunk.hunk.lines
        every = [
            self._run(change.path, lines, start, end, key)
            for start, end in change_runs(lines)
            if (key := run_key(lines[start:end])) is not None
        ]
        runs = [r for r in every if not r.follower]
        if not runs:
            return None
        need = self.min_siblings
        states = [r.state(need) for r in runs]
        found = self._ordered(label for r in every for label in r.found)
        security = [r for r, s in zip(runs, states, strict=True) if s == "security"]
        others = [r for r, s in zip(runs, states, strict=True) if s != "security"]
        if "unknown" in states:
            reason = self._unknown_reason(change.path, runs)
            if security:
                reason = (
                    f"{len(security)} of {len(runs)} changes shared with siblings, but {reason}"
                )
            return self._verdict("undecided", reason, found)
        if not others:
            return self._verdict("keep", self._keep_reason(security), found)
        if not security:
            return self._verdict("drop", self._drop_reason(runs), found)
        shipped = security + [r for r in every if r.follower and len(r.found) >= need]
        keep_index = {i for r in shipped for i in range(r.start, r.end)}
        parts = split_hunk(hunk, lambda i, _ln: i in keep_index)
        if parts is None or not parts[0]:  # NOTE: runs are split_hunk's unit; defensive
            return self._verdict("undecided", "siblings: the shared change cannot be split", found)
        reason = (
            f"split: keeps {len(security)} of {len(runs)} changes: {self._keep_reason(security)}"
            f"; the other {len(others)} {self._drop_reason(others)}"
        )
        return Verdict("keep", reason, self.name, split=tuple(parts[0]), siblings=found)

    def _verdict(self, decision: str, reason: str, found: tuple[str, ...]) -> Verdict:
        return Verdict(decision, reason, self.name, siblings=found)  # type: ignore[arg-type]

    def _run(self, path: str, lines: Sequence[HunkLine], start: int, end: int, key: RunKey) -> _Run:
        found = tuple(s.label for s in self.siblings if key in s.runs.get(path, ()))
        anchors = _anchors(lines, start, end, key)
        could = sum(1 for s in self.siblings if self._could(s, path, anchors))
        follower = not any(ch.isalnum() for side in key for line in side for ch in line)
        return _Run(start, end, key, found, could, follower)

    @staticmethod
    def _could(sibling: SiblingRelease, path: str, anchors: tuple[str, ...]) -> bool:
        """Whether ``sibling`` had the code a run changes (so it could have changed it)."""
        if not anchors:
            return sibling.has_file(path)
        old = sibling.old_lines(path)
        return all(a in old for a in anchors)

    def _ordered(self, labels: Iterable[str]) -> tuple[str, ...]:
        seen = set(labels)
        return tuple(label for label in self.labels if label in seen)

    def _keep_reason(self, runs: Sequence[_Run]) -> str:
        n = len(self.siblings)
        labels = ", ".join(self._ordered(label for r in runs for label in r.found))
        if len({r.found for r in runs}) == 1:
            return f"same change in {len(runs[0].found)} of {n} sibling releases ({labels})"
        least = min(len(r.found) for r in runs)
        return f"each change in at least {least} of {n} sibling releases ({labels})"

    def _drop_reason(self, runs: Sequence[_Run]) -> str:
        n = len(self.siblings)
        found = self._ordered(label for r in runs for label in r.found)
        if not found:
            return f"found in none of the sibling releases {', '.join(self.labels)}"
        most = max(len(r.found) for r in runs)
        return (
            f"found in only {most} of {n} sibling releases ({', '.join(found)}), fewer than "
            f"--min-siblings {self.min_siblings}"
        )

    def _unknown_reason(self, path: str, runs: Sequence[_Run]) -> str:
        could = min(r.could for r in runs if r.state(self.min_siblings) == "unknown")
        return (
            f"siblings cannot tell: only {could} of {len(self.siblings)} sibling releases "
            f"had the code this change touches in {path} (--min-siblings {self.min_siblings})"
        )


def _anchors(lines: Sequence[HunkLine], start: int, end: int, key: RunKey) -> tuple[str, ...]:
    """What a sibling's OLD file must hold for the run to be possible there: its removed
    lines, or for a pure addition the nearest non-blank context line above and below."""
    removed, _ = key
    if removed:
        return tuple(dict.fromkeys(removed))
    out: list[str] = []
    for rng in (range(start - 1, -1, -1), range(end, len(lines))):
        for i in rng:
            if lines[i].kind == " " and (t := _line(lines[i])):
                out.append(t)
                break
    return tuple(out)
