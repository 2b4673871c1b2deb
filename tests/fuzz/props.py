"""Fuzz properties of the three untrusted-input readers, shared by CI and ``bench/fuzz.py``.

Each ``check_*`` function feeds one input to a reader and asserts the reader's contract:
a result or the reader's own error, never another exception, never a path outside. The
strategies produce random bytes and mutations of valid seeds (diffs, tar.gz and zip
releases, inventories): mutations reach much deeper into a parser than random bytes.
"""

from __future__ import annotations

import io
import os
import tarfile
import tempfile
import zipfile
from pathlib import Path

from hypothesis import strategies as st

from patchd.engine.parse import parse_diff
from patchd.errors import (
    ArchiveError,
    DiffParseError,
    InventoryError,
    UnsafePathError,
    UnsupportedDiffError,
)
from patchd.inventory import Inventory, load_inventory
from patchd.release.archive import open_release
from patchd.release.limits import ArchiveLimits

# -- seeds -------------------------------------------------------------------------------

DIFF_SEEDS: tuple[bytes, ...] = (
    b"--- a/wp-includes/x.php\n+++ b/wp-includes/x.php\n@@ -1,3 +1,3 @@\n a\n-b\n+c\n d\n",
    b"diff --git a/x b/x\nnew file mode 100644\n--- /dev/null\n+++ b/x\n@@ -0,0 +1,2 @@\n"
    b"+one\n+two\n\\ No newline at end of file\n",
    b"diff --git a/x b/x\ndeleted file mode 100644\n--- a/x\n+++ /dev/null\n@@ -1 +0,0 @@\n-x\n",
    b'--- "a/q\\303\\251.php"\n+++ "b/q\\303\\251.php"\n@@ -1 +1 @@\n-a\r\n+b\r\n',
    b"--- a/x\n+++ b/x\n@@ -1,2 +1,3 @@ function f()\n a\n+b\n c\n@@ -10 +11 @@\n-z\n+Z\n",
)

INVENTORY_SEED = """\
hosts:
  web01: {transport: local}
  web02: {transport: ssh, hostname: web02.example.net, port: 22, user: root,
          key_file: /root/.ssh/id, known_hosts: /root/.ssh/known_hosts}
accounts:
  - id: p10001
    host: web01
    root: /srv/accounts/p10001
    docroots: [html]
    php: "8.2"
    uid: 10001
    policy: auto
    customer: {id: c501, name: Beispiel GmbH, email: it@beispiel.example, language: de}
  - &b
    id: p10002
    host: web02
    root: /srv/accounts/p10002
    php_binary: /opt/php/8.1/bin/php
    policy: notify-only
    customer: {id: c502, name: "Zwei", email: b@example.com, language: en}
  - {<<: *b, id: p10003, root: /srv/accounts/p10003}
"""

#: Tight limits so that fuzzed archives stay small and fast.
FUZZ_LIMITS = ArchiveLimits(
    max_members=200, max_member_size=1 << 20, max_total_size=4 << 20, max_depth=16
)


def _release_members() -> list[tuple[str, bytes]]:
    return [
        ("wordpress/index.php", b"<?php\nrequire __DIR__ . '/wp-blog-header.php';\n"),
        ("wordpress/wp-includes/version.php", b"<?php\n$wp_version = '6.4.2';\n"),
        ("wordpress/wp-includes/comment-template.php", b"<?php\nfunction f() { return 1; }\n"),
    ]


def tar_seed(compression: str = "gz") -> bytes:
    """A small release as tar (``gz``, ``bz2``, ``xz`` or ``""``)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=f"w:{compression}") as tf:
        for name, data in _release_members():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def zip_seed() -> bytes:
    """A small release as zip."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in _release_members():
            zf.writestr(name, data)
    return buf.getvalue()


# -- mutation strategies -----------------------------------------------------------------


@st.composite
def mutated(draw: st.DrawFn, seeds: st.SearchStrategy[bytes]) -> bytes:
    """A seed with a few random edits: flip, insert, delete, duplicate, splice, truncate."""
    data = bytearray(draw(seeds))
    for _ in range(draw(st.integers(1, 6))):
        if not data:
            data.extend(draw(st.binary(min_size=1, max_size=8)))
            continue
        pos = draw(st.integers(0, len(data) - 1))
        op = draw(st.sampled_from(["flip", "set", "insert", "delete", "dup", "truncate"]))
        if op == "flip":
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "set":
            data[pos] = draw(st.sampled_from(b'\x00\n\r\\-+@ /."\xff9'))
        elif op == "insert":
            data[pos:pos] = draw(
                st.sampled_from([b"\n", b"../", b"/", b"\x00", b"@@ -1 +1 @@\n", b"\\", b"+++ b/"])
            )
        elif op == "delete":
            del data[pos : pos + draw(st.integers(1, 16))]
        elif op == "dup":
            end = min(len(data), pos + draw(st.integers(1, 64)))
            data[pos:pos] = data[pos:end]
        else:
            del data[pos:]
    return bytes(data)


def diff_inputs() -> st.SearchStrategy[bytes]:
    """Random bytes, line soup from diff vocabulary, and mutated valid diffs."""
    vocab = st.sampled_from(
        [b"--- a/x\n", b"+++ b/x\n", b"@@ -1 +1 @@\n", b"@@ -0,0 +1,2 @@\n", b"-a\n", b"+b\n",
         b" c\n", b"\\ No newline at end of file\n", b"diff --git a/x b/x\n",
         b"new file mode 100644\n", b"--- /dev/null\n", b"+++ ../../x\n", b"\n", b"\r\n",
         b"index 1..2 100644\n", b"deleted file mode 100644\n", b"+++ /dev/null\n"]
    )  # fmt: skip
    return st.one_of(
        st.binary(max_size=300),
        st.lists(vocab, max_size=20).map(b"".join),
        mutated(st.sampled_from(DIFF_SEEDS)),
    )


def archive_inputs() -> st.SearchStrategy[tuple[str, bytes]]:
    """(file suffix, bytes): random bytes and mutated tar.gz, tar and zip releases."""
    seeds = {".tar.gz": tar_seed("gz"), ".tar": tar_seed(""), ".zip": zip_seed()}
    return st.one_of(
        st.tuples(st.sampled_from(sorted(seeds)), st.binary(max_size=400)),
        st.sampled_from(sorted(seeds)).flatmap(
            lambda ext: st.tuples(st.just(ext), mutated(st.just(seeds[ext])))
        ),
    )


def inventory_inputs() -> st.SearchStrategy[bytes]:
    """Random text and mutated valid inventories."""
    return st.one_of(
        st.text(max_size=200).map(lambda t: t.encode("utf-8", "surrogatepass")),
        mutated(st.just(INVENTORY_SEED.encode())),
    )


# -- the properties ----------------------------------------------------------------------


def check_parse(data: bytes) -> None:
    """``parse_diff`` returns file patches with safe relative paths or raises its errors."""
    try:
        patches = parse_diff(data, source="fuzz.diff")
    except (DiffParseError, UnsupportedDiffError, UnsafePathError):
        return
    for fp in patches:
        for path in (fp.old_path, fp.new_path):
            if path is None:
                continue
            assert isinstance(path, str), path
            assert not path.startswith("/"), path
            assert ".." not in path.split("/"), path
            assert "\x00" not in path, path


def _outside_state(folder: Path) -> list[tuple[str, int]]:
    return sorted((p.name, p.stat().st_size) for p in folder.iterdir())


def check_archive(ext: str, data: bytes) -> None:
    """``open_release`` extracts inside its work folder or raises ``ArchiveError``; no file
    appears outside the work folder, and the result contains no link leading out."""
    with tempfile.TemporaryDirectory(prefix="patchd-fuzz-") as tmp:
        base = Path(tmp)
        source = base / f"input{ext}"
        source.write_bytes(data)
        work = base / "work"
        before = _outside_state(base)
        try:
            root = open_release(source, work, limits=FUZZ_LIMITS)
        except ArchiveError:
            assert not work.exists() or os.listdir(work) == [], os.listdir(work)
        else:
            real_work = os.path.realpath(work)
            assert os.path.realpath(root).startswith(real_work + os.sep), root
            for dirpath, dirnames, filenames in os.walk(work):
                for name in dirnames + filenames:
                    full = os.path.join(dirpath, name)
                    if os.path.islink(full):
                        target = os.path.realpath(full)
                        assert target.startswith(real_work + os.sep), (full, target)
        after = _outside_state(base)
        assert [e for e in after if e[0] != "work"] == before, (before, after)


def check_inventory(data: bytes) -> None:
    """``load_inventory`` returns an :class:`Inventory` or raises ``InventoryError``."""
    with tempfile.TemporaryDirectory(prefix="patchd-fuzz-") as tmp:
        path = Path(tmp) / "accounts.yaml"
        path.write_bytes(data)
        try:
            inv = load_inventory(path)
        except InventoryError as exc:
            assert str(exc), "an inventory error must say what is wrong"
            return
        assert isinstance(inv, Inventory)
        for account in inv.accounts:
            assert os.path.isabs(account.root), account.root
            assert account.host in inv.hosts
