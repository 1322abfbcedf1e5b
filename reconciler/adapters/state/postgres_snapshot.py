"""``snapshot.read`` / ``snapshot.write`` for a PostgreSQL state (see ``snapshot``)."""

from __future__ import annotations

from psycopg.types.json import Jsonb

from reconciler.adapters.state.postgres import EVENT_JSON, PostgresProvider
from reconciler.adapters.state.postgres_schema import Conn
from reconciler.adapters.state.snapshot import (
    JOURNAL_FIELDS,
    TOKEN_FIELDS,
    Snapshot,
    refuse_non_empty,
)
from reconciler.core.live import LiveAccount


def read(url: str) -> Snapshot:
    provider = PostgresProvider(url)  # migrated: an empty database reads as an empty state
    try:
        with provider.db.transaction() as conn:
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")  # one snapshot
            return _read(conn, provider)
    finally:
        provider.close()


def _read(conn: Conn, provider: PostgresProvider) -> Snapshot:
    accounts = [LiveAccount.model_validate(dict(zip(
        ("name", "spec", "labels", "version", "updated_at"), row, strict=True)))
        for row in conn.execute("SELECT name, spec, labels, version, updated_at FROM accounts "
                                "ORDER BY name").fetchall()]
    events = provider.parse_events([row[0] for row in conn.execute(
        f"{EVENT_JSON} ORDER BY id").fetchall()])
    tokens = [dict(zip(TOKEN_FIELDS, row, strict=True)) for row in conn.execute(
        f"SELECT {', '.join(TOKEN_FIELDS)} FROM tokens ORDER BY id").fetchall()]
    journal = [dict(zip(JOURNAL_FIELDS, row, strict=True)) for row in conn.execute(
        f"SELECT {', '.join(JOURNAL_FIELDS)} FROM journal ORDER BY seq").fetchall()]
    audit = [row[0] for row in conn.execute("SELECT body FROM audit ORDER BY seq").fetchall()]
    return Snapshot(accounts, events, tokens, journal, audit)


def write(url: str, snapshot: Snapshot) -> None:
    provider = PostgresProvider(url)
    try:
        with provider.db.transaction() as conn:
            refuse_non_empty(url, _read(conn, provider))  # again, inside the writing transaction
            _write(conn, snapshot)
    finally:
        provider.close()


def _write(conn: Conn, snapshot: Snapshot) -> None:
    with conn.cursor() as cur:
        cur.executemany("INSERT INTO accounts (name, spec, labels, version, updated_at) "
                        "VALUES (%s, %s, %s, %s, %s)", [
                            (a.name, Jsonb(a.spec.model_dump(mode="json", by_alias=True)),
                             Jsonb(a.labels), a.version, a.updated_at)
                            for a in snapshot.accounts])
        cur.executemany(
            "INSERT INTO events (id, account, name, spec, labels, api, created_at, updated_at, "
            "version, managed_by, last_applied_hash, stage_count) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)", [
                (e.id, e.account, e.name, Jsonb(e.spec.model_dump(mode="json", by_alias=True)),
                 Jsonb(e.labels), e.api, e.created_at, e.updated_at, e.version, e.managed_by,
                 e.last_applied_hash, e.stage_count) for e in snapshot.events])
        cur.executemany(f"INSERT INTO tokens ({', '.join(TOKEN_FIELDS)}) VALUES "
                        "(%s, %s, %s, %s, %s, %s)",
                        [tuple(t[k] for k in TOKEN_FIELDS) for t in snapshot.tokens])
        cur.executemany(f"INSERT INTO journal ({', '.join(JOURNAL_FIELDS)}) VALUES "
                        "(%s, %s, %s, %s, %s, %s)",
                        [tuple(j[k] for k in JOURNAL_FIELDS) for j in snapshot.journal])
        cur.executemany("INSERT INTO audit (body) VALUES (%s)",
                        [(Jsonb(a),) for a in snapshot.audit])
