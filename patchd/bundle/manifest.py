"""The patch bundle on disk: ``patches/<id>/manifest.yaml`` and the diffs it names.

A bundle is immutable once published: the manifest carries ``digest``, the sha256 over
every field of the manifest but the digest itself (what gates safety: affected versions,
fixed-in, minimum PHP, the variants with their versions, files and hashes, CMS,
component, advisories, severity, ...) and every diff file of the bundle (name and
content). :func:`load_bundle` refuses a bundle whose manifest or diffs do not match it,
and a bundle sealed by an older patchd (whose digest covered the diffs only) with the
command that re-seals it after review (:func:`reseal_bundle`, ``patchd reseal``).
Rollouts pick the variant whose version set holds the installed version (``patch.diff``
for the affected versions it was built on, ``variants/<versions>.diff`` for backports).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    ValidationError,
    field_validator,
    model_serializer,
)

from patchd import __version__
from patchd.engine.model import FilePatch
from patchd.engine.parse import parse_diff
from patchd.errors import BundleError
from patchd.versions import Version, VersionSet

MANIFEST = "manifest.yaml"
MAIN_DIFF = "patch.diff"
VARIANTS_DIR = "variants"
BUILD_REPORT = "build-report.json"
TESTED = "tested.json"

_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_DIFF_NAME_RE = re.compile(r"^(patch\.diff|variants/[A-Za-z0-9][A-Za-z0-9._,+-]{0,150}\.diff)$")
_SHA_RE = re.compile(r"^[0-9a-f]{64}$")
MAX_DIFF_BYTES = 64 * 1024 * 1024


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TouchedFile(_Model):
    """One file a variant changes, with its pre- and post-image sha256 (None: absent)."""

    path: str
    pre_sha256: str | None = None
    post_sha256: str | None = None

    @field_validator("pre_sha256", "post_sha256")
    @classmethod
    def _sha(cls, v: str | None) -> str | None:
        if v is not None and not _SHA_RE.match(v):
            raise ValueError("not a sha256 hex digest")
        return v


class Variant(_Model):
    """One diff of the bundle and the versions it is for."""

    versions: str = Field(description="version set, e.g. 6.4.0-6.4.2")
    file: str = Field(description="patch.diff or variants/NAME.diff")
    files: tuple[TouchedFile, ...] = ()
    method: Literal["exact", "merge", "resolved", "fuzz", "sibling"] | None = Field(
        default=None,
        description="how the variant was made (absent in bundles built before issue 13)",
    )

    @model_serializer(mode="wrap")
    def _without_absent_method(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # NOTE: a bundle sealed before ``method`` existed must keep its digest.
        data = handler(self)
        if data.get("method") is None:
            data.pop("method", None)
        return data

    @field_validator("versions")
    @classmethod
    def _versions(cls, v: str) -> str:
        VersionSet.parse(v)
        return v

    @field_validator("file")
    @classmethod
    def _file(cls, v: str) -> str:
        if not _DIFF_NAME_RE.match(v) or ".." in v:
            raise ValueError("must be patch.diff or variants/NAME.diff")
        return v

    @property
    def version_set(self) -> VersionSet:
        return VersionSet.parse(self.versions)


class Summary(_Model):
    """The short customer-facing summary, in German and English."""

    de: str
    en: str


class Manifest(_Model):
    """``manifest.yaml`` of a bundle (keys are a stable contract)."""

    id: str
    title: str
    advisories: tuple[str, ...] = ()
    severity: Literal["low", "medium", "high", "critical"] = "high"
    cms: str
    component: str = "core"
    affected: str
    fixed_in: str | None = None
    min_php: str | None = None
    summary: Summary
    variants: tuple[Variant, ...]
    digest: str
    created_at: str = Field(default_factory=lambda: datetime.now(UTC).isoformat())
    patchd_version: str = __version__
    skipped_checks: tuple[Literal["php-lint", "closure"], ...] = Field(
        default=(),
        description="validation checks the build did not run (--no-lint; closure: no PHP)",
    )
    undecided: Literal["keep", "drop"] | None = Field(
        default=None,
        description="--undecided: how the hunks no classifier or review decided were decided",
    )
    undecided_hunks: tuple[str, ...] = Field(
        default=(), description="the hunk ids --undecided decided (see build-report.json)"
    )

    @field_validator("id")
    @classmethod
    def _id(cls, v: str) -> str:
        if not _ID_RE.match(v):
            raise ValueError("letters, digits, '.', '_' and '-' only (max 100)")
        return v

    @field_validator("affected")
    @classmethod
    def _affected(cls, v: str) -> str:
        VersionSet.parse(v)
        return v

    @field_validator("min_php")
    @classmethod
    def _php(cls, v: str | None) -> str | None:
        if v is not None:
            Version.parse(v)
        return v

    @property
    def affected_set(self) -> VersionSet:
        return VersionSet.parse(self.affected)


def diffs_digest(diffs: dict[str, bytes]) -> str:
    """sha256 over every diff file's name and content, in name order.

    NOTE: this alone was a bundle's digest before issue 16 ("legacy" seal): it left the
    manifest's safety gates (min_php, affected, variants, ...) open to silent edits.
    """
    h = hashlib.sha256()
    for name in sorted(diffs):
        h.update(name.encode())
        h.update(b"\0")
        h.update(hashlib.sha256(diffs[name]).digest())
    return h.hexdigest()


#: Domain separation of :func:`bundle_digest` (a legacy digest can never equal one).
_DIGEST_V2 = b"patchd bundle digest v2\0"


def covered_fields(manifest: Manifest, keys: Iterable[str]) -> dict[str, Any]:
    """The normalised values of the manifest ``keys`` the digest covers (all given keys
    but ``digest``), as JSON-ready data."""
    covered = set(keys) - {"digest"}
    return manifest.model_dump(mode="json", include=covered)


def bundle_digest(fields: Mapping[str, Any], diffs: dict[str, bytes]) -> str:
    """sha256 over the manifest's fields (canonical JSON, ``digest`` left out) and
    :func:`diffs_digest` of the diffs."""
    data = {k: v for k, v in fields.items() if k != "digest"}
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    h = hashlib.sha256(_DIGEST_V2)
    h.update(text.encode("utf-8"))
    h.update(b"\0")
    h.update(diffs_digest(diffs).encode("ascii"))
    return h.hexdigest()


#: What the digest covers, for messages and docs.
DIGEST_COVERS = (
    "every manifest field but digest (id, title, advisories, severity, cms, component, "
    "affected, fixed_in, min_php, summary, variants with versions, files and hashes, "
    "created_at, patchd_version, skipped_checks, undecided, undecided_hunks) and every "
    "diff file"
)


class Bundle:
    """A loaded, digest-checked bundle: the manifest plus the parsed diff of each variant."""

    def __init__(self, path: Path, manifest: Manifest, diffs: dict[str, bytes]) -> None:
        self.path = path
        self.manifest = manifest
        self.diffs = diffs
        self._parsed: dict[str, list[FilePatch]] = {}

    @property
    def id(self) -> str:
        return self.manifest.id

    def variant_for(self, version: str | None) -> Variant | None:
        """The variant whose versions hold ``version``; None when none does (or unknown)."""
        if version is None:
            return None
        try:
            v = Version.parse(version)
        except ValueError:
            return None
        for variant in self.manifest.variants:
            if v in variant.version_set:
                return variant
        return None

    def is_affected(self, version: str | None) -> bool:
        """Whether ``version`` is in the bundle's affected versions."""
        if version is None:
            return False
        try:
            return Version.parse(version) in self.manifest.affected_set
        except ValueError:
            return False

    def patches(self, variant: Variant) -> list[FilePatch]:
        """The parsed file patches of ``variant`` (cached)."""
        if variant.file not in self._parsed:
            self._parsed[variant.file] = parse_diff(
                self.diffs[variant.file], source=f"{self.path}/{variant.file}"
            )
        return self._parsed[variant.file]


def load_bundle(path: Path) -> Bundle:
    """Load ``path`` (a bundle folder), validate the manifest, check the digest.

    BundleError when the manifest or a diff differs from what the bundle was sealed with,
    or when an older patchd sealed it (the message names ``patchd reseal``).
    """
    bundle, data = _read_bundle(path)
    _check_digest(bundle, data)
    return bundle


def _read_bundle(path: Path) -> tuple[Bundle, dict[str, Any]]:
    """The bundle at ``path`` with its manifest validated, digest NOT checked, and the
    manifest's raw mapping."""
    where = str(path)
    manifest_path = path / MANIFEST
    if not manifest_path.is_file():
        raise BundleError(f"no {MANIFEST} (is this a bundle folder?)", where=where)
    try:
        data = yaml.safe_load(manifest_path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark is not None else ""
        raise BundleError(f"{MANIFEST}{line}: not valid YAML", where=where) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BundleError(f"{MANIFEST}: cannot read: {exc}", where=where) from None
    if not isinstance(data, dict):
        raise BundleError(f"{MANIFEST}: expected a mapping at the top", where=where)
    try:
        manifest = Manifest.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        raise BundleError(f"{MANIFEST}: field {field}: {first['msg']}", where=where) from None
    diffs: dict[str, bytes] = {}
    for variant in manifest.variants:
        diffs[variant.file] = _read_diff(path, variant.file)
    # NOTE: every .diff file in the folder counts, so a stray extra diff is noticed too.
    for extra in (
        sorted((path / VARIANTS_DIR).glob("*.diff")) if (path / VARIANTS_DIR).is_dir() else []
    ):
        name = f"{VARIANTS_DIR}/{extra.name}"
        diffs.setdefault(name, _read_diff(path, name))
    return Bundle(path, manifest, diffs), data


def _check_digest(bundle: Bundle, data: Mapping[str, Any]) -> None:
    where = str(bundle.path)
    manifest = bundle.manifest
    if bundle_digest(covered_fields(manifest, data), bundle.diffs) == manifest.digest:
        return
    if diffs_digest(bundle.diffs) == manifest.digest:
        raise BundleError(
            "sealed by an older patchd: its digest covers the diffs only, not the manifest's "
            "safety fields (affected, min_php, variants, severity, ...). Review manifest.yaml "
            f"against the build report, then re-seal it with: patchd reseal {where}",
            where=where,
        )
    raise BundleError(
        f"digest mismatch: {MANIFEST} or the diffs differ from what the bundle was sealed "
        f"with (the digest covers {DIGEST_COVERS}); a bundle is immutable once published: "
        "build a new one",
        where=where,
    )


def reseal_bundle(path: Path) -> tuple[str, str]:
    """Re-seal a bundle sealed by an older patchd: write its manifest again with a digest
    covering the manifest's fields too. Returns (old digest, new digest).

    Refused unless the old digest still matches the diffs (an edited diff is not
    re-sealed) and the bundle is not sealed with the current digest already.
    """
    bundle, data = _read_bundle(path)
    where = str(path)
    old = bundle.manifest.digest
    fields = covered_fields(bundle.manifest, data)
    if bundle_digest(fields, bundle.diffs) == old:
        raise BundleError("already sealed with the current digest; nothing to do", where=where)
    if diffs_digest(bundle.diffs) != old:
        raise BundleError(
            "digest mismatch: the diffs differ from what the bundle was sealed with; "
            "refusing to re-seal an edited bundle: build a new one",
            where=where,
        )
    new = bundle_digest(fields, bundle.diffs)
    out = dict(data)
    out["digest"] = new
    text = yaml.safe_dump(out, sort_keys=False, allow_unicode=True, width=100)
    _replace_text(path / MANIFEST, text)
    return old, new


def _replace_text(target: Path, text: str) -> None:
    """Write ``text`` to ``target`` atomically (temp file in the folder, fsync, rename)."""
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".manifest-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, target.stat().st_mode & 0o7777)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _read_diff(path: Path, name: str) -> bytes:
    target = path / name
    if target.is_symlink() or not target.is_file():
        raise BundleError(f"{name}: missing or not a regular file", where=str(path))
    if target.stat().st_size > MAX_DIFF_BYTES:
        raise BundleError(f"{name}: larger than {MAX_DIFF_BYTES} bytes", where=str(path))
    return target.read_bytes()


def write_bundle(path: Path, manifest_fields: dict, diffs: dict[str, bytes]) -> Manifest:
    """Write a new bundle folder: the diffs, then the manifest with their digest.

    Refuses to overwrite an existing bundle (bundles are immutable once published).
    """
    if (path / MANIFEST).exists():
        raise BundleError("a bundle exists here already; bundles are immutable", where=str(path))
    fields = dict(manifest_fields)
    fields["digest"] = ""
    try:
        manifest = Manifest.model_validate(fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        raise BundleError(f"manifest field {field}: {first['msg']}", where=str(path)) from None
    (path / VARIANTS_DIR).mkdir(parents=True, exist_ok=True)
    for name, data in diffs.items():
        (path / name).write_bytes(data)
    data = manifest.model_dump(mode="json")
    # NOTE: written only when a check was skipped or --undecided decided hunks, so other
    # bundles keep the manifest shape they had before these keys existed.
    for key in ("skipped_checks", "undecided", "undecided_hunks"):
        if not data[key]:
            del data[key]
    data["digest"] = bundle_digest(data, diffs)
    manifest = manifest.model_copy(update={"digest": data["digest"]})
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)
    (path / MANIFEST).write_text(text, encoding="utf-8")
    return manifest
