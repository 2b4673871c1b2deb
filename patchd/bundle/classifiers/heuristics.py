"""Heuristics: score a hunk by the security-relevant constructs its changed lines add or remove.

Each :class:`Construct` is a regular expression with a weight for *adding* it (escaping,
nonce and capability checks, path validation, prepared statements, ...) and/or for
*removing* it (``eval``, ``unserialize``, ``extract``, shell calls, weak ``rand``). A
construct counts once per hunk and direction, and only by its net change: a line that is
merely reformatted (the same call removed and added) scores nothing. Comment lines are
ignored.

Weights: 2.0 for a direct defence (nonce/capability/CSRF check, ``allowed_classes``,
removing ``eval``/``unserialize``), 1.5 for escaping, validation and prepared statements,
1.0 for weaker hints (casts, ``basename``, ``realpath``), 0.5 for generic ``intval``.

Without ``auto`` the verdict is always ``undecided`` (a suggestion for the reviewer, with
the score and the reasons). With ``auto=True`` a score >= ``threshold`` keeps the hunk.
The default threshold 3.0 needs two independent strong signals (escaping plus a nonce
check = 3.5) or one direct defence plus a helper: a single added ``esc_html`` (1.5), common
in cosmetic template changes, never ships a hunk on its own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from patchd.bundle.interface import Classifier, FileChangeLike, ReleaseHunkLike, Verdict

DEFAULT_THRESHOLD = 3.0


@dataclass(frozen=True)
class Construct:
    """A security-relevant construct: pattern, weights and reasons for adding/removing it."""

    pattern: re.Pattern[str]
    add_weight: float = 0.0
    add_reason: str = ""
    remove_weight: float = 0.0
    remove_reason: str = ""


def _c(
    rx: str, add: float = 0.0, add_reason: str = "", remove: float = 0.0, remove_reason: str = ""
) -> Construct:
    return Construct(re.compile(rx), add, add_reason, remove, remove_reason)


_REQUEST = r"\$_(?:GET|POST|REQUEST|COOKIE|SERVER|FILES)\b"

CONSTRUCTS: tuple[Construct, ...] = (
    # escaping / sanitising
    _c(r"\bhtmlspecialchars\s*\(", 1.5, "adds htmlspecialchars escaping"),
    _c(r"\bhtmlentities\s*\(", 1.5, "adds htmlentities escaping"),
    _c(r"\besc_html(?:__|_e|_x)?\s*\(", 1.5, "adds esc_html escaping"),
    _c(r"\besc_attr(?:__|_e|_x)?\s*\(", 1.5, "adds esc_attr escaping"),
    _c(r"\besc_url(?:_raw)?\s*\(", 1.5, "adds esc_url escaping"),
    _c(r"\besc_(?:js|textarea|sql)\s*\(", 1.5, "adds esc_* escaping"),
    _c(r"\bwp_kses(?:_post|_data)?\s*\(", 1.5, "adds wp_kses filtering"),
    _c(r"\brcube::Q\s*\(", 1.5, "adds rcube::Q escaping"),
    _c(r"\bstrip_tags\s*\(", 1.5, "adds strip_tags sanitising"),
    _c(r"\bsanitize_\w+\s*\(", 1.5, "adds sanitize_* sanitising"),
    _c(
        r"\b(?:intval|absint)\s*\(\s*" + _REQUEST + r"|\(int\)\s*" + _REQUEST,
        1.0,
        "adds integer cast of request data",
    ),
    _c(r"\b(?:intval|absint)\s*\(|\(int\)\s*\$", 0.5, "adds integer cast"),
    # nonces, tokens, capabilities
    _c(r"\bwp_verify_nonce\s*\(", 2.0, "adds wp_verify_nonce check"),
    _c(r"\bcheck_admin_referer\s*\(", 2.0, "adds check_admin_referer check"),
    _c(r"\bcheck_ajax_referer\s*\(", 2.0, "adds check_ajax_referer check"),
    _c(r"\bcurrent_user_can\s*\(", 2.0, "adds current_user_can capability check"),
    _c(
        r"(?i)csrf|request_?token|formprotection|validateToken|check_request\s*\(",
        2.0,
        "adds CSRF token check",
    ),
    _c(r"\bhash_equals\s*\(", 1.5, "adds constant-time hash_equals comparison"),
    # paths and uploads
    _c(r"\bvalidPathStr\s*\(", 1.5, "adds validPathStr path validation"),
    _c(r"\brealpath\s*\(", 1.0, "adds realpath check"),
    _c(r"\bbasename\s*\(", 1.0, "adds basename path stripping"),
    _c(r"""['"]\.\.(?:/|\\\\)?['"]""", 1.0, "adds '..' path check"),
    _c(r"\bwp_check_filetype(?:_and_ext)?\s*\(", 1.5, "adds wp_check_filetype check"),
    _c(
        r"\bmime_content_type\s*\(|\bfinfo_file\s*\(|\bgetimagesize\s*\(|(?i:mime_?type)",
        1.5,
        "adds MIME type check",
    ),
    _c(
        r"(?i)fileDenyPattern|(?:deny|block|forbidden|disallowed)_?ext",
        1.5,
        "adds file extension deny list",
    ),
    # SQL
    _c(r"->prepare\s*\(|\bprepare\s*\(", 1.5, "adds prepared statement"),
    _c(r"\bbind_param\s*\(|\bbind(?:Value|Param)\s*\(", 1.5, "adds bound parameters"),
    _c(r"\bcreateNamedParameter\s*\(", 1.5, "adds createNamedParameter"),
    _c(r"\bquoteIdentifier\s*\(", 1.5, "adds quoteIdentifier"),
    # object injection and code execution
    _c(r"allowed_classes", 2.0, "restricts unserialize with allowed_classes"),
    _c(r"\beval\s*\(", 0.0, "", 2.0, "removes eval"),
    _c(r"(?<![\w>:])unserialize\s*\(", 0.0, "", 2.0, "removes unserialize"),
    _c(r"(?<![\w>:])extract\s*\(", 0.0, "", 1.5, "removes extract"),
    _c(
        r"(?<![\w>:])(?:shell_exec|exec|system|passthru|popen|proc_open)\s*\(",
        0.0,
        "",
        1.5,
        "removes shell command call",
    ),
    _c(r"\bcreate_function\s*\(", 0.0, "", 2.0, "removes create_function"),
    # redirects
    _c(r"\bwp_safe_redirect\s*\(", 1.5, "adds wp_safe_redirect"),
    _c(r"\bwp_validate_redirect\s*\(", 1.5, "adds wp_validate_redirect"),
    _c(r"\bsanitizeLocalUrl\s*\(|\bisOnCurrentHost\s*\(", 1.5, "adds redirect URL validation"),
    # randomness
    _c(
        r"\brandom_(?:bytes|int)\s*\(|\bwp_generate_password\s*\(",
        1.0,
        "adds random_bytes/random_int",
    ),
    _c(r"(?<![\w>:])(?:mt_)?rand\s*\(|\buniqid\s*\(", 0.0, "", 1.0, "removes weak rand"),
)

_COMMENT_LINE = re.compile(r"^\s*(?://|#(?!\[)|/\*|\*)")


@dataclass(frozen=True)
class Score:
    """A hunk's score and the reasons (highest weight first)."""

    value: float
    reasons: tuple[str, ...]


def score_lines(removed: list[str], added: list[str]) -> Score:
    """Score a change given its removed and added line texts."""
    removed = [ln for ln in removed if not _COMMENT_LINE.match(ln)]
    added = [ln for ln in added if not _COMMENT_LINE.match(ln)]
    hits: list[tuple[float, str]] = []
    for c in CONSTRUCTS:
        n_removed = sum(len(c.pattern.findall(ln)) for ln in removed)
        n_added = sum(len(c.pattern.findall(ln)) for ln in added)
        if c.add_weight and n_added > n_removed:
            hits.append((c.add_weight, c.add_reason))
        if c.remove_weight and n_removed > n_added:
            hits.append((c.remove_weight, c.remove_reason))
    hits.sort(key=lambda h: -h[0])
    return Score(sum(w for w, _ in hits), tuple(r for _, r in hits))


class HeuristicsClassifier(Classifier):
    """Suggest (or with ``auto``, keep) hunks with security-relevant changes."""

    name = "heuristics"

    def __init__(self, *, auto: bool = False, threshold: float = DEFAULT_THRESHOLD) -> None:
        self.auto = auto
        self.threshold = threshold

    def classify(self, hunk: ReleaseHunkLike | None, change: FileChangeLike) -> Verdict | None:
        """An undecided (or auto keep) verdict with score and reasons; None at score 0."""
        if hunk is None:
            return None
        removed = [_text(ln.data) for ln in hunk.hunk.lines if ln.kind == "-"]
        added = [_text(ln.data) for ln in hunk.hunk.lines if ln.kind == "+"]
        score = score_lines(removed, added)
        if score.value <= 0:
            return None
        reasons = ", ".join(score.reasons)
        if self.auto and score.value >= self.threshold:
            return Verdict(
                "keep",
                f"heuristic score {score.value:.1f} >= {self.threshold:.1f}: {reasons}",
                classifier=self.name,
                score=score.value,
            )
        return Verdict(
            "undecided",
            f"heuristic score {score.value:.1f}: {reasons}",
            classifier=self.name,
            score=score.value,
        )


def _text(data: bytes) -> str:
    return data.decode("utf-8", "surrogateescape").rstrip("\r\n")
