"""Reading a checkout of the FriendsOfPHP security-advisories database.

One YAML file per advisory, under ``vendor/package/``: ``title``, ``link``, ``cve``,
``branches`` (name -> ``versions``, a list of composer constraints that all hold) and
``reference: composer://vendor/package``. Each branch is one span of the affected
versions; its ``<X`` bound is the version that fixes it.
"""

from __future__ import annotations

import itertools
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from patchd.advisories.mapping import PackageMap
from patchd.advisories.model import Advisory, SpanModel
from patchd.advisories.ranges import fixed_of_constraint
from patchd.advisories.sources import SourceRead, revision_of
from patchd.errors import AdvisoryError

KIND = "friendsofphp"
_REFERENCE = "composer://"


def is_checkout(path: Path) -> bool:
    """Whether ``path`` looks like the FriendsOfPHP database (a folder of YAML files)."""
    return path.is_dir() and any(path.glob("*/*/*.yaml"))


def read_checkout(root: Path, mapping: PackageMap) -> SourceRead:
    """Every advisory under ``root``; unreadable files are listed in ``problems``."""
    files = sorted(p for p in root.glob("*/*/*.yaml") if p.is_file())
    if not files:
        raise AdvisoryError("no advisory files (vendor/package/*.yaml) found", where=str(root))
    revision, date = revision_of(root, files)
    out = SourceRead(KIND, str(root.resolve()), revision, date)
    for path in files:
        rel = path.relative_to(root).as_posix()
        try:
            out.advisories.append(read_file(path, mapping))
        except (OSError, yaml.YAMLError, ValueError, ValidationError) as exc:
            out.problems.append(f"{rel}: {_short(exc)}")
    return out


def read_file(path: Path, mapping: PackageMap) -> Advisory:
    """One advisory file; ``ValueError`` naming what is wrong with it."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError("not a mapping")
    reference = str(data.get("reference") or "")
    if not reference.startswith(_REFERENCE):
        raise ValueError(f"reference {reference!r} is not composer://vendor/package")
    package = reference[len(_REFERENCE) :].strip().lower()
    spans = [_span(name, branch) for name, branch in (data.get("branches") or {}).items()]
    if not spans:
        raise ValueError("no branches")
    cve = data.get("cve")
    advisory = Advisory(
        source=KIND,
        advisory_id=path.stem,
        package=package,
        target=mapping.target(package),
        title=str(data.get("title") or path.stem),
        link=str(data["link"]) if data.get("link") else None,
        cve=(str(cve),) if cve else (),
        affected=tuple(spans),
    )
    for span in advisory.affected:
        span.span().check()
    return advisory


def _span(name: Any, branch: Any) -> SpanModel:
    if not isinstance(branch, dict) or not branch.get("versions"):
        raise ValueError(f"branch {name!r} has no versions")
    parts = [str(v) for v in branch["versions"]]
    return SpanModel(constraint=all_of(parts), fixed=fixed_of_constraint(parts))


_OR = re.compile(r"\s*\|\|?\s*")


def all_of(parts: list[str]) -> str:
    """One composer constraint that holds where every one of ``parts`` holds.

    NOTE: AND binds tighter than OR, so ``a || b`` AND ``c`` is ``a,c || b,c``, not the
    text joined with ``,`` (which would read ``a || b,c``).
    """
    if len(parts) == 1 or not any("|" in p for p in parts):
        return ",".join(parts)
    choices = [_OR.split(p.strip()) for p in parts]
    return " || ".join(",".join(combo) for combo in itertools.product(*choices))


def _short(exc: Exception) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
