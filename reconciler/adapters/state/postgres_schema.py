"""The PostgreSQL state schema and its versioned migrations.

``MIGRATIONS[i]`` takes a database from version ``i`` to ``i + 1``. Each step runs in its own
transaction, under a transaction-scoped advisory lock (``pg_advisory_xact_lock``), together with
the row that records it in ``convctl_schema``: two servers starting together run every step
exactly once, and a crash leaves the database at the last whole step. A database whose schema is
newer than this code is refused with a one-line ``StateError``; so is a database holding tables
of the same names that convctl did not create.

The versions are PostgreSQL's own (the SQLite file counts its steps separately).
"""

from __future__ import annotations

from typing import Any, Final

import psycopg

from reconciler.adapters.state.postgres_db import POOL_SIZE, Database
from reconciler.errors import StateError

ADVISORY_LOCK_KEY: Final = 0x636F6E76  # "conv": one key for every convctl migration
LOCKS_ADVISORY_KEY: Final = 0x6C6F636B  # "lock": serializes taking, renewing, releasing locks

MIGRATIONS: Final[tuple[tuple[str, tuple[str, ...]], ...]] = (
    ("accounts, events, the state lock, the apply journal, control-plane tokens", (
        """CREATE TABLE accounts (
            name TEXT PRIMARY KEY,
            spec JSONB NOT NULL,
            labels JSONB NOT NULL,
            version INTEGER NOT NULL,
            updated_at TIMESTAMPTZ NOT NULL)""",
        """CREATE TABLE events (
            id TEXT PRIMARY KEY,
            account TEXT NOT NULL REFERENCES accounts(name),
            name TEXT NOT NULL,
            spec JSONB NOT NULL,
            labels JSONB NOT NULL,
            api TEXT NOT NULL,
            created_at TIMESTAMPTZ NOT NULL,
            updated_at TIMESTAMPTZ NOT NULL,
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
            created_at TIMESTAMPTZ NOT NULL,
            expires_at TIMESTAMPTZ NOT NULL)""",
        """CREATE TABLE journal (
            seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            run_id TEXT NOT NULL,
            idx INTEGER NOT NULL,
            description TEXT NOT NULL,
            status TEXT NOT NULL,
            detail TEXT NOT NULL,
            at TIMESTAMPTZ NOT NULL)""",
        "CREATE INDEX journal_run ON journal (run_id, seq)",
        """CREATE TABLE tokens (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            hash TEXT NOT NULL UNIQUE,
            scopes TEXT NOT NULL,
            created_at TIMESTAMPTZ NOT NULL,
            revoked_at TIMESTAMPTZ)""",
        "CREATE UNIQUE INDEX tokens_active_name ON tokens (name) WHERE revoked_at IS NULL",
    )),
    # The queues' rows are updated in place (marks): room on each page lets PostgreSQL
    # keep a new row version beside the old one (a "HOT" update, no index write).
    ("the agent: inbox and outbox with claims, contacts, skips, paused pixels, holds", (
        """CREATE TABLE agent_inbox (
            seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            dedup_key TEXT NOT NULL UNIQUE,
            kind TEXT NOT NULL,
            portal_id BIGINT NOT NULL,
            body TEXT NOT NULL,
            received_at TIMESTAMPTZ NOT NULL,
            processed_at TIMESTAMPTZ,
            claimed_by TEXT,
            lease_until TIMESTAMPTZ) WITH (fillfactor = 70)""",
        "CREATE INDEX agent_inbox_open ON agent_inbox (seq) WHERE processed_at IS NULL",
        """CREATE TABLE agent_outbox (
            seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            conversion_event_id TEXT NOT NULL,
            event_id TEXT NOT NULL,
            account TEXT NOT NULL,
            pixel_id TEXT NOT NULL,
            event_name TEXT NOT NULL,
            event_time BIGINT NOT NULL,
            payload TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('queued', 'sent', 'dead')),
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at DOUBLE PRECISION NOT NULL,
            reason TEXT,
            last_error TEXT,
            created_at TIMESTAMPTZ NOT NULL,
            updated_at TIMESTAMPTZ NOT NULL,
            claimed_by TEXT,
            lease_until TIMESTAMPTZ,
            UNIQUE (event_id, conversion_event_id)) WITH (fillfactor = 70)""",
        "CREATE INDEX agent_outbox_due ON agent_outbox (next_attempt_at) WHERE status = 'queued'",
        """CREATE TABLE agent_contacts (
            portal_id BIGINT NOT NULL,
            contact_id TEXT NOT NULL,
            body TEXT NOT NULL,
            updated_at TIMESTAMPTZ NOT NULL,
            PRIMARY KEY (portal_id, contact_id))""",
        """CREATE TABLE agent_skips (
            reason TEXT NOT NULL,
            conversion_event_id TEXT NOT NULL,
            count BIGINT NOT NULL,
            PRIMARY KEY (reason, conversion_event_id))""",
        "CREATE TABLE agent_ingest_drops (reason TEXT PRIMARY KEY, count BIGINT NOT NULL)",
        """CREATE TABLE agent_paused_pixels (
            pixel_id TEXT PRIMARY KEY,
            reason TEXT NOT NULL,
            message TEXT NOT NULL,
            token_fingerprint TEXT,
            paused_at TEXT NOT NULL)""",
        """CREATE TABLE agent_holds (
            target TEXT PRIMARY KEY,
            reason TEXT NOT NULL,
            message TEXT NOT NULL,
            since TEXT NOT NULL)""",
    )),
    # Match-key coverage (core.coverage), as the SQLite file's step 5 -> 6: each outbox row's
    # user_data keys as a bit mask (NULL for rows queued before: not counted), and the sent
    # events per conversion event, hour and mask.
    ("match-key coverage: the outbox rows' key masks, sent events per event, hour and mask", (
        "ALTER TABLE agent_outbox ADD COLUMN key_mask INTEGER",
        """CREATE TABLE agent_match_coverage (
            conversion_event_id TEXT NOT NULL,
            hour BIGINT NOT NULL,
            key_mask INTEGER NOT NULL,
            sent BIGINT NOT NULL,
            PRIMARY KEY (conversion_event_id, hour, key_mask))""",
    )),
    ("account locks: any number, on disjoint sets of accounts (issue 14)", (
        """CREATE TABLE account_locks (
            id TEXT PRIMARY KEY,
            holder TEXT NOT NULL,
            pid INTEGER NOT NULL,
            host TEXT NOT NULL,
            operation TEXT NOT NULL,
            created_at TIMESTAMPTZ NOT NULL,
            expires_at TIMESTAMPTZ NOT NULL,
            accounts JSONB NOT NULL)""",
    )),
    ("the audit log: append-only records, in order (issue 14)", (
        """CREATE TABLE audit (
            seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            body JSONB NOT NULL)""",
    )),
    # As the SQLite file's step 8 -> 9: every row before this step is Meta's.
    ("networks (issue 16): the outbox keyed by destination and target, paused targets", (
        "ALTER TABLE agent_outbox ADD COLUMN destination TEXT NOT NULL DEFAULT 'meta'",
        "ALTER TABLE agent_outbox RENAME COLUMN pixel_id TO target",
        "ALTER TABLE agent_paused_pixels RENAME TO agent_paused_targets",
        "ALTER TABLE agent_paused_targets RENAME COLUMN pixel_id TO target",
        "ALTER TABLE agent_paused_targets ADD COLUMN destination TEXT NOT NULL DEFAULT 'meta'",
        "ALTER INDEX agent_paused_pixels_pkey RENAME TO agent_paused_targets_pkey",
    )),
    # Claims are row locks held by an agent's open transaction (adapters.agentstore_pg_claims),
    # not leases written into the rows: the lease columns go (the rows stay). Delivery takes the
    # queued rows in seq order: an index of them in that order lets a claim stop after its page
    # (with one on next_attempt_at, every queued row was read and sorted for each page).
    ("agent claims held by transactions: the lease columns dropped, queued rows by seq", (
        "ALTER TABLE agent_inbox DROP COLUMN claimed_by, DROP COLUMN lease_until",
        "ALTER TABLE agent_outbox DROP COLUMN claimed_by, DROP COLUMN lease_until",
        "DROP INDEX agent_outbox_due",
        "CREATE INDEX agent_outbox_queued ON agent_outbox (seq) WHERE status = 'queued'",
    )),
)
SCHEMA_VERSION: Final = len(MIGRATIONS)
TABLES: Final = ("accounts", "events", "locks", "journal", "tokens", "agent_inbox",
                  "agent_outbox", "agent_contacts", "agent_skips", "agent_ingest_drops",
                  "agent_paused_pixels", "agent_holds", "agent_match_coverage", "account_locks",
                  "audit", "agent_paused_targets")

_VERSION_TABLE = """CREATE TABLE IF NOT EXISTS convctl_schema (
    version INTEGER PRIMARY KEY,
    description TEXT NOT NULL,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"""

Conn = psycopg.Connection[Any]


def current_version(conn: Conn) -> int:
    """The schema version of the database (0: not a convctl state yet)."""
    if conn.execute("SELECT to_regclass('convctl_schema')").fetchone() == (None,):
        return 0
    row = conn.execute("SELECT COALESCE(MAX(version), 0) FROM convctl_schema").fetchone()
    return int(row[0]) if row else 0


def check_version(version: int, shown: str) -> int:
    if version > SCHEMA_VERSION:
        raise StateError(f"state database {shown} has schema version {version}, this convctl "
                         f"knows up to {SCHEMA_VERSION}; upgrade convctl (never downgrade a "
                         "shared state)")
    return version


def migrated(url: str, *, pool_size: int = POOL_SIZE) -> Database:
    """The ``Database`` at ``url``, its schema brought up to date first over one direct
    connection (so a wrong URL or password is reported at once); what every store opens with."""
    db = Database(url, pool_size=pool_size)
    conn = db.connect()
    try:
        with db.translate():
            migrate(conn, db.shown)
    finally:
        conn.close()
    return db


def migrate(conn: Conn, shown: str) -> list[int]:
    """Bring the database up to ``SCHEMA_VERSION``; the versions this call applied."""
    if check_version(current_version(conn), shown) == SCHEMA_VERSION:
        return []  # the usual case: no lock, one query
    applied = []
    for target in range(1, SCHEMA_VERSION + 1):
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (ADVISORY_LOCK_KEY,))
            conn.execute(_VERSION_TABLE)
            version = check_version(current_version(conn), shown)  # another server may be done
            if version >= target:
                continue
            if version == 0:
                _check_foreign_tables(conn, shown)
            description, statements = MIGRATIONS[target - 1]
            for statement in statements:
                conn.execute(statement)
            conn.execute("INSERT INTO convctl_schema (version, description) VALUES (%s, %s)",
                         (target, description))
            applied.append(target)
    return applied


def _check_foreign_tables(conn: Conn, shown: str) -> None:
    rows = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = current_schema() "
                        "AND tablename = ANY(%s)", (list(TABLES),)).fetchall()
    if rows:
        names = ", ".join(sorted(str(r[0]) for r in rows))
        raise StateError(f"state database {shown} already has tables convctl did not create "
                         f"({names}); point --state at an empty database")
