"""Installation/Extension JSON round trips and the detector registry."""

from __future__ import annotations

import json

import pytest

from patchd.cms import DETECTORS, detector_for
from patchd.cms.interface import Extension, Installation, ScanProblem


def test_installation_json_round_trip() -> None:
    inst = Installation(
        path="html/blog",
        cms="wordpress",
        version="6.4.3",
        version_error=None,
        extensions=(Extension("akismet", "5.3", "plugin"), Extension("x", None, "theme")),
        facts={"required_php": "7.0.0"},
        marker="wp-includes/version.php",
    )
    data = json.loads(json.dumps(inst.to_json()))
    assert data["extensions"][0] == {"name": "akismet", "version": "5.3", "kind": "plugin"}
    assert Installation.from_json(data) == inst
    problem = ScanProblem("a/b", "folder not searched: Permission denied")
    assert ScanProblem.from_json(problem.to_json()) == problem


def test_from_json_rejects_wrong_types() -> None:
    with pytest.raises(ValueError, match="version"):
        Installation.from_json({"path": "", "cms": "x", "version": 6, "version_error": None})
    with pytest.raises(ValueError, match="facts"):
        Installation.from_json(
            {"path": "", "cms": "x", "version": None, "version_error": None, "facts": {"a": 1}}
        )


def test_registry() -> None:
    names = [d.name for d in DETECTORS]
    assert names == ["wordpress", "typo3", "joomla", "drupal", "roundcube"]
    assert detector_for("typo3").name == "typo3"
    with pytest.raises(KeyError, match="known: wordpress"):
        detector_for("magento")
