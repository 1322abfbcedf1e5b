"""``convctl state copy``: the whole live state, moved from one store to another, nothing lost.

A ``Snapshot`` is every row of the live state as stored (accounts, events with their ids,
versions and timestamps, tokens as hashes, the apply journal and the audit log in order); the
lock is not part of
it: the copy holds the source's lock while it runs and the target starts unlocked. The source
is read in one consistent transaction; the target is written in one transaction, which first
checks that it is empty; then the target is read back and must equal the source, row for row.

SQLite's side is here, PostgreSQL's in ``postgres_snapshot``. The agent's queues follow, in
their own transaction, verified the same way (``adapters.agentstore_copy``); the target's
queues are checked empty before anything is written. ``agent_rows`` are their verified counts.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import orjson

from reconciler.adapters.state import is_postgres, open_provider, redact_url, resolve_url
from reconciler.adapters.state.admin import state_file
from reconciler.adapters.state.sqlite_schema import connect, immediate
from reconciler.core.live import LiveAccount, LiveEvent
from reconciler.errors import StateError, UsageError

TOKEN_FIELDS = ("id", "name", "hash", "scopes", "created_at", "revoked_at")
JOURNAL_FIELDS = ("run_id", "idx", "description", "status", "detail", "at")


@dataclass(frozen=True)
class Snapshot:
    accounts: list[LiveAccount] = field(default_factory=list)
    events: list[LiveEvent] = field(default_factory=list)
    tokens: list[dict[str, Any]] = field(default_factory=list)  # TOKEN_FIELDS, times as datetime
    journal: list[dict[str, Any]] = field(default_factory=list)  # JOURNAL_FIELDS, in order
    audit: list[dict[str, Any]] = field(default_factory=list)  # the records' JSON, in order
    agent_rows: dict[str, int] = field(default_factory=dict)  # the agent queues copied

    def counts(self) -> dict[str, int]:
        return {"accounts": len(self.accounts), "events": len(self.events),
                "tokens": len(self.tokens), "journal steps": len(self.journal),
                "audit records": len(self.audit)}

    def same_state(self, other: Snapshot) -> bool:
        return (self.accounts, self.events, self.tokens, self.journal, self.audit) == (
            other.accounts, other.events, other.tokens, other.journal, other.audit)

    @property
    def empty(self) -> bool:
        return not any(self.counts().values())


def copy_state(source: str, target: str) -> Snapshot:
    """Copy the live state at ``source`` into the empty state at ``target``; the verified copy."""
    source, target = resolve_url(source), resolve_url(target)
    if source == target:
        raise UsageError("the source and the target of a copy are the same state")
    from reconciler.adapters import agentstore_copy

    provider = open_provider(source)  # a bad source fails here, before the target is touched
    try:
        refuse_non_empty(target, read(target))
        agentstore_copy.refuse_non_empty(target, agentstore_copy.read(target))
        lock = provider.acquire_lock("convctl state copy", "copy", 600)
        try:
            snapshot = read(source)
            write(target, snapshot)
            copied = read(target)
            if not snapshot.same_state(copied):
                raise StateError(f"the copy in {redact_url(target)} does not read back as the "
                                 f"source: source {snapshot.counts()}, copy {copied.counts()}")
            queues = agentstore_copy.copy_queues(source, target)
        finally:
            provider.release_lock(lock.id)
    finally:
        provider.close()
    return replace(snapshot, agent_rows=queues.counts())


def refuse_non_empty(target: str, found: Snapshot) -> None:
    if not found.empty:
        held = ", ".join(f"{n} {what}" for what, n in found.counts().items() if n)
        raise StateError(f"the target state {redact_url(target)} is not empty ({held}); copy "
                         "only into a new, empty state")


def read(url: str) -> Snapshot:
    if is_postgres(url):
        from reconciler.adapters.state import postgres_snapshot

        return postgres_snapshot.read(url)
    if not state_file(url).exists():
        return Snapshot()  # a copy creates it; a failed one leaves nothing behind
    conn = _open(url)
    try:
        conn.execute("BEGIN")  # one read transaction: a consistent snapshot
        snapshot = _read_sqlite(conn)
        conn.execute("COMMIT")
        return snapshot
    except sqlite3.Error as exc:
        raise StateError(f"state {url}: {exc}") from exc
    finally:
        conn.close()


def write(url: str, snapshot: Snapshot) -> None:
    if is_postgres(url):
        from reconciler.adapters.state import postgres_snapshot

        postgres_snapshot.write(url, snapshot)
        return
    conn = _open(url)
    try:
        with immediate(conn):
            refuse_non_empty(url, _read_sqlite(conn))  # again, inside the writing transaction
            _write_sqlite(conn, snapshot)
    except sqlite3.Error as exc:
        raise StateError(f"state {url}: {exc}") from exc
    finally:
        conn.close()


def _open(url: str) -> sqlite3.Connection:
    open_provider(url).close()  # creates and migrates, with the usual folder checks
    conn = connect(state_file(url))
    conn.row_factory = sqlite3.Row
    return conn


def _read_sqlite(conn: sqlite3.Connection) -> Snapshot:
    accounts = [LiveAccount.model_validate({
        "name": r["name"], "spec": orjson.loads(r["spec"]), "labels": orjson.loads(r["labels"]),
        "version": r["version"], "updated_at": r["updated_at"]})
        for r in conn.execute("SELECT * FROM accounts ORDER BY name")]
    events = [LiveEvent.model_validate({
        **{k: v for k, v in dict(r).items() if k not in ("spec", "labels", "stage_count")},
        "spec": orjson.loads(r["spec"]), "labels": orjson.loads(r["labels"])})
        for r in conn.execute("SELECT * FROM events ORDER BY id")]
    tokens = [{**dict(r), "created_at": datetime.fromisoformat(r["created_at"]),
               "revoked_at": datetime.fromisoformat(r["revoked_at"]) if r["revoked_at"] else None}
              for r in conn.execute(f"SELECT {', '.join(TOKEN_FIELDS)} FROM tokens ORDER BY id")]
    journal = [{**dict(r), "at": datetime.fromisoformat(r["at"])} for r in conn.execute(
        f"SELECT {', '.join(JOURNAL_FIELDS)} FROM journal ORDER BY seq")]
    audit = [orjson.loads(r["body"]) for r in conn.execute("SELECT body FROM audit ORDER BY seq")]
    return Snapshot(accounts, events, tokens, journal, audit)


def _write_sqlite(conn: sqlite3.Connection, snapshot: Snapshot) -> None:
    def dump(data: Any) -> str:
        return orjson.dumps(data).decode()

    conn.executemany("INSERT INTO accounts (name, spec, labels, version, updated_at) "
                     "VALUES (?, ?, ?, ?, ?)", [
                         (a.name, dump(a.spec.model_dump(mode="json", by_alias=True)),
                          dump(a.labels), a.version, a.updated_at.isoformat())
                         for a in snapshot.accounts])
    conn.executemany(
        "INSERT INTO events (id, account, name, spec, labels, api, created_at, updated_at, "
        "version, managed_by, last_applied_hash, stage_count) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", [
            (e.id, e.account, e.name, dump(e.spec.model_dump(mode="json", by_alias=True)),
             dump(e.labels), e.api, e.created_at.isoformat(), e.updated_at.isoformat(),
             e.version, e.managed_by, e.last_applied_hash, e.stage_count)
            for e in snapshot.events])
    conn.executemany(f"INSERT INTO tokens ({', '.join(TOKEN_FIELDS)}) VALUES (?, ?, ?, ?, ?, ?)",
                     [(t["id"], t["name"], t["hash"], t["scopes"], t["created_at"].isoformat(),
                       t["revoked_at"].isoformat() if t["revoked_at"] else None)
                      for t in snapshot.tokens])
    conn.executemany(f"INSERT INTO journal ({', '.join(JOURNAL_FIELDS)}) VALUES "
                     "(?, ?, ?, ?, ?, ?)", [(*(j[k] for k in JOURNAL_FIELDS[:-1]),
                                             j["at"].isoformat()) for j in snapshot.journal])
    conn.executemany("INSERT INTO audit (body) VALUES (?)", [(dump(a),) for a in snapshot.audit])
