"""The PHP symbols files define and reference, read by PHP's own tokenizer.

:func:`read_symbols` runs ``php_symbols.php`` (package data, next to this module) in ONE
``php`` process for any number of files: file contents go in as JSON on stdin (base64),
per file the defined and referenced symbols come back as JSON (``PhpToken::tokenize`` on
PHP 8, ``token_get_all`` on PHP 7). Nothing is executed: the script only tokenizes.

Symbols (``kind``, ``name``) are resolved against the file's namespace and ``use``
imports, in PHP's spelling (case kept, for messages):

- ``function`` ``A\\f``, ``class`` ``A\\B`` (also interfaces, traits, enums),
  ``const`` ``A\\C`` (``const`` at top level, ``define('C', ...)``);
- ``method`` ``A\\B::m``, ``classconst`` ``A\\B::C`` (also enum cases), ``property``
  ``A\\B::$p`` (declared, or promoted in a constructor).

References: calls ``f()``, ``->m()`` / ``?->m()``, ``X::m()``, ``X::C``, ``X::$p``,
``->p``, ``new X``, ``X::``, ``extends``/``implements``/``instanceof``/``catch``, type
hints of parameters, properties and return types, ``use`` imports and trait ``use``,
attributes, constants. ``$this->m()``, ``self::``, ``static::`` resolve to the enclosing
class, ``parent::`` to its parent; any other receiver (``$obj->m()``) gives the class
``*`` (unknown). An unqualified function or constant in a namespace also carries its
global fallback in ``alt`` (PHP tries ``N\\f``, then ``f``). Strings and comments never
count (except code inside ``"{$...}"``, which PHP runs).

:func:`symbol_key` is the comparison key: class, function and method names are
case-insensitive in PHP, constants and properties are not.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from patchd.errors import PatchdError

SymbolKind = Literal["function", "class", "method", "classconst", "property", "const"]
#: The unknown receiver of ``$obj->m()`` / ``$obj->p``.
ANY_CLASS = "*"
TIMEOUT = 300
_SCRIPT = "php_symbols.php"


@dataclass(frozen=True)
class Symbol:
    """One definition or reference: kind, resolved name, 1-based line; ``alt``: for a
    reference the global fallback of an unqualified name in a namespace, for a class
    definition the class it extends."""

    kind: SymbolKind
    name: str
    line: int
    alt: str | None = None

    @property
    def key(self) -> str:
        """The comparison key (see :func:`symbol_key`)."""
        return symbol_key(self.kind, self.name)

    @property
    def keys(self) -> tuple[str, ...]:
        """The key and, for a namespaced unqualified name, the global fallback's key."""
        if self.alt is None or self.kind not in ("function", "const"):
            return (self.key,)
        return (self.key, symbol_key(self.kind, self.alt))

    @property
    def member(self) -> str:
        """For methods, properties and class constants: the part after ``::``."""
        return self.name.rpartition("::")[2]

    @property
    def owner(self) -> str:
        """For methods, properties and class constants: the class (``*`` when unknown)."""
        return self.name.rpartition("::")[0]


@dataclass(frozen=True)
class FileSymbols:
    """What one file defines and references; ``error`` when PHP could not tokenize it."""

    defs: tuple[Symbol, ...] = ()
    refs: tuple[Symbol, ...] = ()
    error: str | None = None


class _Reply(BaseModel):
    """One file of the script's answer (validated: the script's output is an edge)."""

    model_config = ConfigDict(extra="forbid")

    defs: list[tuple[SymbolKind, str, int, str | None]]
    refs: list[tuple[SymbolKind, str, int, str | None]]
    error: str | None


def symbol_key(kind: str, name: str) -> str:
    """``kind:name`` with PHP's case rules: class, function and method names fold case;
    constants, class constants and properties keep it (a namespace folds)."""
    if kind in ("function", "class"):
        return f"{kind}:{name.lower()}"
    if kind == "const":
        ns, _, last = name.rpartition("\\")
        return f"const:{ns.lower()}\\{last}" if ns else f"const:{last}"
    owner, _, member = name.rpartition("::")
    member = member.lower() if kind == "method" else member
    return f"{kind}:{owner.lower()}::{member}"


def script_source() -> str:
    """The PHP script's text (package data)."""
    return resources.files("patchd.bundle").joinpath(_SCRIPT).read_text(encoding="utf-8")


def read_symbols(
    files: Mapping[str, bytes], *, php: str, refs: Collection[str] | None = None
) -> dict[str, FileSymbols]:
    """Symbols of every file (name -> content) by one ``php`` process; same keys back.

    ``refs`` names the files whose references are wanted (default: all); the others get
    their definitions only (cheaper). Equal contents are tokenized once.
    :class:`PatchdError` when PHP fails as a whole (a file PHP cannot tokenize gets
    ``error`` instead).
    """
    if not files:
        return {}
    by_sha: dict[str, bytes] = {}
    sha_of: dict[str, str] = {}
    for name, data in files.items():
        sha = hashlib.sha256(data).hexdigest()
        sha_of[name] = sha
        by_sha.setdefault(sha, data)
    want = sorted({sha_of[n] for n in (files if refs is None else refs) if n in sha_of})
    payload = json.dumps(
        {
            "files": {sha: base64.b64encode(d).decode("ascii") for sha, d in by_sha.items()},
            "refs": want,
        }
    )
    replies = _run(payload.encode("ascii"), php)
    out: dict[str, FileSymbols] = {}
    parsed: dict[str, FileSymbols] = {}
    for sha in by_sha:
        if sha not in replies:
            raise PatchdError("the PHP symbol reader gave no answer for a file")
        if sha not in parsed:
            r = replies[sha]
            parsed[sha] = FileSymbols(
                tuple(Symbol(k, n, ln, alt) for k, n, ln, alt in r.defs),
                tuple(Symbol(k, n, ln, alt) for k, n, ln, alt in r.refs),
                r.error,
            )
    for name, sha in sha_of.items():
        out[name] = parsed[sha]
    return out


def _run(payload: bytes, php: str) -> dict[str, _Reply]:
    # NOTE: -n keeps the machine's php.ini (auto_prepend_file, extensions that print)
    # out; the tokenizer is a shared extension on Debian, loaded by name. Where it is
    # missing under -n the script says so (exit 3) and the machine's ini is tried.
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    with resources.as_file(resources.files("patchd.bundle").joinpath(_SCRIPT)) as script:
        for args in (["-n", "-d", "extension=tokenizer"], []):
            cmd = [php, *args, "-d", "memory_limit=-1", "-d", "display_errors=stderr", str(script)]
            try:
                proc = subprocess.run(
                    cmd, input=payload, capture_output=True, timeout=TIMEOUT, env=env, check=False
                )
            except subprocess.TimeoutExpired:
                raise PatchdError(f"the PHP symbol reader timed out after {TIMEOUT}s") from None
            except OSError as exc:
                raise PatchdError(f"cannot run PHP ({php}): {exc.strerror}") from None
            if proc.returncode != 3:
                break
    if proc.returncode != 0:
        err = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise PatchdError(
            f"the PHP symbol reader failed (exit {proc.returncode}): "
            + (err[-1] if err else "no message")
        )
    try:
        raw = json.loads(proc.stdout)
        if not isinstance(raw, dict):
            raise ValueError("not an object")
        return {k: _Reply.model_validate(v) for k, v in raw.items()}
    except (ValueError, ValidationError) as exc:
        raise PatchdError(f"the PHP symbol reader gave unreadable output: {exc}") from None
