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
   method or property on an object of unknown class (``$obj->m()``) is matched by name
   against the dropped definitions of every class, unless some class of the checked
   files still defines that name: a false alarm there is cheaper than a fatal error on
   customers' sites, and the message says it was matched by name.

Limits (NOTE): files the release diff does not touch are not read, so a symbol NEW
defines in a dropped hunk and OLD also defines in an untouched file counts as dropped
(a false alarm); calls through strings (``call_user_func('f')``, ``[$this, 'm']``),
variable names (``$obj->$m()``) and ``__call`` are not seen.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from patchd.bundle.php_symbols import ANY_CLASS, FileSymbols, Symbol, read_symbols, symbol_key
from patchd.bundle.report import ClosureEntry, ClosureProblem, DroppedDefinition
from patchd.bundle.validate import is_php
from patchd.engine.model import FilePatch, Hunk
from patchd.release.tree import FileChange, ReleaseDiff, ReleaseHunk

ReadFile = Callable[[str], bytes | None]

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
        for d in of("new", fc.path).defs:
            if d.key in patched_defs or d.key in dropped:
                continue
            rh = _release_hunk_at(fc, d.line)
            hid = rh.id if rh is not None else f"{fc.path}@{fc.kind}"
            dd = DroppedDefinition(display(d), hid, fc.path, d.line, split=hid in kept_ids)
            dropped[d.key] = (d, dd)
    problems, references = _uses(dropped, set(patched_defs), targets("", patches, ids))
    for p_index, p in enumerate(problems):
        d, dd = dropped[_key_of(p, dropped)]
        fc = next(c for c in changes if c.path == dd.path)
        renamed = _renamed_from(fc, dd.hunk, d, of("old", dd.path))
        if renamed:
            note = f"{p.note}; {renamed}" if p.note else renamed
            problems[p_index] = dataclasses.replace(p, note=note)
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
        found, _ = _uses(missing, set(present), targets(f"{v.version}/", v.patches, v.ids))
        if found:
            by_version[v.version] = tuple(found)
    return main, by_version


def _key_of(p: ClosureProblem, dropped: Mapping[str, tuple[Symbol, DroppedDefinition]]) -> str:
    return next(
        k for k, (_, dd) in dropped.items() if dd.hunk == p.defined_in and dd.line == p.def_line
    )


def _uses(
    missing: Mapping[str, tuple[Symbol, DroppedDefinition]],
    present: set[str],
    files: Sequence[_Target],
) -> tuple[list[ClosureProblem], int]:
    """The references the patch adds (after, not before) to ``missing`` symbols."""
    present_members = {_member_key(k) for k in present if "::" in k}
    by_member: dict[str, list[str]] = {}
    for key in missing:
        if "::" in key:
            by_member.setdefault(_member_key(key), []).append(key)
    missing_classes = {k for k in missing if k.startswith("class:")}
    problems: list[ClosureProblem] = []
    seen: set[tuple[str, str]] = set()
    references = 0
    for t in files:
        before = {k for r in t.before.refs for k in r.keys}
        for ref in t.after.refs:
            if all(k in before for k in ref.keys):
                continue
            references += 1
            for key, note in _matches(ref, missing, by_member, present_members, missing_classes):
                used = _kept_hunk_at(t.patch, t.ids, ref.line)
                if (key, used) in seen:
                    continue
                seen.add((key, used))
                _, dd = missing[key]
                problems.append(
                    ClosureProblem(
                        dd.symbol if not note else display(ref),
                        used,
                        t.path,
                        ref.line,
                        dd.hunk,
                        dd.path,
                        dd.line,
                        note,
                        dd.split,
                    )
                )
    # a by-name match adds nothing where the same kept hunk already uses the same
    # definition's hunk by a resolved name (new X() and then $x->m())
    certain = {
        (p.used_in, p.defined_in, p.def_path) for p in problems if not p.note.startswith(BY_NAME)
    }
    problems = [
        p
        for p in problems
        if not p.note.startswith(BY_NAME) or (p.used_in, p.defined_in, p.def_path) not in certain
    ]
    return problems, references


def _member_key(key: str) -> str:
    """``method:*::name`` for ``method:cls::name`` (the member of any class)."""
    kind, _, rest = key.partition(":")
    return f"{kind}:{ANY_CLASS}::{rest.rpartition('::')[2]}"


def _matches(
    ref: Symbol,
    dropped: Mapping[str, tuple[Symbol, DroppedDefinition]],
    by_member: Mapping[str, list[str]],
    patched_members: set[str],
    dropped_classes: set[str],
) -> list[tuple[str, str]]:
    """The dropped definitions ``ref`` may use, each with a note for the message."""
    if ref.kind in ("method", "property", "classconst") and ref.owner == ANY_CLASS:
        member = _member_key(ref.key)
        if member in patched_members:
            return []  # some class of the checked files still defines the name
        return [
            (
                k,
                f"{BY_NAME}: matched by name against {dropped[k][1].symbol}; if the object is "
                "of another class that defines it, keeping the hunk is harmless",
            )
            for k in by_member.get(member, ())
        ]
    if ref.kind in ("method", "property", "classconst"):
        owner = symbol_key("class", ref.owner)
        if owner in dropped_classes:
            return []  # reported once, as the class
    return [(k, "") for k in ref.keys if k in dropped]


def _name(key: str) -> str:
    return key.partition(":")[2]


def _release_hunk_at(fc: FileChange, new_line: int) -> ReleaseHunk | None:
    """The release hunk whose new side holds ``new_line`` (NEW's line numbers)."""
    for rh in fc.hunks:
        h = rh.hunk
        if h.new_start <= new_line < h.new_start + max(h.new_len, 1):
            return rh
    return None


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
        "Keep the defining hunks: add these rules at the top of the --rules file (or keep "
        "them with --review), or drop the hunks that use them:"
    )
    lines.extend(rules.values())
    return "\n".join(lines)
