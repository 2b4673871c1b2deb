"""Was an installation's configuration tested? For ``patchd rollout``'s warning and
``--require-tested``.

A configuration is tested when a cell of the bundle's ``tested.json`` (for the bundle's
current digest) with the same CMS version and the same PHP major.minor was patched and
passed every check. Extensions and customer modifications are not part of the question:
they differ per account and the dry run on the account covers them.
"""

from __future__ import annotations

from patchd.bundle.manifest import Bundle
from patchd.matrix.results import read_tested
from patchd.versions import Version


def _minor(php: str) -> str:
    return ".".join(php.strip().split(".")[:2])


def untested_reason(bundle: Bundle, cms_version: str | None, php: str | None) -> str | None:
    """None when ``cms_version`` with PHP ``php`` passed a matrix test, else why not.

    Unknown version or PHP count as untested (``--require-tested`` must not guess).
    """
    tested = read_tested(bundle.path)
    if tested is None:
        return "bundle was never tested (no tested.json)"
    if tested.digest != bundle.manifest.digest:
        return "tested.json is for other diffs than this bundle's (digest differs)"
    if cms_version is None:
        return "CMS version unknown"
    if php is None:
        return "PHP version unknown"
    cells = [c for run in tested.runs for c in run.cells if c.version == cms_version]
    if not cells:
        return f"version {cms_version} was never tested"
    same_php = [c for c in cells if _minor(c.php) == _minor(php)]
    if not same_php:
        return f"version {cms_version} was never tested with PHP {_minor(php)}"
    if any(c.outcome == "patched" and c.status == "ok" for c in same_php):
        return None
    failed = next((c for c in same_php if c.status == "failed"), None)
    if failed is not None:
        return f"version {cms_version} with PHP {_minor(php)} failed the test: {failed.reason}"
    return f"version {cms_version} with PHP {_minor(php)} was never patched in a test"


def effective_min_php(bundle: Bundle) -> str | None:
    """The higher of the manifest's ``min_php`` and the one measured into ``tested.json``."""
    declared = bundle.manifest.min_php
    tested = read_tested(bundle.path)
    measured = tested.min_php if tested and tested.digest == bundle.manifest.digest else None
    if declared is None or measured is None:
        return declared or measured
    return measured if Version.parse(declared) < Version.parse(measured) else declared
