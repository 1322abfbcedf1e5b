"""``admin.status`` / ``admin.migrate`` for a PostgreSQL state: one direct connection, no pool."""

from __future__ import annotations

from typing import Any

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
from reconciler.core.provider import LockInfo

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
                lock = _main_lock(conn, version)
    finally:
        conn.close()
    return StateStatus("postgresql", db.shown, version, SCHEMA_VERSION, counts, lock)


def _main_lock(conn: Any, version: int) -> LockInfo | None:
    """The whole-state lock, else the oldest account lock (schema 2 on), if one holds now."""
    scoped = ("UNION ALL SELECT id, holder, pid, host, operation, created_at, expires_at, "
              "accounts FROM account_locks" if version >= 2 else "")
    rows = conn.execute("SELECT id, holder, pid, host, operation, created_at, expires_at, "
                        f"NULL::jsonb FROM locks {scoped}").fetchall()
    now = conn.execute("SELECT now()").fetchone()[0]
    stored = [lock for row in rows if (lock := lock_from_row(row)) is not None]
    return rules.main_lock(rules.live_locks(stored, now))


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
