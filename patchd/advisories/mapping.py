"""Which CMS and component a package of an advisory database is.

The table is small and extensible: :data:`DEFAULT_MAPPING` covers the CMSs patchd knows;
``patchd advisories import --mapping FILE`` adds rows (YAML: a list of ``{package, cms,
component, kind}``; ``package`` may end in ``/*`` to map a whole vendor, the component
then being the package's name after the ``/``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

from patchd.advisories.model import Target
from patchd.errors import AdvisoryError


class MappingRow(BaseModel):
    """One row: a package (or ``vendor/*``) and what it is."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    package: str
    cms: str
    component: str | None = None
    kind: str | None = None


_CORE = "core"
DEFAULT_MAPPING: tuple[MappingRow, ...] = (
    MappingRow(package="typo3/cms-core", cms="typo3", component=_CORE),
    MappingRow(package="typo3/cms", cms="typo3", component=_CORE),
    # NOTE: the system extensions ship with the core and carry its version.
    MappingRow(package="typo3/cms-*", cms="typo3", component=_CORE),
    MappingRow(package="typo3-ter/*", cms="typo3", kind="extension"),
    MappingRow(package="drupal/core", cms="drupal", component=_CORE),
    MappingRow(package="drupal/drupal", cms="drupal", component=_CORE),
    MappingRow(package="drupal/*", cms="drupal", kind="module"),
    MappingRow(package="roundcube/roundcubemail", cms="roundcube", component=_CORE),
    MappingRow(package="joomla/joomla-cms", cms="joomla", component=_CORE),
    MappingRow(package="johnpbloch/wordpress-core", cms="wordpress", component=_CORE),
    MappingRow(package="roots/wordpress", cms="wordpress", component=_CORE),
    MappingRow(package="wordpress/wordpress", cms="wordpress", component=_CORE),
    MappingRow(package="wpackagist-plugin/*", cms="wordpress", kind="plugin"),
    MappingRow(package="wpackagist-theme/*", cms="wordpress", kind="theme"),
)


class PackageMap:
    """Package name -> :class:`Target` (exact rows first, then ``vendor/prefix*`` rows,
    longest prefix first)."""

    def __init__(self, rows: Iterable[MappingRow] = DEFAULT_MAPPING) -> None:
        self._exact: dict[str, MappingRow] = {}
        self._prefix: list[tuple[str, MappingRow]] = []
        for row in rows:
            self.add(row)

    def add(self, row: MappingRow) -> None:
        """Add ``row``; a later row for the same package replaces an earlier one."""
        name = row.package.lower()
        if name.endswith("*"):
            self._prefix = [(p, r) for p, r in self._prefix if p != name[:-1]]
            self._prefix.append((name[:-1], row))
            self._prefix.sort(key=lambda pr: -len(pr[0]))
        else:
            self._exact[name] = row

    def target(self, package: str) -> Target | None:
        """What ``package`` is, or None when patchd does not know it."""
        name = package.lower()
        row = self._exact.get(name)
        rest = ""
        if row is None:
            for prefix, candidate in self._prefix:
                if name.startswith(prefix) and len(name) > len(prefix):
                    row, rest = candidate, name[len(prefix) :]
                    break
        if row is None:
            return None
        if row.component is not None:
            return Target(cms=row.cms, component=row.component, kind=row.kind)
        component = rest
        if row.kind == "extension" and row.cms == "typo3":
            # NOTE: typo3-ter package names write the extension key's '_' as '-'.
            component = rest.replace("-", "_")
        return Target(cms=row.cms, component=component, kind=row.kind)


_ROWS = TypeAdapter(list[MappingRow])


def load_mapping(path: Path, base: Iterable[MappingRow] = DEFAULT_MAPPING) -> PackageMap:
    """The default table extended by the rows of the YAML file ``path``."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or []
        rows = _ROWS.validate_python(data)
    except (OSError, yaml.YAMLError, ValidationError) as exc:
        raise AdvisoryError(f"mapping file {path}: {exc}") from exc
    mapping = PackageMap(base)
    for row in rows:
        mapping.add(row)
    return mapping


def mapping_rows(mapping: Mapping[str, str]) -> list[MappingRow]:
    """Rows from ``{package: "cms:component"}`` (for tests and short extensions)."""
    rows = []
    for package, what in mapping.items():
        cms, _, component = what.partition(":")
        rows.append(MappingRow(package=package, cms=cms, component=component or None))
    return rows
