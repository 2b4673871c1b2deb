"""Plain words for an outcome and its reason, in German and English.

Used by the support lists (``patchd report``, English) and the customer emails (the
customer's language). The ledger's ``detail`` is technical ("modified: FILE hunk 2 (context
differs at line 87)"); these sentences say the same in words a customer understands and
keep the technical part (file and hunk, PHP versions, host error) as a short addition.
"""

from __future__ import annotations

import re
from typing import Literal

from patchd.outcomes import Outcome, Reason, skipped_kind

Language = Literal["de", "en"]
"""The languages of customer emails and explanations."""

LANGUAGES: tuple[Language, ...] = ("de", "en")

_HUNK = re.compile(r"^(?P<file>.+?) hunk (?P<hunk>\d+)\b")
_PHP = re.compile(r"needs PHP >= (?P<need>[0-9.]+), account has (?P<have>[0-9.]+)")

_OUTCOME: dict[Language, dict[str, str]] = {
    "en": {
        "patched": "We installed the security fix for you.",
        "already-patched": "The security fix was already present; nothing was changed.",
        "not-affected": "This installation is not affected (another CMS, component or version).",
        "skipped": "Not patched automatically: the account is set to notify only or to skip.",
        "apply-failed": (
            "Installing the fix failed (a write error on the server); the installation was "
            "restored exactly as it was."
        ),
        "reverted": (
            "We installed the security fix, but the site reacted badly to it (it answered "
            "worse than before), so we undid the fix at once: the installation is exactly as "
            "it was, and still vulnerable."
        ),
        "rolled-back": (
            "We had installed the security fix and then undid it (rollback): the installation "
            "is vulnerable again until it is updated or patched again."
        ),
        "unreachable": "The server could not be reached, so the installation was not checked.",
        "error": "An internal error stopped the check of this installation.",
    },
    "de": {
        "patched": "Wir haben die Sicherheitskorrektur für Sie eingespielt.",
        "already-patched": "Die Sicherheitskorrektur war bereits vorhanden; nichts wurde geändert.",
        "not-affected": (
            "Diese Installation ist nicht betroffen (anderes CMS, andere Komponente oder Version)."
        ),
        "skipped": (
            "Nicht automatisch korrigiert: für das Konto ist nur Benachrichtigen oder "
            "Auslassen eingestellt."
        ),
        "apply-failed": (
            "Das Einspielen ist fehlgeschlagen (Schreibfehler auf dem Server); die Installation "
            "wurde exakt in ihren vorherigen Zustand zurückversetzt."
        ),
        "reverted": (
            "Wir haben die Sicherheitskorrektur eingespielt, aber die Website hat darauf "
            "schlecht reagiert (sie antwortete schlechter als vorher); wir haben die Korrektur "
            "daher sofort zurückgenommen: die Installation ist genau wie vorher und weiterhin "
            "angreifbar."
        ),
        "rolled-back": (
            "Wir hatten die Sicherheitskorrektur eingespielt und sie dann zurückgenommen "
            "(Rollback): die Installation ist wieder angreifbar, bis sie aktualisiert oder "
            "erneut korrigiert ist."
        ),
        "unreachable": (
            "Der Server war nicht erreichbar, die Installation wurde daher nicht geprüft."
        ),
        "error": "Ein interner Fehler hat die Prüfung dieser Installation abgebrochen.",
    },
}

_REASON: dict[Language, dict[str, str]] = {
    "en": {
        "modified": (
            "A file the fix changes was modified in this installation, so we did not touch it"
        ),
        "missing-file": "A file the fix changes is missing from this installation",
        "unsafe-path": (
            "A file the fix changes is a link, a hard-linked file, not a regular file or owned "
            "by another user, so we did not write to it"
        ),
        "php-incompatible": "The fix needs a newer PHP version than this account uses",
        "lint-failed": (
            "The fixed files would not pass PHP's syntax check with this account's PHP version, "
            "so we did not install them"
        ),
        "no-variant": (
            "This version is affected, but there is no fix that fits it, so it must be updated"
        ),
        "version-unknown": (
            "We could not read this installation's version, and none of our fixes fits its "
            "files unambiguously, so it must be updated"
        ),
        "gate": (
            "Not patched yet: the rollout was paused for a safety check after problems "
            "elsewhere; it will continue"
        ),
    },
    "de": {
        "modified": (
            "Eine Datei, die die Korrektur ändert, wurde in dieser Installation verändert; "
            "wir haben sie daher nicht angefasst"
        ),
        "missing-file": "Eine Datei, die die Korrektur ändert, fehlt in dieser Installation",
        "unsafe-path": (
            "Eine Datei, die die Korrektur ändert, ist ein Link, eine hart verlinkte Datei, "
            "keine normale Datei oder gehört einem anderen Benutzer; wir haben nicht "
            "hineingeschrieben"
        ),
        "php-incompatible": (
            "Die Korrektur braucht eine neuere PHP-Version, als dieses Konto verwendet"
        ),
        "lint-failed": (
            "Die korrigierten Dateien bestehen die PHP-Syntaxprüfung mit der PHP-Version dieses "
            "Kontos nicht; wir haben sie daher nicht eingespielt"
        ),
        "no-variant": (
            "Diese Version ist betroffen, aber es gibt keine Korrektur, die zu ihr passt; "
            "sie muss aktualisiert werden"
        ),
        "version-unknown": (
            "Wir konnten die Version dieser Installation nicht lesen, und keine unserer "
            "Korrekturen passt eindeutig zu ihren Dateien; sie muss aktualisiert werden"
        ),
        "gate": (
            "Noch nicht korrigiert: das Einspielen wurde nach Problemen an anderer Stelle für "
            "eine Sicherheitsprüfung angehalten; es wird fortgesetzt"
        ),
    },
}

_AFFECTED_VERSION = re.compile(r"version (?P<version>\S+) is affected")
_UPDATE_TO = re.compile(r"update to (?P<fixed>\S+) or newer")
_FIXED_IN = {"en": "fixed in {fixed}", "de": "behoben in {fixed}"}
_VERSION = {"en": "version {version}", "de": "Version {version}"}
_FILE_HUNK = {"en": "file {file}, change {hunk}", "de": "Datei {file}, Änderung {hunk}"}
_PHP_WORDS = {
    "en": "needs PHP {need} or newer, the account has PHP {have}",
    "de": "benötigt PHP {need} oder neuer, das Konto hat PHP {have}",
}


def technical_detail(detail: str | None, reason: str | None, outcome: str) -> str:
    """``detail`` without the leading ``reason:``/``outcome:`` word (empty when none)."""
    text = (detail or "").strip()
    for word in (reason, outcome):
        if word and text.startswith(f"{word}:"):
            return text[len(word) + 1 :].strip()
    return text


def specifics(reason: str | None, detail: str | None, lang: Language) -> str:
    """The part of ``detail`` a reader needs, in words: file and hunk, PHP versions, ..."""
    rest = technical_detail(detail, reason, "dry-run-failed")
    if reason == Reason.MODIFIED.value:
        m = _HUNK.match(rest)
        if m:
            return _FILE_HUNK[lang].format(file=m["file"], hunk=m["hunk"])
    if reason == Reason.PHP_INCOMPATIBLE.value:
        m = _PHP.search(rest)
        if m:
            return _PHP_WORDS[lang].format(need=m["need"], have=m["have"])
    if reason in (Reason.NO_VARIANT.value, Reason.VERSION_UNKNOWN.value):
        parts = []
        version = _AFFECTED_VERSION.search(rest)
        if version:
            parts.append(_VERSION[lang].format(version=version["version"]))
        fixed = _UPDATE_TO.search(rest)
        if fixed:
            parts.append(_FIXED_IN[lang].format(fixed=fixed["fixed"]))
        return "; ".join(parts)
    return rest


#: ``skipped`` by why (:func:`~patchd.outcomes.skipped_kind`); a policy word picks its text.
_SKIPPED: dict[Language, dict[str, str]] = {
    "en": {
        "notify-only": "Not patched automatically: the account is set to notify only.",
        "skip": "Not patched automatically: the account is set to skip.",
        "dry-run": "Dry run only: nothing was written; a rollout would install the fix here.",
        "other": "Not patched.",
    },
    "de": {
        "notify-only": (
            "Nicht automatisch korrigiert: für das Konto ist nur Benachrichtigen eingestellt."
        ),
        "skip": "Nicht automatisch korrigiert: für das Konto ist Auslassen eingestellt.",
        "dry-run": (
            "Nur ein Probelauf: nichts wurde geschrieben; eine Ausführung würde die Korrektur "
            "hier einspielen."
        ),
        "other": "Nicht korrigiert.",
    },
}


def _skipped(reason: str | None, detail: str | None, lang: Language) -> str:
    """Why a ``skipped`` installation was not written, in words (issue 17: rows of
    ``auto`` accounts read "the account is set to notify only")."""
    kind = skipped_kind(detail)
    if kind == "policy":
        policy = (detail or "").split(";", 1)[0].removeprefix("policy ").strip()
        return _SKIPPED[lang].get(policy, _OUTCOME[lang]["skipped"])
    if kind == "dry-run":
        return _SKIPPED[lang]["dry-run"]
    if reason == Reason.POLICY.value:
        return _OUTCOME[lang]["skipped"]
    return _SKIPPED[lang]["other"]


def explain(outcome: str, reason: str | None, detail: str | None, lang: Language = "en") -> str:
    """One or two plain sentences saying what happened to an installation and why.

    ``modified`` names the file and hunk, ``php-incompatible`` the PHP versions,
    ``unreachable`` the host's error, other failures their technical detail.
    """
    if outcome == Outcome.SKIPPED.value and reason == Reason.GATE.value:
        return f"{_REASON[lang][reason]}."
    if outcome == Outcome.DRY_RUN_FAILED.value and reason in _REASON[lang]:
        extra = specifics(reason, detail, lang)
        base = _REASON[lang][reason]
        return f"{base} ({extra})." if extra else f"{base}."
    base = _OUTCOME[lang].get(outcome, outcome)
    if outcome == Outcome.SKIPPED.value:
        base = _skipped(reason, detail, lang)
    if outcome in (
        Outcome.UNREACHABLE.value,
        Outcome.APPLY_FAILED.value,
        Outcome.REVERTED.value,
        Outcome.ERROR.value,
        Outcome.SKIPPED.value,
    ):
        extra = technical_detail(detail, reason, outcome)
        if extra:
            label = "Detail" if lang == "en" else "Einzelheiten"
            return f"{base} {label}: {extra}"
    return base
