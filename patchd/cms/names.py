"""The CMSs' proper names and the default, localised wording of a bundle's title and
summary (issue 17: a German email read "wordpress 6.4.3 security fix")."""

from __future__ import annotations

from typing import Literal

Language = Literal["de", "en"]

#: detector name -> the name the vendor writes.
CMS_NAMES: dict[str, str] = {
    "wordpress": "WordPress",
    "typo3": "TYPO3",
    "joomla": "Joomla!",
    "drupal": "Drupal",
    "roundcube": "Roundcube",
}

_TITLE = {
    "de": "Sicherheitskorrektur für {name} {fixed_in}",
    "en": "{name} {fixed_in} security fix",
}
_SUMMARY = {
    "de": "Sicherheitskorrektur für {name} (behoben in {fixed_in}).",
    "en": "Security fix for {name} (fixed in {fixed_in}).",
}


def proper_name(cms: str) -> str:
    """``cms``'s proper name (``wordpress`` -> ``WordPress``); unknown names unchanged."""
    return CMS_NAMES.get(cms, cms)


def default_title(cms: str, fixed_in: str, lang: Language = "en") -> str:
    """The title of a bundle built without ``--title``."""
    return _TITLE[lang].format(name=proper_name(cms), fixed_in=fixed_in)


def default_summary(cms: str, fixed_in: str, lang: Language) -> str:
    """The summary of a bundle built without ``--summary-de``/``--summary-en``."""
    return _SUMMARY[lang].format(name=proper_name(cms), fixed_in=fixed_in)


def localised_title(title: str, cms: str, fixed_in: str | None, lang: Language) -> str:
    """``title`` for a reader of ``lang``: a default title (also the lower-case one older
    builds wrote) in ``lang``'s wording with the proper name; any other title as given."""
    if not fixed_in:
        return title
    defaults = {f"{cms} {fixed_in} security fix", default_title(cms, fixed_in)}
    return default_title(cms, fixed_in, lang) if title in defaults else title


def localised_summary(summary: str, cms: str, fixed_in: str | None, lang: Language) -> str:
    """``summary`` with an older build's default wording (lower-case name) fixed."""
    if not fixed_in:
        return summary
    old = _SUMMARY[lang].format(name=cms, fixed_in=fixed_in)
    return default_summary(cms, fixed_in, lang) if summary == old else summary
