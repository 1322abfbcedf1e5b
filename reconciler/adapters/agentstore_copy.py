"""The agent's queues moved by ``convctl state copy``: every row of the inbox (processed or
not), the outbox (queued, sent, dead letters with their reasons, each row's match-key mask),
contacts, skip and dropped-field counts, paused targets, holds and the match-key coverage
buckets, from a SQLite state file or a PostgreSQL state
database into an empty one of either kind, read back and compared.

Rows travel in one neutral form (``Queues``: per table, tuples in ``COLUMNS`` order, times as
aware datetimes). The inbox's order is kept; on SQLite, whose cursor says what is processed, the
processed rows are written first and the cursor set after them. Claims are not copied: stop the
agents first, and the target starts with nothing claimed. Each side is read in one transaction
and written in one.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from reconciler.adapters.state import is_postgres, redact_url
from reconciler.errors import StateError

COLUMNS: Final[dict[str, tuple[str, ...]]] = {
    "inbox": ("dedup_key", "kind", "portal_id", "body", "received_at", "processed"),
    "outbox": ("conversion_event_id", "event_id", "account", "destination", "target",
               "event_name", "event_time", "payload", "status", "attempts", "next_attempt_at",
               "reason", "last_error", "created_at", "updated_at", "key_mask"),
    "contacts": ("portal_id", "contact_id", "body", "updated_at"),
    "skips": ("reason", "conversion_event_id", "count"),
    "ingest_drops": ("reason", "count"),
    "paused_targets": ("target", "destination", "reason", "message", "token_fingerprint",
                       "paused_at"),
    "agent_holds": ("target", "reason", "message", "since"),
    "match_coverage": ("conversion_event_id", "hour", "key_mask", "sent"),
}
_TIMES: Final = {"received_at", "created_at", "updated_at"}
_ORDER: Final = {"inbox": "seq", "outbox": "seq", "contacts": "portal_id, contact_id",
                 "skips": "reason, conversion_event_id", "ingest_drops": "reason",
                 "paused_targets": "target", "agent_holds": "target",
                 "match_coverage": "conversion_event_id, hour, key_mask"}
_PG_TABLES: Final = {"agent_holds": "agent_holds"}  # the others: agent_ + the SQLite name


def pg_table(name: str) -> str:
    return _PG_TABLES.get(name, f"agent_{name}")


@dataclass(frozen=True)
class Queues:
    rows: dict[str, list[tuple[Any, ...]]] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        """What ``state copy`` prints: rows per table, the inbox and outbox by state."""
        inbox, outbox = self.rows.get("inbox", []), self.rows.get("outbox", [])
        done = sum(1 for row in inbox if row[5])
        out = {"inbox pending": len(inbox) - done, "inbox done": done}
        status = COLUMNS["outbox"].index("status")
        for state in ("queued", "sent", "dead"):
            out[f"outbox {state}"] = sum(1 for row in outbox if row[status] == state)
        for table in ("contacts", "skips", "ingest_drops", "paused_targets", "agent_holds",
                      "match_coverage"):
            out[table.replace("_", " ")] = len(self.rows.get(table, []))
        return out

    @property
    def empty(self) -> bool:
        return not any(self.rows.values())

    def same(self, other: Queues) -> bool:
        """The same rows in every table (the inbox's order may differ: see the module notes)."""
        return all(sorted(self.rows.get(t, []), key=repr) == sorted(other.rows.get(t, []), key=repr)
                   for t in COLUMNS)


def read(url: str) -> Queues:
    return _pg_read(url) if is_postgres(url) else _sqlite_read(_path(url))


def write(url: str, queues: Queues) -> None:
    if is_postgres(url):
        _pg_write(url, queues)
    else:
        _sqlite_write(_path(url), queues)


def copy_queues(source: str, target: str) -> Queues:
    """Copy the queues at ``source`` into ``target`` (whose queues must be empty), verified."""
    queues = read(source)
    write(target, queues)
    copied = read(target)
    if not copied.same(queues):
        raise StateError(f"the agent queues copied to {redact_url(target)} do not read back as "
                         f"the source: source {queues.counts()}, copy {copied.counts()}")
    return queues


def refuse_non_empty(url: str, found: Queues) -> None:
    if not found.empty:
        held = ", ".join(f"{n} {what}" for what, n in found.counts().items() if n)
        raise StateError(f"the target state {redact_url(url)} already holds agent queues "
                         f"({held}); copy only into a new, empty state")


def _path(url: str) -> Path:
    from reconciler.adapters.state import sqlite_path

    return sqlite_path(url)


def _time(value: Any) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)


def _neutral(table: str, row: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(_time(v) if c in _TIMES and v is not None else v
                 for c, v in zip(COLUMNS[table], row, strict=True))


# -- SQLite -----------------------------------------------------------------------------------

def _sqlite_read(path: Path) -> Queues:
    if not path.exists():
        return Queues()
    from reconciler.adapters.state.sqlite_schema import connect

    conn = connect(path)
    try:
        conn.execute("BEGIN")
        cursor = conn.execute("SELECT seq FROM agent_cursor WHERE name = 'inbox'").fetchone()[0]
        rows: dict[str, list[tuple[Any, ...]]] = {}
        for table, columns in COLUMNS.items():
            select = ", ".join(f"seq <= {int(cursor)}" if c == "processed" else c
                               for c in columns)
            rows[table] = [_neutral(table, tuple(r)) for r in conn.execute(
                f"SELECT {select} FROM {table} ORDER BY {_ORDER[table]}")]
        rows["inbox"] = [(*r[:5], bool(r[5])) for r in rows["inbox"]]
        conn.execute("COMMIT")
        return Queues(rows)
    except sqlite3.Error as exc:
        raise StateError(f"state file {path}: {exc}") from exc
    finally:
        conn.close()


def _sqlite_write(path: Path, queues: Queues) -> None:
    from reconciler.adapters.state.sqlite_schema import connect, immediate

    conn = connect(path)
    try:
        with immediate(conn):
            refuse_non_empty(f"sqlite:///{path}", _sqlite_read_in(conn))
            inbox = queues.rows.get("inbox", [])
            for processed in (True, False):  # the cursor ends after the processed rows
                conn.executemany("INSERT INTO inbox (dedup_key, kind, portal_id, body, "
                                 "received_at) VALUES (?, ?, ?, ?, ?)",
                                 [(*r[:4], r[4].isoformat()) for r in inbox if r[5] == processed])
                if processed:
                    conn.execute("UPDATE agent_cursor SET seq = (SELECT COALESCE(MAX(seq), 0) "
                                 "FROM inbox) WHERE name = 'inbox'")
            for table, columns in COLUMNS.items():
                if table != "inbox" and queues.rows.get(table):
                    conn.executemany(
                        f"INSERT INTO {table} ({', '.join(columns)}) VALUES "
                        f"({', '.join('?' * len(columns))})",
                        [tuple(v.isoformat() if isinstance(v, datetime) else v for v in row)
                         for row in queues.rows[table]])
    except sqlite3.Error as exc:
        raise StateError(f"state file {path}: {exc}") from exc
    finally:
        conn.close()


def _sqlite_read_in(conn: sqlite3.Connection) -> Queues:
    return Queues({table: conn.execute(f"SELECT 1 FROM {table} LIMIT 1").fetchall()
                   for table in COLUMNS})


# -- PostgreSQL -------------------------------------------------------------------------------

def _pg_select(table: str) -> str:
    columns = ", ".join("processed_at IS NOT NULL" if c == "processed" else c
                        for c in COLUMNS[table])
    return f"SELECT {columns} FROM {pg_table(table)} ORDER BY {_ORDER[table]}"


def _pg_read(url: str) -> Queues:
    from reconciler.adapters.agentstore_pg import PostgresAgentStore

    store = PostgresAgentStore(url)  # migrated: an empty database reads as empty queues
    try:
        with store.db.transaction() as conn:
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")  # one snapshot
            return Queues({table: [_neutral(table, tuple(r)) for r in
                                   conn.execute(_pg_select(table)).fetchall()]
                           for table in COLUMNS})
    finally:
        store.close()


def _pg_write(url: str, queues: Queues) -> None:
    from reconciler.adapters.agentstore_pg import PostgresAgentStore

    store = PostgresAgentStore(url)
    try:
        with store.db.transaction() as conn:
            found = {t: conn.execute(f"SELECT 1 FROM {pg_table(t)} LIMIT 1").fetchall()
                     for t in COLUMNS}
            refuse_non_empty(url, Queues(found))
            with conn.cursor() as cur:
                cur.executemany("INSERT INTO agent_inbox (dedup_key, kind, portal_id, body, "
                                "received_at, processed_at) VALUES (%s, %s, %s, %s, %s, "
                                "CASE WHEN %s THEN now() END)", queues.rows.get("inbox", []))
                for table, columns in COLUMNS.items():
                    if table != "inbox" and queues.rows.get(table):
                        cur.executemany(
                            f"INSERT INTO {pg_table(table)} ({', '.join(columns)}) VALUES "
                            f"({', '.join(['%s'] * len(columns))})", queues.rows[table])
    finally:
        store.close()
