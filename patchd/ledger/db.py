"""Opening the ledger: one SQLite file, WAL, foreign keys, migrations applied.

:class:`Ledger` is a thin object over one :class:`sqlite3.Connection`. The query modules
(:mod:`~patchd.ledger.scans`, :mod:`~patchd.ledger.runs`, ...) take it as their first
argument and go through its few methods, which turn every SQLite failure into a
:class:`~patchd.errors.LedgerError` naming the file.

NOTE: file names are ``str`` with ``surrogateescape`` for non-UTF-8 bytes (see
:mod:`patchd.engine.model`). SQLite cannot store lone surrogates as TEXT, so such strings
are stored as a BLOB of their original bytes and decoded back on reading. A valid UTF-8
string is always stored as TEXT, an invalid one always as BLOB, so equality and UNIQUE keep
working as long as parameters pass through :func:`to_db` (which these methods do).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from patchd.errors import LedgerError
from patchd.ledger.migrations import MIGRATIONS, Migration, apply_migrations

ENV_VAR = "PATCHD_LEDGER"
"""Environment variable naming the ledger file (``--ledger`` overrides it)."""

DEFAULT_PATH = Path(".patchd") / "ledger.db"
"""The ledger used when neither ``--ledger`` nor ``PATCHD_LEDGER`` names one."""

BUSY_TIMEOUT_MS = 30_000
"""How long a writer waits for another process's write lock before failing."""

Params = Sequence[Any]


def default_ledger_path() -> Path:
    """``$PATCHD_LEDGER`` when set, else ``./.patchd/ledger.db``."""
    env = os.environ.get(ENV_VAR)
    return Path(env) if env else DEFAULT_PATH


def utc_now() -> str:
    """The current time as the ISO 8601 UTC text the ledger stores."""
    return datetime.now(UTC).isoformat(timespec="microseconds")


def to_db(value: Any) -> Any:
    """``value`` as SQLite can store it: strings with lone surrogates become bytes."""
    if type(value) is str and not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return value.encode("utf-8", "surrogateescape")
    return value


def _from_db(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", "surrogateescape")
    return value


def _dict_row(cursor: sqlite3.Cursor, row: tuple[Any, ...]) -> dict[str, Any]:
    names = [d[0] for d in cursor.description]
    if bytes in map(type, row):
        return {n: _from_db(v) for n, v in zip(names, row, strict=True)}
    return dict(zip(names, row, strict=True))


class Ledger:
    """One open ledger database. Use :func:`open_ledger` to get one.

    Methods are safe to call from several threads (one lock serialises them); a
    :meth:`transaction` holds that lock until it ends.
    """

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self._conn = conn
        self.path = path
        self._lock = threading.RLock()
        self._depth = 0

    @property
    def where(self) -> str:
        """How errors name this ledger."""
        return f"ledger {self.path}"

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._conn.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Ledger]:
        """Run the block in one write transaction; nested blocks become savepoints.

        NOTE: ``BEGIN IMMEDIATE`` takes the write lock up front, so a transaction never
        fails half-way with "database is locked" after reading (busy_timeout applies).
        """
        with self._lock:
            depth = self._depth
            savepoint = f"sp{depth}"
            self._run("BEGIN IMMEDIATE" if depth == 0 else f"SAVEPOINT {savepoint}")
            self._depth += 1
            try:
                yield self
            except BaseException:
                self._depth -= 1
                if depth == 0:
                    if self._conn.in_transaction:
                        self._run("ROLLBACK")
                else:
                    self._run(f"ROLLBACK TO {savepoint}")
                    self._run(f"RELEASE {savepoint}")
                raise
            self._depth -= 1
            try:
                self._run("COMMIT" if depth == 0 else f"RELEASE {savepoint}")
            except LedgerError:
                # NOTE: a failed COMMIT leaves the transaction open; end it so the next
                # BEGIN does not fail with "cannot start a transaction within a transaction".
                if depth == 0 and self._conn.in_transaction:
                    self._conn.rollback()
                raise

    def _run(self, sql: str, params: Params = ()) -> sqlite3.Cursor:
        try:
            return self._conn.execute(sql, [to_db(p) for p in params])
        except sqlite3.Error as exc:
            raise LedgerError(f"{exc} (in: {sql.split()[0]} ...)", where=self.where) from exc

    def execute(self, sql: str, params: Params = ()) -> int:
        """Run one statement; return the number of rows it changed."""
        with self._lock:
            return self._run(sql, params).rowcount

    def insert(self, sql: str, params: Params = ()) -> int:
        """Run one INSERT; return the new row's id."""
        with self._lock:
            rowid = self._run(sql, params).lastrowid
        assert rowid is not None
        return rowid

    def executemany(self, sql: str, rows: Iterable[Params]) -> int:
        """Run one statement for every parameter row; return the rows changed."""
        with self._lock:
            try:
                cur = self._conn.executemany(sql, ([to_db(p) for p in row] for row in rows))
            except sqlite3.Error as exc:
                raise LedgerError(str(exc), where=self.where) from exc
            return cur.rowcount

    def executemany_plain(self, sql: str, rows: Iterable[Params]) -> int:
        """:meth:`executemany` for rows whose strings the caller made storable
        (:func:`to_db`): no per-value conversion (bulk inserts of many rows)."""
        with self._lock:
            try:
                cur = self._conn.executemany(sql, rows)
            except sqlite3.Error as exc:
                raise LedgerError(str(exc), where=self.where) from exc
            return cur.rowcount

    def query(self, sql: str, params: Params = ()) -> list[dict[str, Any]]:
        """All rows of a SELECT as dicts (column name -> value)."""
        with self._lock:
            cur = self._run(sql, params)
            try:
                return cur.fetchall()
            except sqlite3.Error as exc:
                raise LedgerError(str(exc), where=self.where) from exc

    def query_one(self, sql: str, params: Params = ()) -> dict[str, Any] | None:
        """The first row of a SELECT, or None."""
        rows = self.query(sql, params)
        return rows[0] if rows else None


def open_ledger(
    path: Path | None = None,
    *,
    busy_timeout_ms: int = BUSY_TIMEOUT_MS,
    migrations: Sequence[Migration] = MIGRATIONS,
) -> Ledger:
    """Open (creating if needed) the ledger at ``path`` (default: :func:`default_ledger_path`).

    A new folder is created with mode 0700 and a new database file with mode 0600; the
    database is put in WAL mode with foreign keys on and ``busy_timeout`` set, and the
    migrations are applied. Raises :class:`LedgerError` naming the file when it is not a
    usable SQLite database or was written by a newer patchd.
    """
    path = Path(path if path is not None else default_ledger_path()).expanduser()
    where = f"ledger {path}"
    _make_folder(path.parent, where=where)
    _create_file(path, where=where)
    try:
        conn = sqlite3.connect(
            path,
            isolation_level=None,  # NOTE: we issue BEGIN/COMMIT ourselves
            check_same_thread=False,  # NOTE: Ledger serialises access with its lock
            timeout=busy_timeout_ms / 1000,
        )
    except sqlite3.Error as exc:
        raise LedgerError(f"cannot open: {exc}", where=where) from exc
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        conn.execute("PRAGMA foreign_keys = ON")
        # NOTE: the first read of the header happens here; a non-SQLite file fails now.
        conn.execute("PRAGMA journal_mode = WAL").fetchone()
        # NOTE: in WAL mode NORMAL still survives a killed process (the WAL is in the page
        # cache); only a power cut may lose the last results, and a rollout's resume
        # re-derives those from the hosts (journals, already-patched). FULL cost one fsync
        # per recorded result.
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.row_factory = _dict_row
        apply_migrations(conn, migrations, where=where)
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise LedgerError(f"not a usable SQLite database: {exc}", where=where) from exc
    except BaseException:
        conn.close()
        raise
    return Ledger(conn, path)


def _make_folder(folder: Path, *, where: str) -> None:
    if folder.is_dir():
        return
    try:
        folder.mkdir(parents=True, mode=0o700)
        os.chmod(folder, 0o700)  # NOTE: mkdir's mode is masked by the umask
    except FileExistsError:
        if not folder.is_dir():
            raise LedgerError(f"{folder} exists and is not a folder", where=where) from None
    except OSError as exc:
        raise LedgerError(f"cannot create folder {folder}: {exc.strerror}", where=where) from exc


def _create_file(path: Path, *, where: str) -> None:
    if path.is_symlink() or (path.exists() and not path.is_file()):
        raise LedgerError("not a regular file", where=where)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        os.close(os.open(path, flags, 0o600))
    except FileExistsError:
        pass
    except OSError as exc:
        raise LedgerError(f"cannot create: {exc.strerror}", where=where) from exc
