"""``build-report.json``: every hunk of the full release diff, kept or dropped, and why.

The report is the audit trail of a build. Keys are a stable contract (``patchd show`` and
the security team's scripts read them); keys may be added, none renamed::

    {"format": 1, "bundle": ID,
     "old": {"source", "cms", "version"}, "new": {...},
     "chain": ["rules", "noise", "git", "heuristics"],
     "summary": {"hunks", "kept", "dropped", "undecided", "split"},
     "hunks": [{"id", "path", "file_kind", "decision": "kept"|"dropped",
                "verdict": "keep"|"drop"|"undecided", "classifier", "reason", "score",
                "rule", "split", "suggestions": [{"classifier", "reason", "score"}],
                "text", "commits": [SHORT_SHA, ...]}],
     "variants": [{"version", "file", "status": "ok"|"manual", "offsets",
                   "manual": [{"hunk", "path", "reason", "ours", "theirs"}],
                   "merged": {PATH: "3-way merge" | "3-way merge via VERSION"}}],
     "validation": [{"variant", "check", "ok", "detail"}],
     "uncovered": [VERSION, ...],
     "links": [{"path", "old", "new", "note"}],
     "siblings": {"min_siblings", "releases": [{"label", "old": {...}, "new": {...}}]},
     "closure": {"status": "ok"|"skipped", "files": [PATH], "references": N,
                 "dropped": [{"symbol", "hunk", "path", "line", "split"}],
                 "problems": [], "note", "unreadable": [PATH]}}

Builds with ``--sibling`` (issue 12) add ``siblings`` at the top (the sibling release
pairs used, each labelled by its NEW version, and the ``--min-siblings`` rule) and, per
hunk the sibling classifier looked at, ``siblings``: the labels of the sibling releases
where a change of that hunk was found (``[]``: in none). Both keys are absent from builds
without siblings, and a hunk decided before the sibling classifier (rules, noise, git)
has no ``siblings`` key.

``closure`` is the dependency closure check of ``patch.diff``
(:mod:`patchd.bundle.closure`): the PHP files it read, how many symbol references the kept
hunks add, and ``dropped``, every symbol NEW defines in a hunk the patch leaves out (none
of them is used by a kept hunk, or the build would have stopped: ``problems`` is empty in
a written report). ``skipped`` (with ``note``) when built with ``--no-lint`` and no PHP.
A report written before the check has no ``closure`` key.

``links`` names every symlink the release added, changed or removed (old/new: the link
target, null where there is no link): a patch cannot carry links, so each needs a person.

``uncovered`` lists the versions of the affected set that no variant covers: their
installations get ``dry-run-failed`` with reason ``no-variant`` (update needed).

``decision`` is what the bundle does with the hunk: an ``undecided`` verdict is dropped
(and says so in ``verdict``). ``text`` is the hunk as unified diff text (``@@`` header
and lines, decoded as UTF-8 with replacement), so a reviewer sees dropped hunks too.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from patchd.errors import BundleError

REPORT_FORMAT = 1


@dataclass(frozen=True)
class ReleaseInfo:
    """One input release: where it came from (file name only) and what it is."""

    source: str
    cms: str
    version: str


@dataclass(frozen=True)
class Suggestion:
    """An undecided verdict a classifier offered on the way (shown to the reviewer)."""

    classifier: str
    reason: str
    score: float | None = None


@dataclass(frozen=True)
class HunkEntry:
    """One hunk (or hunkless file change) of the full release diff and its fate."""

    id: str
    path: str
    file_kind: str
    decision: Literal["kept", "dropped"]
    verdict: Literal["keep", "drop", "undecided"]
    classifier: str
    reason: str
    score: float | None = None
    rule: str | None = None
    split: bool = False
    suggestions: tuple[Suggestion, ...] = ()
    text: str = ""
    #: the commits the decision rests on (--git attribution by replay)
    commits: tuple[str, ...] = ()
    siblings: tuple[str, ...] | None = None  # None: siblings not consulted (see above)


@dataclass(frozen=True)
class ManualHunk:
    """A hunk of the minimal patch that did not port to a backport release."""

    hunk: str
    path: str
    reason: str
    ours: str = ""  # a merge conflict: the backport release's lines
    theirs: str = ""  # ... and the lines of OLD with the fix


@dataclass(frozen=True)
class VariantEntry:
    """One backport target: its variant file (None when not stored) and what needs work."""

    version: str
    file: str | None
    status: Literal["ok", "manual"]
    offsets: dict[str, int] = field(default_factory=dict)
    manual: tuple[ManualHunk, ...] = ()
    merged: dict[str, str] = field(default_factory=dict)  # path -> "3-way merge [via V]"
    #: how the variant was made: exact (as is), merge (3-way), fuzz, resolved (a person
    #: resolved merge conflicts, recorded in the rules file)
    method: str = "exact"


@dataclass(frozen=True)
class LinkEntry:
    """A symlink the release added, changed or removed: never in a patch, for a person."""

    path: str
    old: str | None  # the link's target in OLD (None: no link there)
    new: str | None  # ... in NEW
    note: str


@dataclass(frozen=True)
class SiblingEntry:
    """One ``--sibling OLD2 NEW2`` pair, known in hunk entries by ``label`` (NEW2's version)."""

    label: str
    old: ReleaseInfo
    new: ReleaseInfo


@dataclass(frozen=True)
class SiblingsInfo:
    """The sibling releases of a build and how many must share a change."""

    min_siblings: int
    releases: tuple[SiblingEntry, ...]

    def describe(self) -> str:
        """``siblings: 6.3.2 → 6.3.3, ...; a change counts as security when found in >= 2 of 3``
        (printed by ``build`` and ``show``)."""
        pairs = ", ".join(f"{r.old.version} → {r.new.version}" for r in self.releases)
        return (
            f"siblings: {pairs}; a change counts as security when found in >= "
            f"{self.min_siblings} of {len(self.releases)}"
        )


@dataclass(frozen=True)
class CheckEntry:
    """One validation check of one variant."""

    variant: str
    check: str
    ok: bool
    detail: str = ""


@dataclass(frozen=True)
class DroppedDefinition:
    """A symbol NEW defines only in a change the patch leaves out."""

    symbol: str  # e.g. "method Foo::isAllowedX()"
    hunk: str  # the release hunk that defines it
    path: str
    line: int  # in NEW's file
    split: bool = False  # the hunk is kept, but only in part (the definition left out)


@dataclass(frozen=True)
class ClosureProblem:
    """A kept hunk uses a dropped definition."""

    symbol: str
    used_in: str  # the kept hunk's id
    path: str
    line: int  # in the patched file
    defined_in: str  # the dropped hunk's id
    def_path: str
    def_line: int  # in NEW's file
    note: str = ""
    split: bool = False  # the defining hunk is kept, but split: the definition left out


@dataclass(frozen=True)
class ClosureEntry:
    """The closure check of the main patch: ``ok``, ``problems`` (the build stops, so a
    written report never has them) or ``skipped`` (no PHP with --no-lint), with evidence:
    the files read, how many references the kept hunks introduce, the definitions NEW has
    that the patch leaves out, and files PHP could not tokenize."""

    status: Literal["ok", "problems", "skipped"]
    files: tuple[str, ...] = ()
    references: int = 0
    dropped: tuple[DroppedDefinition, ...] = ()
    problems: tuple[ClosureProblem, ...] = ()
    note: str = ""
    unreadable: tuple[str, ...] = ()
    variants: tuple[str, ...] = ()  # backport versions whose variants were checked too


@dataclass(frozen=True)
class BuildReport:
    """The whole report (see the module docstring for the JSON keys)."""

    bundle: str
    old: ReleaseInfo
    new: ReleaseInfo
    chain: tuple[str, ...]
    hunks: tuple[HunkEntry, ...]
    variants: tuple[VariantEntry, ...] = ()
    validation: tuple[CheckEntry, ...] = ()
    uncovered: tuple[str, ...] = ()
    links: tuple[LinkEntry, ...] = ()
    siblings: SiblingsInfo | None = None
    closure: ClosureEntry | None = None

    @property
    def summary(self) -> dict[str, int]:
        """Counts: hunks, kept, dropped, undecided (dropped for lack of a decision), split."""
        return {
            "hunks": len(self.hunks),
            "kept": sum(1 for h in self.hunks if h.decision == "kept"),
            "dropped": sum(1 for h in self.hunks if h.decision == "dropped"),
            "undecided": sum(1 for h in self.hunks if h.verdict == "undecided"),
            "split": sum(1 for h in self.hunks if h.split),
        }

    def to_json(self) -> dict[str, Any]:
        """The JSON object written to ``build-report.json``."""
        out: dict[str, Any] = {
            "format": REPORT_FORMAT,
            "bundle": self.bundle,
            "old": asdict(self.old),
            "new": asdict(self.new),
            "chain": list(self.chain),
            "summary": self.summary,
            "hunks": [asdict(h) for h in self.hunks],
            "variants": [asdict(v) for v in self.variants],
            "validation": [asdict(c) for c in self.validation],
            "uncovered": list(self.uncovered),
            "links": [asdict(link) for link in self.links],
            **({"closure": asdict(self.closure)} if self.closure is not None else {}),
        }
        # NOTE (issue 12): sibling keys only in builds with --sibling, so the reports of
        # other builds stay byte-identical.
        if self.siblings is not None:
            out["siblings"] = asdict(self.siblings)
        for entry in out["hunks"]:
            if entry["siblings"] is None:
                del entry["siblings"]
        return out

    def dumps(self) -> str:
        """Stable, indented JSON text (ends with a newline)."""
        return json.dumps(self.to_json(), indent=2, ensure_ascii=False) + "\n"

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BuildReport:
        """Rebuild from :meth:`to_json` output; ``KeyError``/``TypeError`` when malformed."""
        return cls(
            bundle=data["bundle"],
            old=ReleaseInfo(**data["old"]),
            new=ReleaseInfo(**data["new"]),
            chain=tuple(data["chain"]),
            hunks=tuple(
                HunkEntry(
                    **{
                        **h,
                        "suggestions": tuple(Suggestion(**s) for s in h.get("suggestions", ())),
                        "commits": tuple(h.get("commits", ())),
                        "siblings": _opt_tuple(h.get("siblings")),
                    }
                )
                for h in data["hunks"]
            ),
            variants=tuple(
                VariantEntry(**{**v, "manual": tuple(ManualHunk(**m) for m in v.get("manual", ()))})
                for v in data.get("variants", ())
            ),
            validation=tuple(CheckEntry(**c) for c in data.get("validation", ())),
            uncovered=tuple(data.get("uncovered", ())),
            links=tuple(LinkEntry(**link) for link in data.get("links", ())),
            siblings=_siblings_info(data.get("siblings")),
            closure=_closure(data["closure"]) if data.get("closure") is not None else None,
        )


def _closure(data: dict[str, Any]) -> ClosureEntry:
    return ClosureEntry(
        **{
            **data,
            "files": tuple(data.get("files", ())),
            "dropped": tuple(DroppedDefinition(**d) for d in data.get("dropped", ())),
            "problems": tuple(ClosureProblem(**p) for p in data.get("problems", ())),
            "unreadable": tuple(data.get("unreadable", ())),
            "variants": tuple(data.get("variants", ())),
        }
    )


def _opt_tuple(value: list[str] | None) -> tuple[str, ...] | None:
    return tuple(value) if value is not None else None


def _siblings_info(data: dict[str, Any] | None) -> SiblingsInfo | None:
    if data is None:
        return None
    return SiblingsInfo(
        data["min_siblings"],
        tuple(
            SiblingEntry(r["label"], ReleaseInfo(**r["old"]), ReleaseInfo(**r["new"]))
            for r in data["releases"]
        ),
    )


def load_report(path: Path) -> BuildReport:
    """Read ``build-report.json``; :class:`BundleError` naming the file when unreadable."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return BuildReport.from_json(data)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise BundleError(f"unreadable build report: {exc}", where=str(path)) from None
