"""The dependency closure check: patched OLD must not use what only dropped changes define.

A minimal patch keeps some hunks of the release diff and drops the rest. When a kept hunk
calls a method (function, class, constant, property) that NEW defines in a *dropped*
hunk, every installation patched with the bundle dies with a PHP fatal error ("Call to
undefined method") the first time the code runs, although ``php -l`` passes. This module
finds such references before a bundle is written:

1. **Files.** The PHP files of the release diff that matter: the files the patch touches
   (OLD's, patched OLD's and NEW's version) and the other changed files with a changed
   line that can define something (``function``, ``class``, ``const``, ``define``,
   ``case``, ``namespace``, a property modifier ...; OLD's and NEW's version, patched OLD
   being OLD there). All of them are read by ONE ``php`` process
   (:func:`patchd.bundle.php_symbols.read_symbols`); equal contents are read once.
2. **Dropped definitions**: the symbols NEW's versions of those files define that no
   patched version of them defines. Each is located in the release hunk whose new-side
   range holds the definition's line (for a file new in NEW: its only hunk).
3. **Introduced references**: per file of the patch, the references of the patched file
   whose symbol OLD's version of the file does not reference at all; each is located in
   the kept hunk whose patched-side range holds its line.
4. A reference to a dropped definition is a **problem**. ``$this->m()``, ``self::m()``,
   ``static::m()`` and ``parent::m()`` resolve to the enclosing class (its parent); a
   member a parent class defines (read among the checked files) is inherited, no
   problem; when the parent was not read, the problem says it may be inherited. A method,
   property or class constant on an object of unknown class (``$obj->m()``) is matched by
   name against the dropped definitions of every class, unless some class of the checked
   files or (by text, read only then) some other PHP file of OLD still declares that
   name: a false alarm there is cheaper than a fatal error on customers' sites, and the
   message says it was matched by name.
5. **Variants** (:func:`check_all`, same ``php`` process): a backport variant's added
   references to symbols patched OLD defines and the variant's patched release does not.

Limits (NOTE): files the release diff does not touch are not read, so a symbol NEW
defines in a dropped hunk and OLD also defines in an untouched file counts as dropped
(a false alarm); calls through strings (``call_user_func('f')``, ``[$this, 'm']``),
variable names (``$obj->$m()``) and ``__call`` are not seen.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from patchd.bundle.php_symbols import ANY_CLASS, FileSymbols, Symbol, read_symbols, symbol_key
from patchd.bundle.report import ClosureEntry, ClosureProblem, DroppedDefinition
from patchd.bundle.validate import PHP_SUFFIXES, is_php
from patchd.engine.model import FilePatch, Hunk
from patchd.release.tree import FileChange, ReleaseDiff, ReleaseHunk

ReadFile = Callable[[str], bytes | None]
#: Whether the release (outside the checked files) defines a member: (kind, name) -> bool.
Elsewhere = Callable[[str, str], bool]

#: A changed line that may define a symbol (or change the names of those defined below it).
_DEF_HINT = re.compile(
    rb"\b(?:function|class|interface|trait|enum|const|define|case|namespace|public|protected|"
    rb"private|var|static|readonly)\b",
    re.IGNORECASE,
)

BY_NAME = "the object's class is unknown"
_WHAT = {
    "function": "function",
    "class": "class",
    "method": "method",
    "classconst": "class constant",
    "property": "property",
    "const": "constant",
}


def display(sym: Symbol) -> str:
    """``method Foo::isAllowedX()``, ``class Foo\\Bar``, ``constant LIMIT`` ..."""
    suffix = "()" if sym.kind in ("function", "method") else ""
    name = sym.name
    if sym.owner == ANY_CLASS:
        name = f"->{sym.member}" if sym.kind != "classconst" else f"::{sym.member}"
    return f"{_WHAT[sym.kind]} {name}{suffix}"


def relevant_changes(diff: ReleaseDiff, patch_paths: set[str]) -> list[FileChange]:
    """The changed files the check reads (see the module docstring, step 1)."""
    out = []
    for fc in diff.files:
        if fc.kind == "binary" or fc.is_link or not fc.hunks:
            continue
        if fc.path in patch_paths or any(
            ln.kind != " " and _DEF_HINT.search(ln.data) for rh in fc.hunks for ln in rh.hunk.lines
        ):
            out.append(fc)
    return out


@dataclass(frozen=True)
class VariantPatch:
    """A backport variant to check: its release, patch, kept hunk ids and patched files."""

    version: str
    patches: Sequence[FilePatch]
    ids: Mapping[str, Sequence[str]]
    patched: Mapping[str, bytes | None]
    read: ReadFile
    root: Path | None = None  # the release's folder: by-name matches look there too


@dataclass(frozen=True)
class _Target:
    """One file of a patch: its hunks and ids, symbols before and after the patch."""

    path: str
    patch: FilePatch
    ids: Sequence[str]
    before: FileSymbols
    after: FileSymbols


def check_closure(
    diff: ReleaseDiff,
    patches: Sequence[FilePatch],
    ids: Mapping[str, Sequence[str]],
    patched: Mapping[str, bytes | None],
    read_old: ReadFile,
    read_new: ReadFile,
    *,
    php: str,
) -> ClosureEntry:
    """Run the check (module docstring) on the minimal patch ``patches`` (kept hunk ids
    per file in ``ids``, patched contents in ``patched``) against the release diff."""
    return check_all(diff, patches, ids, patched, read_old, read_new, php=php)[0]


def check_all(
    diff: ReleaseDiff,
    patches: Sequence[FilePatch],
    ids: Mapping[str, Sequence[str]],
    patched: Mapping[str, bytes | None],
    read_old: ReadFile,
    read_new: ReadFile,
    *,
    php: str,
    variants: Sequence[VariantPatch] = (),
    old_root: Path | None = None,
) -> tuple[ClosureEntry, dict[str, tuple[ClosureProblem, ...]]]:
    """:func:`check_closure`, plus each backport variant in the same ``php`` process.

    A variant's problems (by version) are the references its hunks add to symbols that
    patched OLD defines in the checked files and the variant's patched release does not
    (a helper the fix calls that the older release never had).
    """
    by_path = {fp.path: fp for fp in patches}
    changes = relevant_changes(diff, set(by_path))
    versions: dict[str, bytes] = {}  # "old:PATH" / "new:PATH" / "patched:PATH" -> bytes
    # NOTE: references are read only where they are compared (the files of a patch);
    # elsewhere definitions suffice, which is much less output.
    wanted: list[str] = []

    def add(side: str, path: str, data: bytes | None, refs: bool) -> None:
        if data is not None and is_php(path, data):
            versions[f"{side}:{path}"] = data
            if refs:
                wanted.append(f"{side}:{path}")

    for fc in changes:
        old = read_old(fc.path)
        touched = fc.path in by_path
        add("old", fc.path, old, touched)
        add("new", fc.path, read_new(fc.path), False)
        add("patched", fc.path, patched.get(fc.path) if touched else old, touched)
    for v in variants:
        v_paths = {fp.path for fp in v.patches}
        for fc in changes:
            rel = v.read(fc.path)
            touched = fc.path in v_paths
            add(f"{v.version}/old", fc.path, rel, touched)
            after = v.patched.get(fc.path) if touched else rel
            add(f"{v.version}/patched", fc.path, after, touched)
    if not versions:
        return ClosureEntry("ok", note="no PHP file changed"), {}
    syms = read_symbols(versions, php=php, refs=wanted)
    files = tuple(sorted({k.split(":", 1)[1] for k in versions}))
    unreadable = tuple(sorted({k.split(":", 1)[1] for k, s in syms.items() if s.error}))

    def of(side: str, path: str) -> FileSymbols:
        return syms.get(f"{side}:{path}", FileSymbols())

    def defined(side: str) -> dict[str, tuple[Symbol, str]]:
        out: dict[str, tuple[Symbol, str]] = {}
        for fc in changes:
            for d in of(side, fc.path).defs:
                out.setdefault(d.key, (d, fc.path))
        return out

    def targets(prefix: str, fps: Sequence[FilePatch], hunk_ids: Mapping[str, Sequence[str]]):
        return [
            _Target(
                fp.path,
                fp,
                hunk_ids.get(fp.path, ()),
                of(f"{prefix}old", fp.path),
                of(f"{prefix}patched", fp.path),
            )
            for fp in fps
            if f"{prefix}patched:{fp.path}" in versions
        ]

    patched_defs = defined("patched")
    kept_ids = {hid for hs in ids.values() for hid in hs}
    dropped: dict[str, tuple[Symbol, DroppedDefinition]] = {}
    for fc in changes:
        new_defs = of("new", fc.path).defs
        for d in new_defs:
            if d.key in patched_defs or d.key in dropped:
                continue
            hid = _defining_hunk(fc, d, new_defs)
            dd = DroppedDefinition(display(d), hid, fc.path, d.line, split=hid in kept_ids)
            dropped[d.key] = (d, dd)
    checked = {fc.path for fc in changes}
    elsewhere = tree_search(old_root, checked) if old_root is not None else None
    scope = _Scope(dropped, set(patched_defs), _parents(of, changes, "patched"), elsewhere)
    found, references = _uses(scope, targets("", patches, ids))
    problems: list[ClosureProblem] = []
    for key, p in found:
        d, dd = dropped[key]
        fc = next(c for c in changes if c.path == dd.path)
        renamed = _renamed_from(fc, dd.hunk, d, of("old", dd.path))
        if renamed:
            p = dataclasses.replace(p, note=f"{p.note}; {renamed}" if p.note else renamed)
        problems.append(p)
    main = ClosureEntry(
        "problems" if problems else "ok",
        files,
        references,
        tuple(dd for _, dd in sorted(dropped.values(), key=lambda v: (v[1].path, v[1].line))),
        tuple(problems),
        unreadable=unreadable,
        variants=tuple(v.version for v in variants),
    )
    by_version: dict[str, tuple[ClosureProblem, ...]] = {}
    for v in variants:
        present = defined(f"{v.version}/patched")
        missing = {
            key: (d, DroppedDefinition(display(d), "", path, d.line))
            for key, (d, path) in patched_defs.items()
            if key not in present
        }
        parents = _parents(of, changes, f"{v.version}/patched")
        v_else = tree_search(v.root, checked) if v.root is not None else None
        v_scope = _Scope(missing, set(present), parents, v_else)
        v_found, _ = _uses(v_scope, targets(f"{v.version}/", v.patches, v.ids))
        if v_found:
            by_version[v.version] = tuple(p for _, p in v_found)
    return main, by_version


@dataclass
class _Scope:
    """What one patch's references are checked against."""

    missing: Mapping[str, tuple[Symbol, DroppedDefinition]]
    present: set[str]
    parents: Mapping[str, str]  # class key -> the class it extends (resolved name)
    elsewhere: Elsewhere | None = None

    def __post_init__(self) -> None:
        self.present_members = {_member_key(k) for k in self.present if "::" in k}
        self.by_member: dict[str, list[str]] = {}
        for key in self.missing:
            if "::" in key:
                self.by_member.setdefault(_member_key(key), []).append(key)
        self.missing_classes = {k for k in self.missing if k.startswith("class:")}

    def matches(self, ref: Symbol) -> list[tuple[str, str]]:
        """The missing definitions ``ref`` may use, each with a note for the message."""
        member_kinds = ("method", "property", "classconst")
        if ref.kind in member_kinds and ref.owner == ANY_CLASS:
            member = _member_key(ref.key)
            if member in self.present_members or member not in self.by_member:
                return []  # some class of the checked files still defines the name
            if self.elsewhere is not None and self.elsewhere(ref.kind, ref.member):
                return []  # ... or some other file of the release does
            return [
                (
                    k,
                    f"{BY_NAME}: matched by name against {self.missing[k][1].symbol}; if the "
                    "object is of another class that defines it, keeping the hunk is harmless",
                )
                for k in self.by_member[member]
            ]
        if ref.kind in member_kinds:
            if symbol_key("class", ref.owner) in self.missing_classes:
                return []  # reported once, as the class
            return self._inherited(ref) if ref.key in self.missing else []
        return [(k, "") for k in ref.keys if k in self.missing]

    def _inherited(self, ref: Symbol) -> list[tuple[str, str]]:
        """``ref`` (a missing member of a known class) unless an ancestor defines it."""
        owner = ref.owner
        seen: set[str] = set()
        while True:
            ckey = symbol_key("class", owner)
            parent = self.parents.get(ckey)
            if parent is None or ckey in seen:
                return [(ref.key, "")]
            seen.add(ckey)
            if symbol_key(ref.kind, f"{parent}::{ref.member}") in self.present:
                return []  # inherited: the parent class defines it
            if symbol_key("class", parent) not in self.present:
                note = (
                    f"{owner} extends {parent}, which the check did not read: if {parent} "
                    "defines it, keeping the hunk is harmless"
                )
                return [(ref.key, note)]
            owner = parent


def _uses(scope: _Scope, files: Sequence[_Target]) -> tuple[list[tuple[str, ClosureProblem]], int]:
    """The references the patch adds (after, not before) to ``scope.missing`` symbols:
    (the missing symbol's key, the problem) each, and how many references were added."""
    problems: list[tuple[str, ClosureProblem]] = []
    seen: set[tuple[str, str]] = set()
    references = 0
    for t in files:
        before = {k for r in t.before.refs for k in r.keys}
        for ref in t.after.refs:
            if all(k in before for k in ref.keys):
                continue
            references += 1
            for key, note in scope.matches(ref):
                used = _kept_hunk_at(t.patch, t.ids, ref.line)
                if (key, used) in seen:
                    continue
                seen.add((key, used))
                _, dd = scope.missing[key]
                problem = ClosureProblem(
                    display(ref) if note.startswith(BY_NAME) else dd.symbol,
                    used,
                    t.path,
                    ref.line,
                    dd.hunk,
                    dd.path,
                    dd.line,
                    note,
                    dd.split,
                )
                problems.append((key, problem))
    # a by-name match adds nothing where the same kept hunk already uses the same
    # definition's hunk by a resolved name (new X() and then $x->m())
    certain = {
        (p.used_in, p.defined_in, p.def_path) for _, p in problems if not p.note.startswith(BY_NAME)
    }
    kept = [
        (k, p)
        for k, p in problems
        if not p.note.startswith(BY_NAME) or (p.used_in, p.defined_in, p.def_path) not in certain
    ]
    return kept, references


def tree_search(root: Path, skip: Collection[str]) -> Elsewhere:
    """An :data:`Elsewhere` over the PHP files below ``root`` except ``skip`` (release
    paths), by text: a method, property or class constant declared under that name at the
    start of a line. Files are read on the first question only (most builds never ask)."""
    texts: list[bytes] = []
    loaded = False

    def load() -> None:
        stack = [""]
        while stack:
            rel = stack.pop()
            with os.scandir(os.path.join(root, rel) if rel else root) as it:
                for entry in it:
                    path = f"{rel}/{entry.name}" if rel else entry.name
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(path)
                    elif (
                        entry.is_file(follow_symlinks=False)
                        and path.lower().endswith(PHP_SUFFIXES)
                        and path not in skip
                    ):
                        with open(entry.path, "rb") as fh:
                            texts.append(fh.read())

    def search(kind: str, name: str) -> bool:
        nonlocal loaded
        if not loaded:
            load()
            loaded = True
        word = re.escape(name.lstrip("$").encode())
        pattern = _DECLARATION[kind].replace(b"NAME", word)
        rx = re.compile(pattern, re.IGNORECASE if kind == "method" else 0)
        return any(rx.search(t) for t in texts)

    return search


_DECLARATION = {
    "method": rb"(?m)^[ \t]*(?:[a-z]+[ \t]+)*function[ \t]+&?[ \t]*NAME[ \t]*\(",
    "property": rb"(?m)^[ \t]*(?:public|protected|private|var|static|readonly)\b[^;(\n]*\$NAME\b",
    "classconst": rb"(?m)^[ \t]*(?:[a-z]+[ \t]+)*const[ \t]+(?:[\w\\|?]+[ \t]+)?NAME\b",
}


def _parents(
    of: Callable[[str, str], FileSymbols], changes: Sequence[FileChange], side: str
) -> dict[str, str]:
    """Class key -> the class it extends, over the checked files' ``side`` versions."""
    out: dict[str, str] = {}
    for fc in changes:
        for d in of(side, fc.path).defs:
            if d.kind == "class" and d.alt:
                out.setdefault(d.key, d.alt)
    return out


def _member_key(key: str) -> str:
    """``method:*::name`` for ``method:cls::name`` (the member of any class)."""
    kind, _, rest = key.partition(":")
    return f"{kind}:{ANY_CLASS}::{rest.rpartition('::')[2]}"


def _release_hunk_at(fc: FileChange, new_line: int) -> ReleaseHunk | None:
    """The release hunk whose new side holds ``new_line`` (NEW's line numbers)."""
    for rh in fc.hunks:
        h = rh.hunk
        if h.new_start <= new_line < h.new_start + max(h.new_len, 1):
            return rh
    return None


def _defining_hunk(fc: FileChange, d: Symbol, defs: Sequence[Symbol]) -> str:
    """The id of the release hunk that makes NEW define ``d``: the one holding its line;
    else (the line is unchanged, its name changed above it) the one holding its class's
    declaration, else one that changes a ``namespace`` line; else the file's first hunk."""
    rh = _release_hunk_at(fc, d.line)
    if rh is None and d.kind in ("method", "property", "classconst"):
        owner = symbol_key("class", d.owner)
        line = next((c.line for c in defs if c.kind == "class" and c.key == owner), None)
        rh = _release_hunk_at(fc, line) if line is not None else None
    if rh is None:
        rh = next(
            (
                r
                for r in fc.hunks
                if any(ln.kind != " " and b"namespace" in ln.data for ln in r.hunk.lines)
            ),
            None,
        )
    if rh is None and fc.hunks:
        rh = fc.hunks[0]
    return rh.id if rh is not None else f"{fc.path}@{fc.kind}"


def _kept_hunk_at(fp: FilePatch, hunk_ids: Sequence[str], line: int) -> str:
    """The kept hunk whose patched side holds ``line``; else the nearest one before it."""
    best = hunk_ids[0] if hunk_ids else fp.path
    for h, hid in zip(fp.hunks, hunk_ids, strict=False):
        if h.new_start <= line < h.new_start + max(h.new_len, 1):
            return hid
        if h.new_start <= line:
            best = hid
    return best


def _renamed_from(fc: FileChange, hunk_id: str, d: Symbol, old: FileSymbols) -> str:
    """``renamed from X`` when the defining hunk removes a definition of the same kind."""
    rh = next((r for r in fc.hunks if r.id == hunk_id), None)
    if rh is None:
        return ""
    h: Hunk = rh.hunk
    for od in old.defs:
        inside = h.old_start <= od.line < h.old_start + h.old_len
        if od.kind == d.kind and od.key != d.key and inside:
            short = od.member.rpartition("\\")[2].lstrip("$").encode()
            removed = any(ln.kind == "-" and short in ln.data for ln in h.lines)
            if removed:
                return f"the dropped hunk renames {od.name} to {d.name}"
    return ""


def variant_problem(p: ClosureProblem, version: str) -> str:
    """A backport variant's closure problem as a manual-work reason."""
    return (
        f"{p.symbol} used at line {p.line}: release {version} does not define it (patched "
        f"OLD does, {p.def_path}:{p.def_line}); patched sites would stop with a PHP fatal "
        "error"
    )


def refusal_message(result: ClosureEntry) -> str:
    """The build's error text for a closure check with problems (docs/security-team.md)."""
    n = len(result.problems)
    lines = [
        f"the patch is not closed: {n} use(s) in kept hunks of symbols that NEW defines only "
        "in dropped changes. Patched installations would stop with a PHP fatal error "
        "(undefined function, method, class or constant) when the code runs:"
    ]
    rules: dict[str, str] = {}
    for p in result.problems:
        where = (
            f"the dropped part of split hunk {p.defined_in}"
            if p.split
            else f"dropped hunk {p.defined_in}"
        )
        lines.append(
            f"  {p.symbol}: used in kept hunk {p.used_in} (patched line {p.line}), defined in "
            f"{where} (NEW line {p.def_line})"
        )
        if p.note:
            lines.append(f"      {p.note}")
        if p.defined_in not in rules:
            what = p.symbol.split(" ", 1)[-1]
            comment = json.dumps(f"defines {what}, which kept hunk {p.used_in} uses")
            rules[p.defined_in] = (
                f"  - {{include: {{hunk: {json.dumps(p.defined_in)}}}, comment: {comment}}}"
            )
    lines.append(
        "Keep the defining hunks: add these rules at the top of the --rules file (rules "
        "decide first; --review asks only about undecided hunks), or drop the hunks that "
        "use them:"
    )
    lines.extend(rules.values())
    return "\n".join(lines)
