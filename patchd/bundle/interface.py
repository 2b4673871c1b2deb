"""The classifier seam: verdicts, the :class:`Classifier` base and the chain that runs them.

Every hunk of the full release diff goes through a chain of classifiers (rules file, noise
filters, git attribution, heuristics -- in that order, see
:func:`patchd.bundle.classifiers.default_chain`). Each classifier answers with a
:class:`Verdict` or ``None`` (no opinion). The first *definite* verdict (``keep`` or
``drop``) wins; ``undecided`` verdicts are collected as suggestions for the reviewer and
the chain goes on. When nobody decides, the hunk is ``undecided`` and the builder drops it
unless a reviewer keeps it (``--review`` appends that decision to the rules file).

Whole-file changes take part too: an added or removed file is classified hunk by hunk like
any other, and a change without hunks (a binary file) is classified once with
``hunk=None``; its :attr:`ClassifiedHunk.id` is ``"<path>@<kind>"``.

NOTE: this module depends only on the *attribute names* of the release diff
(``patchd.release.tree``: ``ReleaseHunk``, ``FileChange``, ``ReleaseDiff``) through
:class:`typing.Protocol` types, so the classifiers can be written and tested without it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from patchd.engine.model import Hunk

Decision = Literal["keep", "drop", "undecided"]
#: Reads a release file by release path; None when absent.
ReadRelease = Callable[[str], "bytes | None"]
FileKind = Literal["added", "removed", "modified", "binary"]

DEFAULT_REASON = "no classifier recognised this hunk"


class ReleaseHunkLike(Protocol):
    """What the chain needs of ``patchd.release.tree.ReleaseHunk``."""

    @property
    def id(self) -> str:
        """The stable hunk id ``<path>@<old_start>-<digest10>``."""
        ...

    @property
    def path(self) -> str:
        """The release path (relative to the release root)."""
        ...

    @property
    def hunk(self) -> Hunk:
        """The hunk itself."""
        ...


class FileChangeLike(Protocol):
    """What the chain needs of ``patchd.release.tree.FileChange``."""

    @property
    def path(self) -> str:
        """The release path (relative to the release root)."""
        ...

    @property
    def kind(self) -> FileKind:
        """added, removed, modified or binary."""
        ...

    @property
    def hunks(self) -> Sequence[ReleaseHunkLike]:
        """The file's hunks (empty for a binary file)."""
        ...


class ReleaseDiffLike(Protocol):
    """What the chain needs of ``patchd.release.tree.ReleaseDiff``."""

    @property
    def files(self) -> Sequence[FileChangeLike]:
        """Every changed file."""
        ...


@dataclass(frozen=True)
class Verdict:
    """One classifier's answer for one hunk.

    ``reason`` is shown to humans (build report, ``patchd show``). ``score`` is set by
    scoring classifiers (heuristics), ``rule`` names the rules-file entry that decided.
    ``split``, when set on a ``keep`` verdict, replaces the hunk by these smaller hunks
    (computed against the old file, see :func:`patchd.bundle.split.split_hunk`): only the
    security part of a mixed hunk is shipped. ``siblings``, set by the sibling classifier,
    names the sibling releases where a change of the hunk was found (issue 12).
    """

    decision: Decision
    reason: str
    classifier: str
    score: float | None = None
    rule: str | None = None
    split: tuple[Hunk, ...] | None = None
    #: evidence: the (short) commits the decision rests on (git attribution)
    commits: tuple[str, ...] = ()
    siblings: tuple[str, ...] | None = None

    @property
    def definite(self) -> bool:
        """True for ``keep`` and ``drop``: the chain stops here."""
        return self.decision != "undecided"


@dataclass(frozen=True)
class ClassifiedHunk:
    """The chain's result for one hunk (or one hunkless file change when ``hunk`` is None)."""

    hunk: ReleaseHunkLike | None
    verdict: Verdict
    suggestions: tuple[Verdict, ...]
    change: FileChangeLike

    @property
    def id(self) -> str:
        """The hunk id, or ``"<path>@<kind>"`` for a file change without hunks."""
        return self.hunk.id if self.hunk is not None else file_change_id(self.change)

    @property
    def path(self) -> str:
        """The file the hunk belongs to."""
        return self.change.path


def file_change_id(change: FileChangeLike) -> str:
    """The id a hunkless file change (a binary file) is known by in reports and rules."""
    return f"{change.path}@{change.kind}"


class Classifier(ABC):
    """One link of the chain. Subclasses set :attr:`name` and implement :meth:`classify`."""

    name: str = "classifier"

    def bind_releases(self, read_old: ReadRelease, read_new: ReadRelease) -> None:  # noqa: B027
        """Receive the OLD and NEW release files before :meth:`prepare` (default: ignore)."""

    def prepare(self, diff: ReleaseDiffLike) -> None:  # noqa: B027 - optional hook
        """Look at the whole release diff before the first :meth:`classify` (default: nothing)."""

    @abstractmethod
    def classify(self, hunk: ReleaseHunkLike | None, change: FileChangeLike) -> Verdict | None:
        """Return a verdict for ``hunk`` of ``change``, or None to let the next one decide.

        ``hunk`` is None only for a file change without hunks (a binary file).
        """


def run_chain(diff: ReleaseDiffLike, chain: Sequence[Classifier]) -> list[ClassifiedHunk]:
    """Classify every hunk of ``diff``; the first definite verdict wins.

    Undecided verdicts become suggestions; a hunk without a definite verdict gets the first
    suggestion as its (undecided) verdict, or the default "no classifier recognised this
    hunk" when there is none.
    """
    for classifier in chain:
        classifier.prepare(diff)
    results: list[ClassifiedHunk] = []
    for change in diff.files:
        targets: Sequence[ReleaseHunkLike | None] = list(change.hunks) or [None]
        for hunk in targets:
            results.append(classify_one(hunk, change, chain))
    return results


def classify_one(
    hunk: ReleaseHunkLike | None, change: FileChangeLike, chain: Sequence[Classifier]
) -> ClassifiedHunk:
    """Run ``chain`` on one hunk (prepare hooks must already have run)."""
    suggestions: list[Verdict] = []
    for classifier in chain:
        verdict = classifier.classify(hunk, change)
        if verdict is None:
            continue
        if verdict.definite:
            return ClassifiedHunk(hunk, verdict, tuple(suggestions), change)
        suggestions.append(verdict)
    final = (
        suggestions[0]
        if suggestions
        else Verdict("undecided", DEFAULT_REASON, classifier="default")
    )
    return ClassifiedHunk(hunk, final, tuple(suggestions), change)
