"""The classifiers of the chain, one module each, and the chain in its fixed order.

Order: rules file (the security team's explicit decisions) > noise filters > git
attribution > sibling releases > heuristics. Adding a classifier is adding a module here
and a place in :func:`default_chain`.
"""

from __future__ import annotations

import re
from pathlib import Path

from patchd.bundle.classifiers.git import DEFAULT_SECURITY_PATTERN, GitAttribution
from patchd.bundle.classifiers.heuristics import DEFAULT_THRESHOLD, HeuristicsClassifier
from patchd.bundle.classifiers.noise import NoiseClassifier
from patchd.bundle.classifiers.rules import RulesClassifier
from patchd.bundle.classifiers.siblings import SiblingRelease, SiblingsClassifier
from patchd.bundle.interface import Classifier

__all__ = [
    "DEFAULT_SECURITY_PATTERN",
    "DEFAULT_THRESHOLD",
    "GitAttribution",
    "HeuristicsClassifier",
    "NoiseClassifier",
    "RulesClassifier",
    "SiblingRelease",
    "SiblingsClassifier",
    "add_siblings",
    "default_chain",
]


def default_chain(
    *,
    rules_file: Path | None = None,
    git_repo: Path | None = None,
    git_range: str | None = None,
    git_prefix: str = "",
    security_pattern: re.Pattern[str] = DEFAULT_SECURITY_PATTERN,
    auto: bool = False,
    threshold: float = DEFAULT_THRESHOLD,
    siblings: SiblingsClassifier | None = None,
) -> list[Classifier]:
    """The chain ``patchd build`` runs: rules > noise > git > siblings > heuristics (absent
    parts skipped)."""
    chain: list[Classifier] = []
    if rules_file is not None:
        chain.append(RulesClassifier.from_file(rules_file))
    chain.append(NoiseClassifier())
    if git_repo is not None and git_range is not None:
        chain.append(
            GitAttribution(
                git_repo, git_range, security_pattern=security_pattern, prefix=git_prefix
            )
        )
    chain.append(HeuristicsClassifier(auto=auto, threshold=threshold))
    return add_siblings(chain, siblings) if siblings is not None else chain


def add_siblings(chain: list[Classifier], siblings: SiblingsClassifier) -> list[Classifier]:
    """``chain`` with ``siblings`` in its place: after git, before heuristics.

    NOTE: the builder opens the sibling releases after the chain is made (a bad rules file
    fails before any archive is extracted), so it adds the classifier with this.
    """
    at = next((i for i, c in enumerate(chain) if isinstance(c, HeuristicsClassifier)), len(chain))
    return [*chain[:at], siblings, *chain[at:]]
