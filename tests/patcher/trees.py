"""Small account trees, diffs made with GNU diff, and tree snapshots for the patcher tests."""

from __future__ import annotations

import os
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

from patchd.engine.model import FilePatch
from patchd.engine.parse import parse_diff

UID = 10001
GID = 10001
OTHER_UID = 10002
INST = "html"
MAX = 1 << 20


def php_source(name: str, functions: int = 12) -> bytes:
    """A made-up PHP file shaped like a CMS include: a header and many small functions."""
    out = [f"<?php\n/**\n * {name}: helpers of the example CMS.\n */\n\n"]
    for i in range(functions):
        out.append(
            f"function {name}_helper_{i}($value) {{\n"
            f"\t$value = trim($value);\n"
            f"\treturn $value . '-{i}';\n"
            f"}}\n\n"
        )
    return "".join(out).encode()


#: The installation's files (relative to the installation) and their modes.
ORIGINAL: dict[str, tuple[bytes, int]] = {
    "wp-includes/version.php": (b"<?php\n$wp_version = '6.4.1';\n", 0o644),
    "wp-includes/x.php": (php_source("x"), 0o640),
    "wp-admin/y.php": (php_source("y", 4), 0o644),
    "index.php": (b"<?php\nrequire __DIR__ . '/wp-includes/x.php';\n", 0o644),
}


def patched() -> dict[str, bytes]:
    """The post-images: two separate changes in x.php (two hunks), one in y.php."""
    x = ORIGINAL["wp-includes/x.php"][0]
    x = x.replace(
        b"\t$value = trim($value);\n\treturn $value . '-1';",
        b"\t$value = trim((string) $value);\n\treturn $value . '-1';",
    )
    x = x.replace(b"\treturn $value . '-10';", b"\treturn htmlspecialchars($value) . '-10';")
    y = ORIGINAL["wp-admin/y.php"][0].replace(
        b"\treturn $value . '-2';", b"\treturn esc_attr($value) . '-2';"
    )
    return {"wp-includes/x.php": x, "wp-admin/y.php": y}


@dataclass(frozen=True)
class Fleet:
    """An account with one installation, a second account, and a 'system' file."""

    base: Path
    root: Path  # account p1 root
    other: Path  # account p2 root
    system: Path  # a root-owned file outside every account
    store: Path  # the backup store

    @property
    def inst(self) -> Path:
        return self.root / INST


def make_fleet(base: Path) -> Fleet:
    """Build the fleet below ``base``; p1's files belong to UID/GID."""
    root = base / "accounts" / "p1"
    other = base / "accounts" / "p2"
    for acct, uid in ((root, UID), (other, OTHER_UID)):
        for rel, (data, mode) in ORIGINAL.items():
            path = acct / INST / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            path.chmod(mode)
        for dirpath, dirnames, filenames in os.walk(acct):
            for name in [*dirnames, *filenames]:
                os.chown(os.path.join(dirpath, name), uid, uid, follow_symlinks=False)
        os.chown(acct, uid, uid)
    system = base / "etc" / "shadow"
    system.parent.mkdir()
    system.write_bytes(b"root:$6$secret:19000:0:99999:7:::\n")
    system.chmod(0o600)
    store = base / "store"
    store.mkdir(mode=0o700)
    return Fleet(base, root, other, system, store)


def make_diff(
    base: Path, changes: dict[str, bytes], original: dict[str, bytes] | None = None
) -> list[FilePatch]:
    """A diff from ``original`` (default: ORIGINAL) to ``changes`` made with ``diff -ru``."""
    old = original or {rel: data for rel, (data, _mode) in ORIGINAL.items()}
    work = base / f"diff-{len(list(base.glob('diff-*')))}"
    for side, contents in (("a", {r: old[r] for r in changes}), ("b", changes)):
        for rel, data in contents.items():
            path = work / side / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
    proc = subprocess.run(["diff", "-ru", "a", "b"], cwd=work, capture_output=True, check=False)
    assert proc.returncode == 1, proc.stderr
    return parse_diff(proc.stdout)


def snapshot(path: Path) -> dict[str, tuple[str, bytes, int, int, int]]:
    """Every entry below ``path`` (not following links): kind, content/target, mode, owner."""
    out: dict[str, tuple[str, bytes, int, int, int]] = {}
    for dirpath, dirnames, filenames in os.walk(os.fsencode(path)):
        for name in [*dirnames, *filenames]:
            full = os.path.join(dirpath, name)
            st = os.lstat(full)
            rel = os.path.relpath(full, os.fsencode(path)).decode("utf-8", "surrogateescape")
            if stat.S_ISLNK(st.st_mode):
                body = os.readlink(full)
            elif stat.S_ISREG(st.st_mode):
                with open(full, "rb") as fh:
                    body = fh.read()
            else:
                body = b""
            out[rel] = (stat.filemode(st.st_mode), body, st.st_mode, st.st_uid, st.st_gid)
    return out
