"""Opening the SQLite state file: connection settings and versioned schema migrations.

The schema version lives in ``PRAGMA user_version``. ``MIGRATIONS[i]`` takes a file from version
``i`` to ``i + 1``; each step runs in its own ``BEGIN IMMEDIATE`` transaction together with the
version bump, so a crash or a racing process never leaves a half-migrated file. A file newer
than this code, a corrupt file, or a SQLite file that is not a convctl state is refused with a
one-line ``StateError``.
"""

from __future__ import annotations

import contextlib
import random
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Final

from reconciler.errors import StateError

BUSY_TIMEOUT_SECONDS: Final = 30.0

MIGRATIONS: Final[tuple[tuple[str, ...], ...]] = (
    (  # 0 -> 1: accounts, events, the lock row, the apply journal
        """CREATE TABLE accounts (
            name TEXT PRIMARY KEY,
            spec TEXT NOT NULL,
            labels TEXT NOT NULL,
            version INTEGER NOT NULL,
            updated_at TEXT NOT NULL)""",
        """CREATE TABLE events (
            id TEXT PRIMARY KEY,
            account TEXT NOT NULL REFERENCES accounts(name),
            name TEXT NOT NULL,
            spec TEXT NOT NULL,
            labels TEXT NOT NULL,
            api TEXT NOT NULL,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            version INTEGER NOT NULL,
            managed_by TEXT,
            last_applied_hash TEXT,
            stage_count INTEGER NOT NULL,
            UNIQUE (account, name))""",
        """CREATE TABLE locks (
            slot INTEGER PRIMARY KEY CHECK (slot = 1),
            id TEXT NOT NULL,
            holder TEXT NOT NULL,
            pid INTEGER NOT NULL,
            host TEXT NOT NULL,
            operation TEXT NOT NULL,
            created_at TEXT NOT NULL,
            expires_at TEXT NOT NULL)""",
        """CREATE TABLE journal (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            run_id TEXT NOT NULL,
            idx INTEGER NOT NULL,
            description TEXT NOT NULL,
            status TEXT NOT NULL,
            detail TEXT NOT NULL,
            at TEXT NOT NULL)""",
        "CREATE INDEX journal_run ON journal (run_id, seq)",
    ),
    (  # 1 -> 2: control-plane bearer tokens, stored only as SHA-256 hashes
        """CREATE TABLE tokens (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            hash TEXT NOT NULL UNIQUE,
            scopes TEXT NOT NULL,
            created_at TEXT NOT NULL,
            revoked_at TEXT)""",
        "CREATE UNIQUE INDEX tokens_active_name ON tokens (name) WHERE revoked_at IS NULL",
    ),
    (  # 2 -> 3: the sync agent: inbox, embedded contacts, outbox, skip counters, paused pixels
        """CREATE TABLE inbox (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            dedup_key TEXT NOT NULL UNIQUE,
            kind TEXT NOT NULL,
            portal_id INTEGER NOT NULL,
            body TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('new', 'processed')),
            received_at TEXT NOT NULL,
            processed_at TEXT)""",
        "CREATE INDEX inbox_new ON inbox (status, seq)",
        """CREATE TABLE contacts (
            portal_id INTEGER NOT NULL,
            contact_id TEXT NOT NULL,
            body TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            PRIMARY KEY (portal_id, contact_id))""",
        """CREATE TABLE outbox (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            conversion_event_id TEXT NOT NULL,
            event_id TEXT NOT NULL,
            account TEXT NOT NULL,
            pixel_id TEXT NOT NULL,
            event_name TEXT NOT NULL,
            event_time INTEGER NOT NULL,
            payload TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('queued', 'sent', 'dead')),
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at REAL NOT NULL,
            reason TEXT,
            last_error TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            UNIQUE (event_id, conversion_event_id))""",
        "CREATE INDEX outbox_queue ON outbox (status, seq)",
        """CREATE TABLE skips (
            reason TEXT NOT NULL,
            conversion_event_id TEXT NOT NULL,
            count INTEGER NOT NULL,
            PRIMARY KEY (reason, conversion_event_id))""",
        """CREATE TABLE paused_pixels (
            pixel_id TEXT PRIMARY KEY,
            reason TEXT NOT NULL,
            message TEXT NOT NULL,
            token_fingerprint TEXT,
            paused_at TEXT NOT NULL)""",
    ),
    (  # 3 -> 4: the inbox is processed in order, so one cursor replaces a status per row (a
       # row write less per event); rows from the first unprocessed one on count as new
        """CREATE TABLE agent_cursor (
            name TEXT PRIMARY KEY,
            seq INTEGER NOT NULL)""",
        """INSERT INTO agent_cursor (name, seq) VALUES ('inbox', COALESCE(
            (SELECT MIN(seq) - 1 FROM inbox WHERE status = 'new'),
            (SELECT MAX(seq) FROM inbox), 0))""",
        "DROP INDEX inbox_new",
        "ALTER TABLE inbox DROP COLUMN status",
        "ALTER TABLE inbox DROP COLUMN processed_at",
    ),
    (  # 4 -> 5: why the agent holds off a part of its work (the inbox while the contact source
       # refuses it, ...) for `agent status`, and the input fields dropped at ingest, by reason
        """CREATE TABLE agent_holds (
            target TEXT PRIMARY KEY,
            reason TEXT NOT NULL,
            message TEXT NOT NULL,
            since TEXT NOT NULL)""",
        """CREATE TABLE ingest_drops (
            reason TEXT PRIMARY KEY,
            count INTEGER NOT NULL)""",
    ),
    (  # 5 -> 6: match-key coverage (core.coverage): each outbox row's user_data keys as a
       # bit mask (NULL for rows queued before: not counted), and the sent events per
       # conversion event, hour and mask
        "ALTER TABLE outbox ADD COLUMN key_mask INTEGER",
        """CREATE TABLE match_coverage (
            conversion_event_id TEXT NOT NULL,
            hour INTEGER NOT NULL,
            key_mask INTEGER NOT NULL,
            sent INTEGER NOT NULL,
            PRIMARY KEY (conversion_event_id, hour, key_mask)) WITHOUT ROWID""",
    ),
    (  # 6 -> 7: account locks (issue 14): any number, on disjoint sets of accounts (a JSON
       # list); the whole-state lock stays the one row of ``locks`` and conflicts with them all
        """CREATE TABLE account_locks (
            id TEXT PRIMARY KEY,
            holder TEXT NOT NULL,
            pid INTEGER NOT NULL,
            host TEXT NOT NULL,
            operation TEXT NOT NULL,
            created_at TEXT NOT NULL,
            expires_at TEXT NOT NULL,
            accounts TEXT NOT NULL)""",
    ),
    (  # 7 -> 8: the audit log (issue 14): append-only records as JSON, in order
        """CREATE TABLE audit (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            body TEXT NOT NULL)""",
    ),
    (  # 8 -> 9: networks beside Meta (issue 16): the outbox is keyed by destination (the
       # network) and target (Meta's pixel, LinkedIn's conversion rule, ...), and paused pixels
       # become paused targets; every row before this step is Meta's
        "ALTER TABLE outbox ADD COLUMN destination TEXT NOT NULL DEFAULT 'meta'",
        "ALTER TABLE outbox RENAME COLUMN pixel_id TO target",
        "ALTER TABLE paused_pixels RENAME TO paused_targets",
        "ALTER TABLE paused_targets RENAME COLUMN pixel_id TO target",
        "ALTER TABLE paused_targets ADD COLUMN destination TEXT NOT NULL DEFAULT 'meta'",
    ),
    (  # 9 -> 10: cheaper outbox writes (issue 17): the queue index holds only queued rows
       # and dead letters, so sending a row drops its entry instead of moving it to a 'sent'
       # part that no hot query reads (the sent rows are read in seq order or counted whole)
        "DROP INDEX outbox_queue",
        "CREATE INDEX outbox_queued ON outbox (seq) WHERE status = 'queued'",
        "CREATE INDEX outbox_dead ON outbox (seq) WHERE status = 'dead'",
    ),
)
SCHEMA_VERSION: Final = len(MIGRATIONS)
_OWN_TABLES: Final = {"accounts", "events", "locks", "journal", "tokens", "sqlite_sequence",
                      "account_locks", "audit"}


EVENT_COLUMNS: Final = ("id", "account", "name", "spec", "labels", "api", "created_at",
                        "updated_at", "version", "managed_by", "last_applied_hash", "stage_count")


def connect(path: Path) -> sqlite3.Connection:
    """Open (creating file and parent directory if needed) and migrate the state file."""
    _make_parent(path)
    try:
        conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None,
                               check_same_thread=False)
    except sqlite3.Error as exc:
        raise StateError(f"cannot open state file {path}: {exc}") from exc
    try:
        _configure(conn)
        migrate(conn, path)
    except sqlite3.OperationalError as exc:  # busy, unreadable, disk full: not corruption
        conn.close()
        raise StateError(f"cannot open state file {path}: {exc}") from exc
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise StateError(f"state file {path} is corrupt or not a SQLite database ({exc}); "
                         "restore it from a backup or point --state elsewhere") from exc
    except BaseException:
        conn.close()
        raise
    return conn


def _make_parent(path: Path) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StateError(f"cannot create the directory of state file {path}: "
                         f"{exc.strerror or exc}") from exc


def _configure(conn: sqlite3.Connection) -> None:
    conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_SECONDS * 1000)}")
    _switch_to_wal(conn)
    conn.execute("PRAGMA foreign_keys = ON")


def is_busy(exc: sqlite3.OperationalError) -> bool:
    return "locked" in str(exc) or "busy" in str(exc)


def _switch_to_wal(conn: sqlite3.Connection) -> None:
    """Set WAL mode (persistent in the file). Switching does not always wait on the busy
    handler when several processes create the file at once, so retry until the busy timeout."""
    deadline = time.monotonic() + BUSY_TIMEOUT_SECONDS
    while True:
        try:
            if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if not is_busy(exc) or time.monotonic() > deadline:
                raise
            time.sleep(random.uniform(0.005, 0.05))


def user_version(conn: sqlite3.Connection) -> int:
    row = conn.execute("PRAGMA user_version").fetchone()
    return int(row[0])


def migrate(conn: sqlite3.Connection, path: Path) -> None:
    """Bring the file up to ``SCHEMA_VERSION``, one transaction per step."""
    version = check_version(conn, path)
    while version < SCHEMA_VERSION:
        with immediate(conn):
            version = check_version(conn, path)  # another process may have migrated meanwhile
            if version < SCHEMA_VERSION:
                if version == 0:
                    _check_foreign_tables(conn, path)
                for statement in MIGRATIONS[version]:
                    conn.execute(statement)
                version += 1
                conn.execute(f"PRAGMA user_version = {version}")


@contextlib.contextmanager
def immediate(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One ``BEGIN IMMEDIATE`` transaction (the write lock taken up front, so readers of what
    the write depends on see no race): committed on success, rolled back on any error."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        rollback(conn)
        raise


@contextlib.contextmanager
def snapshot(conn: sqlite3.Connection) -> Iterator[None]:
    """One read transaction: its queries see the same state (WAL: a snapshot); inside one
    already open (a caller's write), that one."""
    if conn.in_transaction:
        yield
        return
    conn.execute("BEGIN")
    try:
        yield
    finally:
        rollback(conn)


def rollback(conn: sqlite3.Connection) -> None:
    """Roll back if a transaction is open; the original error is the one worth reporting."""
    if conn.in_transaction:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")


def check_version(conn: sqlite3.Connection, path: Path) -> int:
    version = user_version(conn)
    if version > SCHEMA_VERSION:
        raise StateError(f"state file {path} has schema version {version}, this convctl knows "
                         f"up to {SCHEMA_VERSION}; upgrade convctl")
    return version


def _check_foreign_tables(conn: sqlite3.Connection, path: Path) -> None:
    rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    foreign = sorted({str(r[0]) for r in rows} - _OWN_TABLES)
    if foreign:
        raise StateError(f"state file {path} is a SQLite database but not a convctl state "
                         f"(it has tables {', '.join(foreign)}); point --state elsewhere")


def schema_problem(path: Path) -> str | None:
    """Why the file at ``path`` is not at this convctl's ``SCHEMA_VERSION`` (None when it is):
    for readiness probes, read-only and without migrating."""
    try:
        with contextlib.closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True,
                                                timeout=BUSY_TIMEOUT_SECONDS)) as conn:
            version = user_version(conn)
    except sqlite3.Error as exc:
        return f"cannot read the schema version: {exc}"
    if version != SCHEMA_VERSION:
        return f"schema version {version}, this convctl needs {SCHEMA_VERSION}"
    return None
