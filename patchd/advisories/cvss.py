"""Severity words from CVSS: a numeric score or a CVSS v3.x base vector."""

from __future__ import annotations

import math
from typing import Literal

Word = Literal["low", "medium", "high", "critical"]

_AV = {"N": 0.85, "A": 0.62, "L": 0.55, "P": 0.2}
_AC = {"L": 0.77, "H": 0.44}
_PR_U = {"N": 0.85, "L": 0.62, "H": 0.27}
_PR_C = {"N": 0.85, "L": 0.68, "H": 0.5}
_UI = {"N": 0.85, "R": 0.62}
_CIA = {"H": 0.56, "L": 0.22, "N": 0.0}


def word_of_score(score: float) -> Word | None:
    """CVSS's qualitative rating (0 is "none": None)."""
    if score >= 9.0:
        return "critical"
    if score >= 7.0:
        return "high"
    if score >= 4.0:
        return "medium"
    return "low" if score > 0 else None


def _roundup(x: float) -> float:
    i = round(x * 100000)
    return i / 100000.0 if i % 10000 == 0 else (math.floor(i / 10000) + 1) / 10.0


def base_score_v3(vector: str) -> float:
    """The base score of a ``CVSS:3.x/AV:../AC:../PR:../UI:../S:../C:../I:../A:..``
    vector; ``ValueError`` when a metric is missing or unknown."""
    metrics = dict(part.split(":", 1) for part in vector.split("/")[1:] if ":" in part)
    try:
        changed = metrics["S"] == "C"
        iss = 1 - (1 - _CIA[metrics["C"]]) * (1 - _CIA[metrics["I"]]) * (1 - _CIA[metrics["A"]])
        pr = (_PR_C if changed else _PR_U)[metrics["PR"]]
        exploitability = 8.22 * _AV[metrics["AV"]] * _AC[metrics["AC"]] * pr * _UI[metrics["UI"]]
    except KeyError as exc:
        raise ValueError(f"CVSS vector {vector!r}: missing or unknown {exc}") from None
    impact = 7.52 * (iss - 0.029) - 3.25 * (iss - 0.02) ** 15 if changed else 6.42 * iss
    if impact <= 0:
        return 0.0
    if changed:
        return _roundup(min(1.08 * (impact + exploitability), 10))
    return _roundup(min(impact + exploitability, 10))


def severity_of_cvss(score: str) -> Word | None:
    """The severity word of an OSV ``severity[].score``: a number or a CVSS v3 vector
    (other vectors, e.g. v4, give None)."""
    score = score.strip()
    try:
        return word_of_score(float(score))
    except ValueError:
        pass
    if score.startswith("CVSS:3."):
        try:
            return word_of_score(base_score_v3(score))
        except ValueError:
            return None
    return None
