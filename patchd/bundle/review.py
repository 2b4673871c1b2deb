"""Interactive review of undecided hunks (``patchd build --review``), like ``git add -p``.

For each hunk no classifier decided, the reviewer sees the hunk, its id and the
classifiers' suggestions, and answers one line:

- ``y`` keep the hunk, ``n`` drop it;
- ``s`` split it: each run of adjacent changed lines is shown and answered ``y``/``n``;
- ``q`` stop reviewing (this and the remaining hunks stay undecided and are dropped);
- ``?`` help. End of input counts as ``q``, so answers can be piped in.

Every decision is appended to the rules file at once (:func:`patchd.bundle.rules.
append_rule`), so the next build of the same releases decides the same way without a
review: ``include``/``exclude`` by hunk id, and for a split ``include`` by hunk id plus a
``line`` regex matching exactly the kept lines (the builder splits rule keeps with a
``line`` regex down to the matching runs).
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from patchd.bundle.builder import ConflictResolver, Reviewer, hunk_text, split_by_regex
from patchd.bundle.interface import ClassifiedHunk, Verdict
from patchd.bundle.report import ManualHunk
from patchd.bundle.rules import Matcher, Rule, append_rule, load_rules
from patchd.bundle.split import change_runs
from patchd.engine.model import HunkLine

HELP = (
    "y - keep this hunk\n"
    "n - drop this hunk\n"
    "s - split this hunk and decide each change\n"
    "q - quit; this and the remaining hunks stay undecided (dropped)\n"
    "? - print help\n"
)

ReadLine = Callable[[], str | None]
Write = Callable[[str], None]


def make_reviewer(rules_path: Path, read_line: ReadLine, write: Write) -> Reviewer:
    """A :data:`~patchd.bundle.builder.Reviewer` asking through ``read_line``/``write``.

    ``read_line`` returns one answer line (None at end of input).
    """

    def review(undecided: Sequence[ClassifiedHunk]) -> dict[str, Verdict]:
        decided: dict[str, Verdict] = {}
        total = len(undecided)
        for n, ch in enumerate(undecided, 1):
            write(_describe(ch, n, total))
            verdict = _ask(ch, rules_path, read_line, write)
            if verdict is None:
                write("review stopped; the remaining hunks stay undecided (dropped)\n")
                break
            decided[ch.id] = verdict
        return decided

    return review


def _describe(ch: ClassifiedHunk, n: int, total: int) -> str:
    lines = [f"\n({n}/{total}) {ch.id}  [{ch.change.kind}]\n"]
    for s in ch.suggestions or (ch.verdict,):
        score = f" (score {s.score:.1f})" if s.score is not None else ""
        lines.append(f"  {s.classifier}: {s.reason}{score}\n")
    if ch.hunk is not None:
        lines.append(hunk_text(ch.hunk.hunk))
    else:
        lines.append("  (binary change: no text hunk)\n")
    return "".join(lines)


def _ask(ch: ClassifiedHunk, rules: Path, read_line: ReadLine, write: Write) -> Verdict | None:
    while True:
        write("Keep this hunk [y,n,s,q,?]? ")
        answer = read_line()
        if answer is None:
            return None
        answer = answer.strip().lower()
        if answer == "y":
            return _record(ch, rules, "include", "keep", Matcher(hunk=ch.id))
        if answer == "n":
            return _record(ch, rules, "exclude", "drop", Matcher(hunk=ch.id))
        if answer == "q":
            return None
        if answer == "s":
            verdict = _split(ch, rules, read_line, write)
            if verdict is not None:
                return verdict
            continue
        write(HELP)


def _text(line: HunkLine) -> str:
    return line.data.decode("utf-8", "surrogateescape").rstrip("\r\n")


def _split(ch: ClassifiedHunk, rules: Path, read_line: ReadLine, write: Write) -> Verdict | None:
    if ch.hunk is None:
        write("a binary change cannot be split\n")
        return None
    lines = ch.hunk.hunk.lines
    runs = change_runs(lines)
    if len(runs) < 2:
        write("this hunk has a single run of changes; it cannot be split (answer y or n)\n")
        return None
    kept: list[tuple[int, int]] = []
    for k, (start, end) in enumerate(runs, 1):
        body = "".join(f"{ln.kind}{_text(ln)}\n" for ln in lines[start:end])
        write(f"change {k}/{len(runs)}:\n{body}Keep this change [y,n]? ")
        while True:
            answer = read_line()
            if answer is None:
                return None
            answer = answer.strip().lower()
            if answer in ("y", "n"):
                break
            write("answer y or n: ")
        if answer == "y":
            kept.append((start, end))
    if not kept:
        return _record(ch, rules, "exclude", "drop", Matcher(hunk=ch.id))
    if len(kept) == len(runs):
        return _record(ch, rules, "include", "keep", Matcher(hunk=ch.id))
    texts = sorted({_text(lines[i]) for start, end in kept for i in range(start, end)})
    regex = "^(?:" + "|".join(re.escape(t) for t in texts) + ")$"
    split = split_by_regex(ch.hunk.hunk, ch.hunk, re.compile(regex))
    if split is None:
        write("the kept lines also occur in the other changes; cannot split this way\n")
        return None
    verdict = _record(ch, rules, "include", "keep", Matcher(hunk=ch.id, line=regex))
    return Verdict(
        "keep",
        verdict.reason + " (split: only the changes kept in review)",
        classifier="review",
        rule=verdict.rule,
        split=split,
    )


def _record(
    ch: ClassifiedHunk, rules: Path, action: str, decision: str, matcher: Matcher
) -> Verdict:
    hint = ch.verdict.reason
    comment = f"review: {decision} ({hint})" if hint else f"review: {decision}"
    rule = Rule(**{action: matcher}, comment=comment)
    append_rule(rules, rule)
    label = load_rules(rules)[-1].label
    return Verdict(
        "keep" if decision == "keep" else "drop", comment, classifier="review", rule=label
    )


# -- backport conflicts ------------------------------------------------------------------

CONFLICT_HELP = (
    "e      - edit the resolution in $EDITOR (the two sides are pre-filled; remove the markers)\n"
    "f FILE - take the resolved lines from FILE\n"
    "s      - skip: this version gets no variant for now (listed as manual work)\n"
    "? - print help\n"
)
_MARKERS = ("<<<<<<< ", "=======", ">>>>>>> ")


def make_conflict_resolver(
    read_line: ReadLine, write: Write, *, editor: str | None = None
) -> ConflictResolver:
    """A :data:`~patchd.bundle.builder.ConflictResolver` asking through ``read_line``/``write``:
    the person writes the lines that replace the conflict, in ``editor`` (``$EDITOR``) or
    in a file. The builder records each answer in the rules file."""

    def resolve(version: str, conflict: ManualHunk) -> str | None:
        write(
            f"\nbackport {version}: {conflict.hunk} ({conflict.reason})\n"
            f"release {version} has:\n{_block(conflict.ours)}"
            f"the fix (patched OLD) has:\n{_block(conflict.theirs)}"
        )
        while True:
            write("Resolve [e,f FILE,s,?]? ")
            answer = read_line()
            if answer is None:
                return None
            answer = answer.strip()
            if answer == "s":
                return None
            if answer == "e":
                text = _edit(version, conflict, editor, write)
            elif answer.startswith("f "):
                text = _from_file(Path(answer[2:].strip()), write)
            else:
                write(CONFLICT_HELP)
                continue
            if text is not None:
                return text

    return resolve


def _block(text: str) -> str:
    body = text if text.endswith("\n") or not text else text + "\n"
    return "".join(f"  | {ln}" for ln in body.splitlines(keepends=True)) or "  | (nothing)\n"


def _checked(text: str, write: Write) -> str | None:
    if any(ln.startswith(_MARKERS) for ln in text.splitlines()):
        write("the resolution still has conflict markers (<<<<<<<, =======, >>>>>>>)\n")
        return None
    return text


def _from_file(path: Path, write: Write) -> str | None:
    try:
        return _checked(path.read_text(encoding="utf-8"), write)
    except (OSError, UnicodeDecodeError) as exc:
        write(f"cannot read {path}: {exc}\n")
        return None


def _edit(version: str, conflict: ManualHunk, editor: str | None, write: Write) -> str | None:
    editor = editor or os.environ.get("VISUAL") or os.environ.get("EDITOR")
    if not editor:
        write("no editor: set $EDITOR, or answer 'f FILE'\n")
        return None
    ours = (
        conflict.ours if conflict.ours.endswith("\n") or not conflict.ours else conflict.ours + "\n"
    )
    theirs = conflict.theirs
    if theirs and not theirs.endswith("\n"):
        theirs += "\n"
    draft = f"<<<<<<< release {version}\n{ours}=======\n{theirs}>>>>>>> the fix (patched OLD)\n"
    with tempfile.TemporaryDirectory(prefix="patchd-resolve-") as tmp:
        path = Path(tmp) / "resolution.txt"
        path.write_text(draft, encoding="utf-8")
        proc = subprocess.run([*shlex.split(editor), str(path)], check=False)
        if proc.returncode != 0:
            write(f"the editor exited with {proc.returncode}; nothing recorded\n")
            return None
        return _from_file(path, write)
