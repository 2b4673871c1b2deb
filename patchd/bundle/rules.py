"""The security team's rules file: explicit keep/drop decisions that beat every classifier.

Format (YAML)::

    rules:
      # Keep every hunk of one file.
      - include: {path: "typo3/sysext/core/Classes/Resource/*.php"}
        comment: "CVE-2024-0001: file abstraction layer fix"
      # Drop one hunk by its id (as shown by ``patchd show`` / build-report.json).
      - exclude: {hunk: "wp-includes/version.php@16-3f2a9c01bd"}
        comment: "version bump, customers keep their version"
      # Keep hunks whose changed lines match a regular expression (re.search per line).
      - include: {line: "wp_kses_bad_protocol"}
        comment: "reviewed: protocol filter"
      # Fields combine with AND: a path glob and a line regex.
      - exclude: {path: "**/*.js", line: "console\\\\.log"}
        comment: "debug output only"

- Every rule has exactly one of ``include`` (keep) or ``exclude`` (drop) and a non-empty
  ``comment`` (why; it becomes the verdict's reason). Unknown keys are errors.
- A matcher has at least one of ``path``, ``hunk``, ``line``; all given fields must match.
- ``path`` is a glob on the release path (``/``-separated, relative to the release root):
  ``*`` and ``?`` stay inside one path segment, ``**`` spans segments (``**/`` also matches
  no folder at all), ``[abc]`` is a character class. A glob without ``/`` matches the file
  name in any folder (``*.po``).
- ``hunk`` is a hunk id; a binary file without hunks has the id ``"<path>@binary"``.
- ``line`` is a Python regular expression searched in each changed (added or removed) line,
  without its end-of-line; it never matches a file without hunks.
- Rules are tried in file order; the first match decides.

Backport conflicts a person resolved (``patchd build --review``) are recorded next to the
rules, by backport version and conflict id, with a digest of the conflict's two sides so a
changed conflict is never resolved with a stale answer::

    resolutions:
      - resolve: {version: "6.4.0", hunk: "wp-includes/comment-template.php@conflict1",
                  conflict: "<sha256>"}
        result: |
          print( esc_html( $author ) ); // legacy output path
        comment: "review: resolved backport conflict"

``patchd build --review`` appends the reviewer's decisions with :func:`append_rule`, which
keeps the existing text (comments included) and adds the new entry at the end.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from patchd.errors import PatchdError


class RulesError(PatchdError):
    """The rules file is unreadable or malformed; names the rule (1-based) and the field."""


class Matcher(BaseModel):
    """What a rule matches: a path glob, a hunk id, a line regex (all given must match)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str | None = None
    hunk: str | None = None
    line: str | None = None

    @field_validator("path", "hunk")
    @classmethod
    def _not_empty(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("must not be empty")
        return value

    @field_validator("line")
    @classmethod
    def _valid_regex(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"invalid regular expression: {exc}") from None
        return value

    @model_validator(mode="after")
    def _at_least_one(self) -> Matcher:
        if self.path is None and self.hunk is None and self.line is None:
            raise ValueError("needs at least one of path, hunk, line")
        return self

    def describe(self) -> str:
        """A short human form, e.g. ``path=*.po line=foo``."""
        parts = [
            f"{k}={v}"
            for k, v in (("path", self.path), ("hunk", self.hunk), ("line", self.line))
            if v is not None
        ]
        return " ".join(parts)


class Rule(BaseModel):
    """One entry of the rules file: ``include`` or ``exclude`` a match, with a ``comment``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    include: Matcher | None = None
    exclude: Matcher | None = None
    comment: str

    @field_validator("comment")
    @classmethod
    def _comment_given(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must say why (empty comment)")
        return value

    @model_validator(mode="after")
    def _exactly_one(self) -> Rule:
        if (self.include is None) == (self.exclude is None):
            raise ValueError("needs exactly one of include, exclude")
        return self

    @property
    def action(self) -> Literal["include", "exclude"]:
        """``include`` (keep) or ``exclude`` (drop)."""
        return "include" if self.include is not None else "exclude"

    @property
    def matcher(self) -> Matcher:
        """The include or exclude matcher."""
        m = self.include if self.include is not None else self.exclude
        assert m is not None
        return m

    def to_yaml_obj(self) -> dict[str, Any]:
        """The plain form written to the rules file."""
        return {
            self.action: self.matcher.model_dump(exclude_none=True),
            "comment": self.comment,
        }


class ConflictKey(BaseModel):
    """Which backport conflict a resolution answers: version, conflict id and its digest."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: str
    hunk: str
    conflict: str = Field(description="sha256 of the conflict's two sides (see conflict_digest)")


class Resolution(BaseModel):
    """A person's resolution of one backport conflict: the lines that replace it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    resolve: ConflictKey
    result: str
    comment: str

    def to_yaml_obj(self) -> dict[str, Any]:
        """The plain form written to the rules file."""
        return {
            "resolve": self.resolve.model_dump(),
            "result": self.result,
            "comment": self.comment,
        }


def conflict_digest(ours: str, theirs: str) -> str:
    """The digest that ties a resolution to the conflict it was made for: a conflict whose
    sides changed (another release, another fix) is never resolved with a stale answer."""
    h = hashlib.sha256()
    h.update(ours.encode("utf-8", "surrogateescape"))
    h.update(b"\0")
    h.update(theirs.encode("utf-8", "surrogateescape"))
    return h.hexdigest()


class RulesFile(BaseModel):
    """The whole file: ``rules: [...]`` and ``resolutions: [...]`` (backport conflicts)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rules: list[Rule] = []
    resolutions: list[Resolution] = []


@dataclass(frozen=True)
class CompiledRule:
    """A validated rule with its glob and regex compiled, and its 0-based index in the file."""

    rule: Rule
    index: int
    source: str

    @cached_property
    def path_re(self) -> re.Pattern[str] | None:
        """The compiled ``path`` glob, if any."""
        p = self.rule.matcher.path
        return glob_to_regex(p) if p is not None else None

    @cached_property
    def line_re(self) -> re.Pattern[str] | None:
        """The compiled ``line`` regex, if any."""
        p = self.rule.matcher.line
        return re.compile(p) if p is not None else None

    @property
    def label(self) -> str:
        """How verdicts name the rule: ``rules.yaml#3 exclude path=*.po``."""
        return f"{self.source}#{self.index + 1} {self.rule.action} {self.rule.matcher.describe()}"

    def matches(self, path: str, hunk_id: str, changed: Sequence[str] | None) -> bool:
        """True when every given field matches (``changed`` is None for a hunkless file)."""
        m = self.rule.matcher
        if m.hunk is not None and m.hunk != hunk_id:
            return False
        if self.path_re is not None and not self.path_re.fullmatch(path):
            return False
        if self.line_re is not None:
            if changed is None:
                return False
            line_re = self.line_re
            if not any(line_re.search(ln) for ln in changed):
                return False
        return True


def load_rules(path: Path) -> list[CompiledRule]:
    """Read and validate a rules file; raises :class:`RulesError` naming the rule and field."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RulesError(f"cannot read rules file: {exc.strerror}", where=str(path)) from None
    return parse_rules(text, source=path.name, where=str(path))


def parse_rules(
    text: str, *, source: str = "rules", where: str | None = None
) -> list[CompiledRule]:
    """Validate rules from YAML text (see the module docstring for the format)."""
    parsed = parse_rules_file(text, where=where or source)
    return [CompiledRule(rule, i, source) for i, rule in enumerate(parsed.rules)]


def load_resolutions(path: Path) -> list[Resolution]:
    """The backport conflict resolutions of a rules file (none when it does not exist)."""
    if not path.exists():
        return []
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RulesError(f"cannot read rules file: {exc.strerror}", where=str(path)) from None
    return list(parse_rules_file(text, where=str(path)).resolutions)


def parse_rules_file(text: str, *, where: str) -> RulesFile:
    """The whole rules file validated (rules and resolutions)."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RulesError(f"not valid YAML: {exc}", where=where) from None
    if data is None:
        data = {"rules": []}
    if not isinstance(data, dict):
        raise RulesError("expected a mapping with a 'rules' list at the top", where=where)
    try:
        return RulesFile.model_validate(data)
    except ValidationError as exc:
        raise RulesError(_describe_errors(exc), where=where) from None


def append_rule(path: Path, rule: Rule) -> None:
    """Append ``rule`` to the rules file at ``path`` (created if missing), keeping its text.

    The new entry is added as text at the end so existing entries and comments survive;
    when the file's layout does not allow that (flow style, other keys after ``rules``) it
    is rewritten from the parsed data instead. Written atomically.
    """
    old_text = path.read_text(encoding="utf-8") if path.exists() else ""
    existing = [c.rule for c in parse_rules(old_text, source=path.name, where=str(path))]
    wanted = [*existing, rule]
    entry = yaml.safe_dump(
        [rule.to_yaml_obj()], sort_keys=False, allow_unicode=True, default_flow_style=False
    )
    base = old_text if old_text.strip() else "rules:\n"
    if not base.endswith("\n"):
        base += "\n"
    for indent in ("  ", ""):
        candidate = base + "".join(indent + ln + "\n" for ln in entry.splitlines())
        if _rules_of(candidate) == wanted:
            _write_atomic(path, candidate)
            return
    # NOTE: fallback loses YAML comments but never loses or reorders a rule.
    dumped = yaml.safe_dump(
        {"rules": [r.to_yaml_obj() for r in wanted]},
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
    )
    _write_atomic(path, dumped)


def append_resolution(path: Path, resolution: Resolution) -> None:
    """Add (or replace: same version and conflict id) a conflict resolution in the rules
    file at ``path``, keeping the ``rules`` and the other resolutions. Written atomically.

    NOTE: the file is rewritten from its parsed data when it has resolutions already (YAML
    comments in it are lost then, never a rule or a resolution).
    """
    old_text = path.read_text(encoding="utf-8") if path.exists() else ""
    parsed = parse_rules_file(old_text, where=str(path))
    key = (resolution.resolve.version, resolution.resolve.hunk)
    kept = [r for r in parsed.resolutions if (r.resolve.version, r.resolve.hunk) != key]
    wanted = RulesFile(rules=parsed.rules, resolutions=[*kept, resolution])
    if not parsed.resolutions:
        entry = yaml.safe_dump(
            {"resolutions": [resolution.to_yaml_obj()]},
            sort_keys=False,
            allow_unicode=True,
            default_flow_style=False,
        )
        base = old_text if old_text.endswith("\n") or not old_text else old_text + "\n"
        candidate = base + entry
        try:
            if parse_rules_file(candidate, where=str(path)) == wanted:
                _write_atomic(path, candidate)
                return
        except RulesError:
            pass
    dumped = yaml.safe_dump(
        {
            "rules": [r.to_yaml_obj() for r in wanted.rules],
            "resolutions": [r.to_yaml_obj() for r in wanted.resolutions],
        },
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
    )
    _write_atomic(path, dumped)


def glob_to_regex(glob: str) -> re.Pattern[str]:
    """Compile a path glob (see the module docstring) to a full-match regex."""
    if "/" not in glob:
        glob = "**/" + glob
    out: list[str] = []
    i = 0
    while i < len(glob):
        c = glob[i]
        if glob.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif glob.startswith("**", i):
            out.append(".*")
            i += 2
        elif c == "*":
            out.append("[^/]*")
            i += 1
        elif c == "?":
            out.append("[^/]")
            i += 1
        elif c == "[":
            j = glob.find("]", i + 2)
            if j == -1:
                out.append(re.escape(c))
                i += 1
            else:
                body = glob[i + 1 : j]
                if body.startswith("!"):
                    body = "^" + body[1:]
                out.append("[" + body.replace("\\", "\\\\") + "]")
                i = j + 1
        else:
            out.append(re.escape(c))
            i += 1
    return re.compile("".join(out))


def _rules_of(text: str) -> list[Rule] | None:
    try:
        return [c.rule for c in parse_rules(text)]
    except RulesError:
        return None


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _describe_errors(exc: ValidationError) -> str:
    """``rule 3: include.line: invalid regular expression ...; ...`` from pydantic errors."""
    parts: list[str] = []
    for err in exc.errors():
        loc = list(err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        if len(loc) >= 2 and loc[0] == "rules" and isinstance(loc[1], int):
            field = ".".join(str(p) for p in loc[2:])
            head = f"rule {loc[1] + 1} (index {loc[1]})"
            parts.append(f"{head}, field {field}: {msg}" if field else f"{head}: {msg}")
        else:
            parts.append(f"{'.'.join(str(p) for p in loc) or 'file'}: {msg}")
    return "; ".join(parts)
