"""CMS detectors: one module per CMS, listed in :data:`DETECTORS`.

Adding a CMS is adding one module with a :class:`~patchd.cms.interface.Detector` subclass
and one line here.

NOTE: stdlib-only (every module in this package); the host-side agent imports it.
"""

from __future__ import annotations

from patchd.cms.drupal import DrupalDetector
from patchd.cms.interface import Detector, Extension, Installation, ScanProblem
from patchd.cms.joomla import JoomlaDetector
from patchd.cms.roundcube import RoundcubeDetector
from patchd.cms.typo3 import Typo3Detector
from patchd.cms.wordpress import WordPressDetector

#: One instance per supported CMS; the search tries them in this order.
DETECTORS: tuple[Detector, ...] = (
    WordPressDetector(),
    Typo3Detector(),
    JoomlaDetector(),
    DrupalDetector(),
    RoundcubeDetector(),
)


def detector_for(name: str) -> Detector:
    """The detector named ``name`` (``"wordpress"``...); ``KeyError`` naming the choices."""
    for detector in DETECTORS:
        if detector.name == name:
            return detector
    choices = ", ".join(d.name for d in DETECTORS)
    raise KeyError(f"unknown CMS {name!r} (known: {choices})")


__all__ = [
    "DETECTORS",
    "Detector",
    "Extension",
    "Installation",
    "ScanProblem",
    "detector_for",
]
