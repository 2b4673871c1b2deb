"""The rules-file classifier: the security team's explicit decisions, first in the chain.

See :mod:`patchd.bundle.rules` for the file format. The first matching rule decides:
``include`` keeps, ``exclude`` drops; the rule's comment is the verdict's reason and the
rule's label (``rules.yaml#3 exclude path=*.po``) its ``rule``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from patchd.bundle.interface import (
    Classifier,
    FileChangeLike,
    ReleaseHunkLike,
    Verdict,
    file_change_id,
)
from patchd.bundle.rules import CompiledRule, load_rules


class RulesClassifier(Classifier):
    """Keep or drop what the rules file names; no opinion on anything else."""

    name = "rules"

    def __init__(self, rules: Sequence[CompiledRule]) -> None:
        self.rules = tuple(rules)

    @classmethod
    def from_file(cls, path: Path) -> RulesClassifier:
        """Load and validate ``path`` (raises :class:`patchd.bundle.rules.RulesError`)."""
        return cls(load_rules(path))

    def classify(self, hunk: ReleaseHunkLike | None, change: FileChangeLike) -> Verdict | None:
        """The verdict of the first matching rule, or None."""
        if hunk is None:
            hunk_id, changed = file_change_id(change), None
        else:
            hunk_id = hunk.id
            changed = [
                ln.data.decode("utf-8", "surrogateescape").rstrip("\r\n")
                for ln in hunk.hunk.lines
                if ln.kind != " "
            ]
        for rule in self.rules:
            if rule.matches(change.path, hunk_id, changed):
                return Verdict(
                    "keep" if rule.rule.action == "include" else "drop",
                    rule.rule.comment,
                    classifier=self.name,
                    rule=rule.label,
                )
        return None
