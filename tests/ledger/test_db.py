"""open_ledger and Ledger: file creation, pragmas, errors, transactions, odd strings."""

from __future__ import annotations

import os
import sqlite3
import stat
import threading
from pathlib import Path

import pytest

from patchd.errors import LedgerError
from patchd.ledger import Ledger, default_ledger_path, open_ledger


def test_creates_private_folder_and_file(tmp_path: Path) -> None:
    path = tmp_path / "new" / "ledger.db"
    with open_ledger(path):
        pass
    assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_pragmas(ledger: Ledger) -> None:
    assert ledger.query_one("PRAGMA journal_mode") == {"journal_mode": "wal"}
    assert ledger.query_one("PRAGMA foreign_keys") == {"foreign_keys": 1}
    assert ledger.query_one("PRAGMA busy_timeout")["timeout"] == 30_000


def test_foreign_keys_enforced(ledger: Ledger) -> None:
    with pytest.raises(LedgerError, match="FOREIGN KEY"):
        ledger.execute(
            "INSERT INTO scan_errors (scan_id, host, account, message) VALUES (99, 'h', 'a', 'm')"
        )


def test_default_path_and_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PATCHD_LEDGER", raising=False)
    assert default_ledger_path() == Path(".patchd/ledger.db")
    monkeypatch.chdir(tmp_path)
    with open_ledger() as led:
        assert led.path == Path(".patchd/ledger.db")
    assert (tmp_path / ".patchd" / "ledger.db").is_file()
    monkeypatch.setenv("PATCHD_LEDGER", str(tmp_path / "env" / "l.db"))
    with open_ledger():
        pass
    assert (tmp_path / "env" / "l.db").is_file()


@pytest.mark.parametrize(
    "content",
    [b"this is just text\n" * 20, os.urandom(8192), b"SQLite format 3\x00" + b"\xff" * 4000],
)
def test_corrupt_file_is_refused_naming_it(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "broken.db"
    path.write_bytes(content)
    with pytest.raises(LedgerError) as info:
        open_ledger(path)
    assert str(path) in str(info.value)


def test_folder_and_symlink_are_refused(tmp_path: Path) -> None:
    (tmp_path / "dir.db").mkdir()
    with pytest.raises(LedgerError, match="not a regular file"):
        open_ledger(tmp_path / "dir.db")
    (tmp_path / "link.db").symlink_to(tmp_path / "elsewhere.db")
    with pytest.raises(LedgerError, match="not a regular file"):
        open_ledger(tmp_path / "link.db")
    assert not (tmp_path / "elsewhere.db").exists()


def test_transaction_commits_and_rolls_back(ledger: Ledger) -> None:
    add = "INSERT INTO releases (cms, version, source, registered_at) VALUES (?, ?, 's', 't')"
    with ledger.transaction():
        ledger.insert(add, ("wordpress", "1"))
    with pytest.raises(RuntimeError), ledger.transaction():
        ledger.insert(add, ("wordpress", "2"))
        raise RuntimeError("boom")
    versions = [r["version"] for r in ledger.query("SELECT version FROM releases")]
    assert versions == ["1"]


def test_nested_transaction_is_a_savepoint(ledger: Ledger) -> None:
    add = "INSERT INTO releases (cms, version, source, registered_at) VALUES (?, ?, 's', 't')"
    with ledger.transaction():
        ledger.insert(add, ("typo3", "1"))
        with pytest.raises(RuntimeError), ledger.transaction():
            ledger.insert(add, ("typo3", "2"))
            raise RuntimeError("inner")
        ledger.insert(add, ("typo3", "3"))
    versions = [r["version"] for r in ledger.query("SELECT version FROM releases ORDER BY id")]
    assert versions == ["1", "3"]


def test_surrogate_escaped_strings_round_trip(ledger: Ledger) -> None:
    name = b"caf\xe9/\xff.php".decode("utf-8", "surrogateescape")
    ledger.insert(
        "INSERT INTO releases (cms, version, source, registered_at) VALUES ('c', ?, 's', 't')",
        (name,),
    )
    row = ledger.query_one("SELECT version FROM releases WHERE version = ?", (name,))
    assert row == {"version": name}
    # stored as the original bytes, so other SQLite readers see them too
    raw = sqlite3.connect(ledger.path).execute("SELECT version FROM releases").fetchone()[0]
    assert raw == b"caf\xe9/\xff.php"


def test_sqlite_errors_become_ledger_errors(ledger: Ledger) -> None:
    with pytest.raises(LedgerError, match="no such table"):
        ledger.query("SELECT * FROM nothing_here")


def test_failed_commit_ends_the_transaction(ledger: Ledger) -> None:
    # a deferred foreign key is only checked at COMMIT, which then fails
    ledger.execute("PRAGMA defer_foreign_keys = ON")
    with pytest.raises(LedgerError, match="FOREIGN KEY"), ledger.transaction():
        ledger.execute(
            "INSERT INTO scan_errors (scan_id, host, account, message) VALUES (99, 'h', 'a', 'm')"
        )
    with ledger.transaction():  # usable again
        ledger.insert(
            "INSERT INTO releases (cms, version, source, registered_at) VALUES ('c', 'v', 's', 't')"
        )
    assert ledger.query("SELECT COUNT(*) AS n FROM scan_errors") == [{"n": 0}]


def test_ledger_is_usable_from_threads(ledger: Ledger) -> None:
    def work(n: int) -> None:
        for i in range(50):
            with ledger.transaction():
                ledger.insert(
                    "INSERT INTO releases (cms, version, source, registered_at) "
                    "VALUES (?, ?, 's', 't')",
                    (f"cms{n}", str(i)),
                )

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert ledger.query("SELECT COUNT(*) AS n FROM releases") == [{"n": 200}]
