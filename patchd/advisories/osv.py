"""Reading OSV JSON files (one vulnerability per file, or a folder of them).

Each ``affected[]`` entry names a package (``package.ecosystem``, ``package.name``) and
its versions as ``ranges[].events`` (introduced / fixed / last_affected / limit; GIT
ranges are commits and are left out) and/or a ``versions`` list. ``severity`` comes from
``database_specific.severity`` (GitHub's LOW / MODERATE / HIGH / CRITICAL) or a CVSS
score; ``aliases`` give the CVE ids.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from patchd.advisories.cvss import severity_of_cvss
from patchd.advisories.mapping import PackageMap
from patchd.advisories.model import Advisory, Severity, SpanModel
from patchd.advisories.sources import SourceRead, revision_of
from patchd.errors import AdvisoryError

KIND = "osv"
_SEVERITY_WORDS: dict[str, Severity] = {
    "low": "low",
    "moderate": "medium",
    "medium": "medium",
    "high": "high",
    "critical": "critical",
}


def osv_files(path: Path) -> list[Path]:
    """The JSON files of ``path`` (a file, or a folder searched recursively)."""
    if path.is_file():
        return [path]
    if path.is_dir():
        return sorted(p for p in path.rglob("*.json") if p.is_file())
    raise AdvisoryError("no such file or folder", where=str(path))


def read_osv(path: Path, mapping: PackageMap) -> SourceRead:
    """Every advisory of the OSV file or folder ``path``."""
    files = osv_files(path)
    if not files:
        raise AdvisoryError("no OSV JSON files found", where=str(path))
    revision, date = revision_of(path, files)
    out = SourceRead(KIND, str(path.resolve()), revision, date)
    newest = None
    for file in files:
        rel = file.name if path.is_file() else file.relative_to(path).as_posix()
        try:
            data = json.loads(file.read_text(encoding="utf-8"))
            if not isinstance(data, dict) or "id" not in data:
                raise ValueError("not an OSV record (no id)")
            if data.get("withdrawn"):
                continue
            out.advisories.extend(read_record(data, mapping))
            modified = data.get("modified")
            if isinstance(modified, str) and (newest is None or modified > newest):
                newest = modified
        except (OSError, ValueError, ValidationError) as exc:
            out.problems.append(f"{rel}: {str(exc).splitlines()[0]}")
    if newest is not None and out.revision.startswith("sha256:"):
        out.date = newest  # NOTE: not a git checkout: the newest record says more than mtimes
    return out


def read_record(data: dict[str, Any], mapping: PackageMap) -> list[Advisory]:
    """The advisories (one per affected package) of one OSV record."""
    osv_id = str(data["id"])
    aliases = tuple(str(a) for a in data.get("aliases") or ())
    cve = tuple(a for a in (osv_id, *aliases) if a.startswith("CVE-"))
    title = str(data.get("summary") or (data.get("details") or "").strip().split("\n")[0])
    link = next(
        (str(r["url"]) for r in data.get("references") or () if r.get("url")),
        None,
    )
    found: list[Advisory] = []
    for entry in data.get("affected") or ():
        package = entry.get("package") or {}
        name = str(package.get("name") or "").lower()
        if not name:
            continue
        spans = _spans(entry)
        if not spans:
            continue
        advisory = Advisory(
            source=KIND,
            advisory_id=osv_id,
            package=name,
            target=mapping.target(name),
            title=title or osv_id,
            link=link,
            cve=cve,
            aliases=aliases,
            severity=_severity(data, entry),
            affected=tuple(spans),
        )
        for span in advisory.affected:
            span.span().check()
        found.append(advisory)
    if not found:
        raise ValueError("no affected package with versions or ECOSYSTEM/SEMVER ranges")
    return found


def _spans(entry: dict[str, Any]) -> list[SpanModel]:
    spans: list[SpanModel] = []
    for r in entry.get("ranges") or ():
        if r.get("type") not in ("ECOSYSTEM", "SEMVER"):
            continue
        events: list[tuple[str, str]] = []
        for event in r.get("events") or ():
            for kind, version in event.items():
                events.append((str(kind), str(version)))
        if events:
            spans.append(SpanModel(events=tuple(events)))
    versions = tuple(str(v) for v in entry.get("versions") or ())
    if versions:
        spans.append(SpanModel(versions=versions))
    return spans


def _severity(data: dict[str, Any], entry: dict[str, Any]) -> Severity:
    for where in (entry.get("database_specific"), data.get("database_specific")):
        if isinstance(where, dict) and isinstance(where.get("severity"), str):
            word = _SEVERITY_WORDS.get(where["severity"].lower())
            if word:
                return word
    for sev in (*(entry.get("severity") or ()), *(data.get("severity") or ())):
        found = severity_of_cvss(str(sev.get("score") or ""))
        if found is not None:
            return found
    return "unknown"
