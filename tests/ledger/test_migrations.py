"""Named migrations: idempotent, one transaction each, newer ledgers refused."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from patchd.errors import LedgerError
from patchd.ledger import open_ledger
from patchd.ledger.migrations import MIGRATIONS, apply_migrations, split_statements

REPO = Path(__file__).resolve().parents[2]


def _tables(path: Path) -> set[str]:
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    finally:
        conn.close()
    return {r[0] for r in rows}


def _migrations(path: Path) -> list[str]:
    conn = sqlite3.connect(path)
    try:
        return [r[0] for r in conn.execute("SELECT name FROM migrations ORDER BY rowid")]
    finally:
        conn.close()


def test_schema_created_and_recorded(tmp_path: Path) -> None:
    path = tmp_path / "l.db"
    open_ledger(path).close()
    assert {
        "migrations",
        "scans",
        "scan_installations",
        "scan_errors",
        "releases",
        "release_files",
        "runs",
        "results",
        "touched_files",
        "emails",
    } <= _tables(path)
    assert _migrations(path) == [name for name, _ in MIGRATIONS]


def test_applying_twice_is_a_no_op(tmp_path: Path) -> None:
    path = tmp_path / "l.db"
    open_ledger(path).close()
    conn = sqlite3.connect(path, isolation_level=None)
    assert apply_migrations(conn) == []
    conn.close()
    open_ledger(path).close()
    assert _migrations(path) == [name for name, _ in MIGRATIONS]


def test_new_migration_is_applied_on_next_open(tmp_path: Path) -> None:
    path = tmp_path / "l.db"
    open_ledger(path).close()
    extra = (*MIGRATIONS, ("0002_notes", "CREATE TABLE notes (id INTEGER PRIMARY KEY, t TEXT)"))
    with open_ledger(path, migrations=extra) as led:
        led.insert("INSERT INTO notes (t) VALUES ('x')")
    assert _migrations(path)[-1] == "0002_notes"


def test_failing_migration_leaves_no_half_schema(tmp_path: Path) -> None:
    path = tmp_path / "l.db"
    open_ledger(path).close()
    broken = (
        *MIGRATIONS,
        (
            "0002_broken",
            "CREATE TABLE half_a (id INTEGER);\n"
            "ALTER TABLE scans ADD COLUMN note TEXT;\n"
            "CREATE TABLE half_b (id INTEGER);\n"
            "INSERT INTO no_such_table VALUES (1);",
        ),
    )
    with pytest.raises(LedgerError, match="migration 0002_broken failed"):
        open_ledger(path, migrations=broken)
    assert "half_a" not in _tables(path)
    assert "half_b" not in _tables(path)
    conn = sqlite3.connect(path)
    columns = {r[1] for r in conn.execute("PRAGMA table_info(scans)")}
    conn.close()
    assert "note" not in columns
    assert "0002_broken" not in _migrations(path)
    open_ledger(path).close()  # still usable by this patchd


def test_unknown_newer_migration_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "l.db"
    newer = (*MIGRATIONS, ("0099_from_the_future", "CREATE TABLE future (id INTEGER)"))
    open_ledger(path, migrations=newer).close()
    with pytest.raises(LedgerError) as info:
        open_ledger(path)
    message = str(info.value)
    assert "newer patchd" in message
    assert "0099_from_the_future" in message
    assert str(path) in message


def test_concurrent_first_open_applies_once(tmp_path: Path) -> None:
    path = tmp_path / "race" / "l.db"
    code = (
        "import sys; from pathlib import Path; from patchd.ledger import open_ledger; "
        "open_ledger(Path(sys.argv[1])).close()"
    )
    procs = [subprocess.Popen([sys.executable, "-c", code, str(path)], cwd=REPO) for _ in range(3)]
    assert [p.wait(timeout=60) for p in procs] == [0, 0, 0]
    assert _migrations(path) == [name for name, _ in MIGRATIONS]


def test_split_statements_keeps_strings_and_triggers() -> None:
    sql = """
    CREATE TABLE t (a TEXT DEFAULT 'x;y');
    -- a comment; with a semicolon
    CREATE TRIGGER tr AFTER INSERT ON t BEGIN
        UPDATE t SET a = 'z;'; SELECT 1;
    END;
    INSERT INTO t VALUES ('1;2')
    """
    statements = split_statements(sql)
    assert len(statements) == 3  # the comment travels with the trigger
    assert statements[0].endswith("DEFAULT 'x;y');")
    assert "BEGIN" in statements[1] and statements[1].rstrip(";").endswith("END")
    assert statements[2].startswith("INSERT") and "'1;2'" in statements[2]
    conn = sqlite3.connect(":memory:")
    for stmt in statements:
        conn.execute(stmt)
    assert conn.execute("SELECT a FROM t").fetchall() == [("z;",)]


def test_split_statements_refuses_incomplete() -> None:
    with pytest.raises(ValueError, match="incomplete"):
        split_statements("CREATE TABLE t (a TEXT DEFAULT 'open")


def test_0006_keeps_old_emails_and_fills_what_they_told(tmp_path: Path) -> None:
    """A ledger written before 0006: its emails survive the rebuilt table, each with what
    it told taken from its run's results (no result was rolled back before 0006)."""
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    before = [m for m in MIGRATIONS if m[0] < "0006"]
    apply_migrations(conn, before)
    conn.execute(
        "INSERT INTO runs (id, bundle_id, bundle_digest, started_at, status, dry_run, "
        "options_key) VALUES (1, 'wp-1', 'd', '2024-01-01', 'finished', 0, 'k')"
    )
    for account, outcome in (("p1", "patched"), ("p2", "not-affected")):
        conn.execute(
            "INSERT INTO results (run_id, account, customer_id, host, path, outcome, "
            "updated_at) VALUES (1, ?, 'c1', 'web01', 'html', ?, '2024-01-01')",
            (account, outcome),
        )
    conn.execute(
        "INSERT INTO emails (run_id, customer_id, message_id, recipient, subject, state, "
        "attempts, created_at, sent_at) VALUES (1, 'c1', '<m@x>', 'c1@x.example', 's', "
        "'sent', 1, '2024-01-01', '2024-01-01')"
    )
    conn.close()
    with open_ledger(path) as ledger:
        from patchd.ledger.emails import list_emails, told_before

        (mail,) = list_emails(ledger, 1)
        assert mail.message_id == "<m@x>" and mail.bundle_id == "wp-1"
        assert mail.told == {"p1:html": "patched"}
        assert told_before(ledger, "wp-1", "c1") == {"p1:html": "patched"}
        assert ledger.query_one("SELECT rolled_back_at FROM results WHERE account = 'p1'") == {
            "rolled_back_at": None
        }
