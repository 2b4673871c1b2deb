"""The matrix file (YAML): releases x extension sets x PHP versions x modifications.

Example::

    releases:
      - fixture: wordpress@6.4.0-6.4.2     # fixture family releases (patchd_fixtures)
      - archive: releases/wordpress-6.4.1.tar.gz
        version: 6.4.1                     # optional: else the CMS detector reads it
      - folder: /srv/releases/wordpress-6.4.0
    extensions:                            # named sets; default: one empty set "none"
      none: []
      seo:
        - stub: {name: seo-helper, version: "2.1"}
        - folder: plugins/my-plugin
          into: wp-content/plugins/my-plugin
    php:
      - version: "8.2"                     # binary: looked up as php8.2, then php
      - {version: "7.4", binary: /opt/php/7.4/bin/php}
    modifications:                         # named sets; default: one empty set "none"
      none: {}
      edited-comments:
        expect: refused                    # the bundle must refuse this installation
        changes:
          - {file: wp-includes/comment-template.php, search: "a", replace: "b"}
          - {patch: mods/local.diff}
    smoke:
      urls: [/, /index.php]                # default per CMS
      probe_patched_files: true            # also request every patched PHP file

Relative paths are relative to the matrix file. :func:`load_matrix` raises
:class:`~patchd.errors.MatrixError` naming the field.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from patchd.errors import PatchdError
from patchd.versions import Version, VersionSet

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_FIXTURE_RE = re.compile(r"^([a-z0-9_-]+)@(.+)$")
#: More cells than this is refused: a matrix is a test plan, not a fleet.
MAX_CELLS = 1000


class MatrixError(PatchdError):
    """The matrix file is malformed; names the file and the field."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _rel_ok(v: str) -> str:
    parts = v.split("/")
    if v.startswith("/") or ".." in parts or not v or "\0" in v:
        raise ValueError("must be a relative path inside the installation, without '..'")
    return v


class ReleaseSpec(_Model):
    """One release (or, for a fixture version set, several): exactly one source."""

    fixture: str | None = Field(None, description="FAMILY@VERSIONS, e.g. wordpress@6.4.2")
    archive: str | None = None
    folder: str | None = None
    version: str | None = Field(None, description="the release's version (archive/folder)")
    cms: str | None = Field(None, description="the release's CMS (archive/folder)")

    @model_validator(mode="after")
    def _one_source(self) -> ReleaseSpec:
        given = [k for k in ("fixture", "archive", "folder") if getattr(self, k)]
        if len(given) != 1:
            raise ValueError("give exactly one of fixture, archive, folder")
        if self.fixture:
            m = _FIXTURE_RE.match(self.fixture)
            if not m:
                raise ValueError("fixture must be FAMILY@VERSIONS, e.g. wordpress@6.4.2")
            VersionSet.parse(m.group(2))
            if self.version:
                raise ValueError("version is part of the fixture reference")
        return self

    @field_validator("version")
    @classmethod
    def _version(cls, v: str | None) -> str | None:
        if v is not None:
            Version.parse(v)
        return v


class StubExtension(_Model):
    """A generated extension/plugin of the CMS's shape, optionally with extra files."""

    name: str
    version: str = "1.0.0"
    files: dict[str, str] = Field(default_factory=dict, description="path in extension: text")

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _NAME_RE.match(v):
            raise ValueError("letters, digits, '.', '_' and '-' only")
        return v

    @field_validator("version", mode="before")
    @classmethod
    def _stub_version(cls, v: object) -> str:
        text = str(v)
        if not re.match(r"^[A-Za-z0-9][A-Za-z0-9.+_-]{0,31}$", text):
            raise ValueError("a version like 1.2.3")
        return text

    @field_validator("files")
    @classmethod
    def _files(cls, v: dict[str, str]) -> dict[str, str]:
        for path in v:
            _rel_ok(path)
        return v


class ExtensionSpec(_Model):
    """An extension: a generated ``stub`` or a ``folder`` copied ``into`` the installation."""

    stub: StubExtension | None = None
    folder: str | None = None
    into: str | None = None

    @model_validator(mode="after")
    def _one(self) -> ExtensionSpec:
        if (self.stub is None) == (self.folder is None):
            raise ValueError("give exactly one of stub, folder")
        if self.folder is not None:
            if not self.into:
                raise ValueError("a folder extension needs 'into' (its path in the installation)")
            _rel_ok(self.into)
        return self


class PhpSpec(_Model):
    """A PHP version of the matrix, optionally with the binary that runs it."""

    version: str
    binary: str | None = None

    @field_validator("version", mode="before")
    @classmethod
    def _version(cls, v: object) -> str:
        text = str(v)
        if not re.match(r"^\d+\.\d+(\.\d+)?$", text):
            raise ValueError("a PHP version like 8.2 or 7.4.33")
        return text


class SearchReplace(_Model):
    """A customer edit: ``search`` (must occur) becomes ``replace`` in ``file``."""

    file: str
    search: str
    replace: str

    @field_validator("file")
    @classmethod
    def _file(cls, v: str) -> str:
        return _rel_ok(v)

    @field_validator("search")
    @classmethod
    def _search(cls, v: str) -> str:
        if not v:
            raise ValueError("must not be empty")
        return v


class PatchChange(_Model):
    """A customer edit given as a unified diff (``-p1`` from the installation root)."""

    patch: str


class ModificationSet(_Model):
    """Customer edits of one cell and whether the bundle must apply or refuse there."""

    expect: Literal["applies", "refused"] = "applies"
    changes: tuple[Annotated[SearchReplace | PatchChange, Field(union_mode="smart")], ...] = ()


class SmokeSpec(_Model):
    """The smoke test: entry URLs (default per CMS) and whether patched files are probed."""

    enabled: bool = True
    urls: tuple[str, ...] | None = None
    docroot: str | None = Field(None, description="relative to the installation root")
    probe_patched_files: bool = True
    timeout: float = Field(10.0, gt=0, le=120)

    @field_validator("urls")
    @classmethod
    def _urls(cls, v: tuple[str, ...] | None) -> tuple[str, ...] | None:
        for url in v or ():
            if not url.startswith("/") or any(c in url for c in " \r\n\t#"):
                raise ValueError(f"{url!r}: a path starting with '/' (no spaces or '#')")
        return v

    @field_validator("docroot")
    @classmethod
    def _docroot(cls, v: str | None) -> str | None:
        return None if v in (None, "", ".") else _rel_ok(v)


def _default_ext() -> dict[str, tuple[ExtensionSpec, ...]]:
    return {"none": ()}


def _default_mods() -> dict[str, ModificationSet]:
    return {"none": ModificationSet()}


class Matrix(_Model):
    """A whole matrix file. ``base`` is the folder relative paths are resolved against."""

    releases: tuple[ReleaseSpec, ...] = Field(min_length=1)
    extensions: dict[str, tuple[ExtensionSpec, ...]] = Field(default_factory=_default_ext)
    php: tuple[PhpSpec, ...] = Field(min_length=1)
    modifications: dict[str, ModificationSet] = Field(default_factory=_default_mods)
    smoke: SmokeSpec = SmokeSpec()
    base: Path = Path(".")

    @field_validator("extensions", "modifications")
    @classmethod
    def _names(cls, v: dict) -> dict:
        if not v:
            raise ValueError("give at least one set (an empty set is written: none: [])")
        for name in v:
            if not _NAME_RE.match(str(name)):
                raise ValueError(f"set name {name!r}: letters, digits, '.', '_' and '-' only")
        return v

    @field_validator("modifications", mode="before")
    @classmethod
    def _mods_none(cls, v: object) -> object:
        # NOTE: ``none: {}`` and ``none:`` (null) both mean "no edits".
        if isinstance(v, dict):
            return {k: ({} if val is None else val) for k, val in v.items()}
        return v

    @field_validator("extensions", mode="before")
    @classmethod
    def _ext_none(cls, v: object) -> object:
        if isinstance(v, dict):
            return {k: ([] if val is None else val) for k, val in v.items()}
        return v

    def resolve(self, path: str) -> Path:
        """``path`` from the matrix file, made absolute against :attr:`base`."""
        p = Path(path).expanduser()
        return p if p.is_absolute() else self.base / p


def load_matrix(path: Path) -> Matrix:
    """Read and validate the matrix file at ``path``."""
    where = str(path)
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise MatrixError(f"cannot read: {exc.strerror}", where=where) from None
    except UnicodeDecodeError:
        raise MatrixError("not UTF-8 text", where=where) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" (line {mark.line + 1})" if mark is not None else ""
        raise MatrixError(f"not valid YAML{line}", where=where) from None
    return matrix_from_data(data, base=Path(path).resolve().parent, where=where)


def matrix_from_data(data: object, *, base: Path, where: str = "matrix") -> Matrix:
    """Validate already-parsed matrix ``data``; relative paths resolve against ``base``."""
    if not isinstance(data, dict):
        raise MatrixError("expected a mapping at the top", where=where)
    if "base" in data:
        raise MatrixError("field base: not allowed in the file", where=where)
    try:
        return Matrix.model_validate({**data, "base": base})
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"] if not str(p).startswith("function-"))
        msg = first["msg"].removeprefix("Value error, ")
        raise MatrixError(f"field {field}: {msg}", where=where) from None
