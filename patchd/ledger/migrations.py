"""Named, transactional schema migrations of the ledger.

Each migration is a ``(name, sql)`` pair. It is applied in its own ``BEGIN IMMEDIATE``
transaction together with its row in ``migrations(name, applied_at)``, so a migration is
either wholly applied and recorded or not at all (SQLite's DDL is transactional). Applying
the list again is a no-op. A database that records a migration this patchd does not know
was written by a newer patchd and is refused.

NOTE: never edit or reorder a migration that has shipped; append a new one. SQLite cannot
alter a CHECK constraint in place, which is why enum-like columns (outcome, reason, state)
are validated in Python (:mod:`patchd.ledger.models`) rather than by CHECKs.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime

from patchd.errors import LedgerError

Migration = tuple[str, str]
"""A migration: its unique name and the SQL statements it runs."""

_SCHEMA_V1 = """
CREATE TABLE scans (
    id               INTEGER PRIMARY KEY,
    started_at       TEXT NOT NULL,
    finished_at      TEXT,
    inventory_path   TEXT NOT NULL,
    inventory_sha256 TEXT NOT NULL,
    accounts         INTEGER NOT NULL DEFAULT 0,
    status           TEXT NOT NULL DEFAULT 'running'
);

CREATE TABLE scan_installations (
    id             INTEGER PRIMARY KEY,
    scan_id        INTEGER NOT NULL REFERENCES scans(id) ON DELETE CASCADE,
    account        TEXT NOT NULL,
    host           TEXT NOT NULL,
    path           TEXT NOT NULL,
    cms            TEXT NOT NULL,
    version        TEXT,
    version_error  TEXT,
    extensions     TEXT NOT NULL DEFAULT '[]',
    php            TEXT,
    php_source     TEXT,
    modified_files TEXT NOT NULL DEFAULT '[]',
    facts          TEXT NOT NULL DEFAULT '{}',
    UNIQUE (scan_id, account, host, path, cms)
);

CREATE TABLE scan_errors (
    id      INTEGER PRIMARY KEY,
    scan_id INTEGER NOT NULL REFERENCES scans(id) ON DELETE CASCADE,
    host    TEXT NOT NULL,
    account TEXT,
    message TEXT NOT NULL
);
CREATE INDEX scan_errors_scan ON scan_errors(scan_id);

CREATE TABLE releases (
    id            INTEGER PRIMARY KEY,
    cms           TEXT NOT NULL,
    version       TEXT NOT NULL,
    source        TEXT NOT NULL,
    registered_at TEXT NOT NULL,
    UNIQUE (cms, version)
);

CREATE TABLE release_files (
    release_id INTEGER NOT NULL REFERENCES releases(id) ON DELETE CASCADE,
    path       TEXT NOT NULL,
    sha256     TEXT NOT NULL,
    size       INTEGER NOT NULL,
    PRIMARY KEY (release_id, path)
);

CREATE TABLE runs (
    id                 INTEGER PRIMARY KEY,
    bundle_id          TEXT NOT NULL,
    bundle_digest      TEXT NOT NULL,
    started_at         TEXT NOT NULL,
    finished_at        TEXT,
    status             TEXT NOT NULL DEFAULT 'running',
    dry_run            INTEGER NOT NULL CHECK (dry_run IN (0, 1)),
    scan_id            INTEGER REFERENCES scans(id),
    options            TEXT NOT NULL DEFAULT '{}',
    options_key        TEXT NOT NULL,
    pid                INTEGER,
    host_of_controller TEXT
);
CREATE INDEX runs_bundle_status ON runs(bundle_id, status);

CREATE TABLE results (
    id              INTEGER PRIMARY KEY,
    run_id          INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    account         TEXT NOT NULL,
    customer_id     TEXT,
    host            TEXT NOT NULL,
    path            TEXT NOT NULL,
    cms             TEXT,
    version         TEXT,
    outcome         TEXT NOT NULL,
    reason          TEXT,
    detail          TEXT,
    variant         TEXT,
    error_traceback TEXT,
    updated_at      TEXT NOT NULL,
    UNIQUE (run_id, account, path)
);
CREATE INDEX results_run_outcome ON results(run_id, outcome);

CREATE TABLE touched_files (
    id          INTEGER PRIMARY KEY,
    run_id      INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    account     TEXT NOT NULL,
    path        TEXT NOT NULL,
    file        TEXT NOT NULL,
    pre_sha256  TEXT,
    post_sha256 TEXT,
    backup_path TEXT,
    mode        INTEGER,
    uid         INTEGER,
    gid         INTEGER,
    state       TEXT NOT NULL DEFAULT 'planned',
    updated_at  TEXT NOT NULL,
    UNIQUE (run_id, account, path, file)
);

CREATE TABLE emails (
    id          INTEGER PRIMARY KEY,
    run_id      INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    customer_id TEXT NOT NULL,
    message_id  TEXT NOT NULL UNIQUE,
    recipient   TEXT NOT NULL,
    subject     TEXT NOT NULL,
    state       TEXT NOT NULL DEFAULT 'pending',
    attempts    INTEGER NOT NULL DEFAULT 0,
    last_error  TEXT,
    created_at  TEXT NOT NULL,
    sent_at     TEXT,
    UNIQUE (run_id, customer_id)
);
"""

_RESULT_JOURNAL = """
ALTER TABLE results ADD COLUMN journal TEXT;
ALTER TABLE results ADD COLUMN policy TEXT;
ALTER TABLE scan_errors ADD COLUMN kind TEXT NOT NULL DEFAULT 'account';
"""

_INVENTORY_CACHE = """
CREATE TABLE inventory_cache (
    sha256     TEXT PRIMARY KEY,
    stored_at  TEXT NOT NULL,
    inventory  TEXT NOT NULL
);
"""

# NOTE: issue 16. ``runs.resumes`` counts how often a run was resumed (``patchd runs``).
# ``rolled_back_at`` marks a result whose change ``patchd rollback`` undid
# (outcome ``rolled-back``; ``detail`` keeps what it was). Emails are keyed by what they
# told (``told``: installation -> outcome, ``told_key`` its digest) instead of by run and
# customer alone, so that a rollback (a new state of the same run) gets its own email, and a
# customer already told about a bundle in an earlier run is not told the same again.
# SQLite cannot drop a UNIQUE constraint: the table is rebuilt. Emails from before get
# ``told`` from their run's results (before this migration no result was rolled back).
_ROLLED_BACK = """
ALTER TABLE results ADD COLUMN rolled_back_at TEXT;
ALTER TABLE runs ADD COLUMN resumes INTEGER NOT NULL DEFAULT 0;
CREATE TABLE emails_v6 (
    id          INTEGER PRIMARY KEY,
    run_id      INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    customer_id TEXT NOT NULL,
    bundle_id   TEXT NOT NULL,
    told        TEXT NOT NULL DEFAULT '{}',
    told_key    TEXT NOT NULL,
    message_id  TEXT NOT NULL UNIQUE,
    recipient   TEXT NOT NULL,
    subject     TEXT NOT NULL,
    state       TEXT NOT NULL DEFAULT 'pending',
    attempts    INTEGER NOT NULL DEFAULT 0,
    last_error  TEXT,
    created_at  TEXT NOT NULL,
    sent_at     TEXT,
    UNIQUE (run_id, customer_id, told_key)
);
INSERT INTO emails_v6 (id, run_id, customer_id, bundle_id, told, told_key, message_id,
    recipient, subject, state, attempts, last_error, created_at, sent_at)
SELECT e.id, e.run_id, e.customer_id, r.bundle_id,
    COALESCE((SELECT json_group_object(x.account || ':' || x.path, x.outcome)
              FROM results x WHERE x.run_id = e.run_id AND x.customer_id = e.customer_id
                AND x.outcome NOT IN ('not-affected')), '{}'),
    'before-0006', e.message_id, e.recipient, e.subject, e.state, e.attempts, e.last_error,
    e.created_at, e.sent_at
FROM emails e JOIN runs r ON r.id = e.run_id;
DROP TABLE emails;
ALTER TABLE emails_v6 RENAME TO emails;
CREATE INDEX emails_bundle_customer ON emails(bundle_id, customer_id);
CREATE INDEX results_account_path ON results(account, path);
"""

# NOTE: issue 16. Files of an installation that differ from the registered release but
# equal the post-image of a bundle patchd applied there: patchd's own change, not the
# customer's ([{"path", "bundle"}]; ``modified_files`` keeps customer changes only).
_SCAN_PATCHED_FILES = """
ALTER TABLE scan_installations ADD COLUMN patched_files TEXT NOT NULL DEFAULT '[]';
"""

# NOTE: issue 15. Advisories imported from public databases (one row per advisory and
# package; ``affected`` is the JSON of its spans), the sources they came from with their
# revision and date, the exposure computed per scan (kept: the trend compares scans), and
# the exposure emails, never twice per scan and customer. A scan's exposure rows are one
# zlib-compressed JSON array (each row names its installation and advisory by row id):
# a fleet's exposure is hundreds of thousands of rows, which SQLite rows made the
# slowest part of computing it.
_ADVISORIES = """
CREATE TABLE advisory_sources (
    id            INTEGER PRIMARY KEY,
    kind          TEXT NOT NULL,
    location      TEXT NOT NULL,
    revision      TEXT NOT NULL,
    revision_date TEXT,
    imported_at   TEXT NOT NULL,
    advisories    INTEGER NOT NULL DEFAULT 0,
    UNIQUE (kind, location)
);
CREATE TABLE advisories (
    id          INTEGER PRIMARY KEY,
    source_id   INTEGER NOT NULL REFERENCES advisory_sources(id) ON DELETE CASCADE,
    source      TEXT NOT NULL,
    advisory_id TEXT NOT NULL,
    package     TEXT NOT NULL,
    cms         TEXT,
    component   TEXT,
    kind        TEXT,
    title       TEXT NOT NULL,
    link        TEXT,
    cve         TEXT NOT NULL DEFAULT '[]',
    aliases     TEXT NOT NULL DEFAULT '[]',
    severity    TEXT NOT NULL DEFAULT 'unknown',
    affected    TEXT NOT NULL,
    revision    TEXT NOT NULL,
    imported_at TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    UNIQUE (source, advisory_id, package)
);
CREATE INDEX advisories_target ON advisories(cms, component);
CREATE TABLE exposure_scans (
    scan_id     INTEGER PRIMARY KEY REFERENCES scans(id) ON DELETE CASCADE,
    computed_at TEXT NOT NULL,
    scan_date   TEXT NOT NULL,
    advisories  INTEGER NOT NULL,
    summary     TEXT NOT NULL DEFAULT '{}',
    rows        BLOB NOT NULL
);
CREATE TABLE exposure_emails (
    id          INTEGER PRIMARY KEY,
    scan_id     INTEGER NOT NULL REFERENCES scans(id) ON DELETE CASCADE,
    customer_id TEXT NOT NULL,
    kind        TEXT NOT NULL,
    message_id  TEXT NOT NULL UNIQUE,
    recipient   TEXT NOT NULL,
    subject     TEXT NOT NULL,
    state       TEXT NOT NULL DEFAULT 'pending',
    attempts    INTEGER NOT NULL DEFAULT 0,
    last_error  TEXT,
    created_at  TEXT NOT NULL,
    sent_at     TEXT,
    UNIQUE (scan_id, customer_id)
);
"""

# NOTE: issue 17. The ledger's own random id: the default backup store of ssh hosts is
# /var/lib/patchd/backups/<id>, so two ledgers (each numbering runs from 1) never share one.
_FIRST_RUN = """
CREATE TABLE ledger_info (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
INSERT INTO ledger_info (key, value) VALUES ('id', lower(hex(randomblob(16))));
"""

MIGRATIONS: tuple[Migration, ...] = (
    ("0001_initial", _SCHEMA_V1),
    # The backup journal of a patched installation (what rollback restores from) and the
    # account's policy at the time of the run (notify tells notify-only customers apart);
    # the kind of a scan error: host (unreachable), account (unreadable), folder (skipped).
    ("0002_result_journal_policy", _RESULT_JOURNAL),
    # The validated inventory by the sha256 of its file: a scan and the rollouts after it
    # read the same accounts.yaml (YAML parsing was a third of a 10,000-account rollout).
    ("0003_inventory_cache", _INVENTORY_CACHE),
    ("0006_rolled_back", _ROLLED_BACK),
    ("0006b_scan_patched_files", _SCAN_PATCHED_FILES),
    ("0005_advisories", _ADVISORIES),
    ("0009_first_run", _FIRST_RUN),
)
"""Every migration of the ledger, oldest first. Append only."""

_BOOTSTRAP = (
    "CREATE TABLE IF NOT EXISTS migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)"
)


def split_statements(sql: str) -> list[str]:
    """Split ``sql`` into complete statements (``;`` inside strings or triggers is kept).

    NOTE: ``executescript`` would commit any open transaction first, so migrations run
    their statements one by one inside the transaction that records them.
    """
    statements: list[str] = []
    buf = ""
    for piece in sql.split(";"):
        buf += piece + ";"
        if sqlite3.complete_statement(buf):
            stmt = buf.strip()
            if stmt.rstrip(";").strip():
                statements.append(stmt)
            buf = ""
    rest = buf[:-1].strip()  # the loop appended one ";" too many after the last piece
    if rest:
        raise ValueError(f"incomplete SQL statement at the end of a migration: {rest[:80]!r}")
    return statements


def applied_migrations(conn: sqlite3.Connection) -> list[str]:
    """Names of the migrations recorded in ``conn``'s database, in the order applied."""
    rows = conn.execute("SELECT name FROM migrations ORDER BY applied_at, rowid").fetchall()
    return [row[0] if not isinstance(row, dict) else row["name"] for row in rows]


def apply_migrations(
    conn: sqlite3.Connection,
    migrations: Sequence[Migration] = MIGRATIONS,
    *,
    where: str = "ledger",
) -> list[str]:
    """Apply the missing ``migrations`` to ``conn`` and return the names applied now.

    ``conn`` must be in autocommit mode (``isolation_level=None``). Raises
    :class:`LedgerError` (with ``where``) when the database knows a migration that
    ``migrations`` does not (a newer patchd wrote it) or when a migration fails; a failed
    migration leaves neither its schema changes nor its row behind.
    """
    names = [name for name, _ in migrations]
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate migration names in {names}")
    try:
        conn.execute(_BOOTSTRAP)
        known = set(names)
        unknown = [name for name in applied_migrations(conn) if name not in known]
    except sqlite3.DatabaseError as exc:
        raise LedgerError(f"cannot read the ledger: {exc}", where=where) from exc
    if unknown:
        raise LedgerError(
            "written by a newer patchd (unknown migrations: "
            f"{', '.join(unknown)}); upgrade patchd to use this ledger",
            where=where,
        )
    done: list[str] = []
    for name, sql in migrations:
        if _apply_one(conn, name, sql, where=where):
            done.append(name)
    return done


def _apply_one(conn: sqlite3.Connection, name: str, sql: str, *, where: str) -> bool:
    """Apply one migration in its own transaction; False when it was already applied."""
    statements = split_statements(sql)
    try:
        # NOTE: IMMEDIATE takes the write lock before the check, so two processes opening
        # a fresh ledger at once cannot both apply the same migration.
        conn.execute("BEGIN IMMEDIATE")
        try:
            row = conn.execute("SELECT 1 FROM migrations WHERE name = ?", (name,)).fetchone()
            if row is not None:
                conn.execute("COMMIT")
                return False
            for stmt in statements:
                conn.execute(stmt)
            conn.execute(
                "INSERT INTO migrations (name, applied_at) VALUES (?, ?)",
                (name, datetime.now(UTC).isoformat(timespec="microseconds")),
            )
            conn.execute("COMMIT")
            return True
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
    except sqlite3.DatabaseError as exc:
        raise LedgerError(f"migration {name} failed: {exc}", where=where) from exc
