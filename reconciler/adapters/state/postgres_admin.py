"""``admin.status`` / ``admin.migrate`` for a PostgreSQL state: one direct connection, no pool."""

from __future__ import annotations

from reconciler.adapters.state import _rules as rules
from reconciler.adapters.state.admin import COUNTED, StateStatus
from reconciler.adapters.state.postgres import lock_from_row
from reconciler.adapters.state.postgres_db import Database
from reconciler.adapters.state.postgres_schema import (
    SCHEMA_VERSION,
    check_version,
    current_version,
)
from reconciler.adapters.state.postgres_schema import migrate as run_migrations

_COUNT = {"tokens": "SELECT count(*) FROM tokens WHERE revoked_at IS NULL"}


def status(url: str) -> StateStatus:
    db = Database(url)
    conn = db.connect()
    try:
        with db.translate():
            version = current_version(conn)
            counts, lock = {}, None
            if version >= 1:
                for table in COUNTED:
                    row = conn.execute(_COUNT.get(table, f"SELECT count(*) FROM {table}")
                                       ).fetchone()
                    counts[table] = int(row[0]) if row else 0
                row = conn.execute("SELECT id, holder, pid, host, operation, created_at, "
                                   "expires_at, now() FROM locks WHERE slot = 1").fetchone()
                if row is not None:
                    lock = rules.live_lock(lock_from_row(row[:7]), row[7])
    finally:
        conn.close()
    return StateStatus("postgresql", db.shown, version, SCHEMA_VERSION, counts, lock)


def migrate(url: str) -> tuple[int, int]:
    db = Database(url)
    conn = db.connect()
    try:
        with db.translate():
            before = check_version(current_version(conn), db.shown)
            run_migrations(conn, db.shown)
            return before, current_version(conn)
    finally:
        conn.close()
