"""The shared live state: a PostgreSQL database that several servers and commands use at once.

What SQLite's single writer gave for free is explicit here:

- the tier limit (R9): every event write first locks its account's row (``SELECT ... FOR
  UPDATE``), then counts the account's slots, then writes, in one transaction; so writers on
  different connections or servers queue on the account and no interleaving exceeds 50/100;
- the state lock is a lease whose times come from the database clock (``now()``), taken with
  one ``INSERT ... ON CONFLICT DO UPDATE ... WHERE expires_at <= now``: a dead holder's lease
  expires, and two servers can never both hold it;
- names are unique per account (a constraint) and versions are checked under the row lock.

A ``clock`` (tests) replaces the database clock. Specs are stored as JSONB in their manifest
form (aliases); listings are assembled as JSON by the server and validated in one call, each
row's text being its fingerprint. Connections, transactions (each operation is run again on a
fresh connection when the server went away before it committed) and errors: ``postgres_db``.
"""

from __future__ import annotations

import hashlib
import os
import socket
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from psycopg.types.json import Jsonb
from pydantic import TypeAdapter, ValidationError

from reconciler.adapters.state import _rules as rules
from reconciler.adapters.state._bulk import BULK_ROWS, bulk_gc
from reconciler.adapters.state.postgres_schema import LOCKS_ADVISORY_KEY, Conn, migrated
from reconciler.core.live import EventWrite, LiveAccount, LiveEvent
from reconciler.core.models import AccountSpec
from reconciler.core.provider import AuditRecord, LockInfo
from reconciler.core.write_rules import NetworkUse
from reconciler.errors import StateError

_EVENT_COLUMNS = ("id", "account", "name", "spec", "labels", "api", "created_at", "updated_at",
                  "version", "managed_by", "last_applied_hash", "stage_count")
_INSERT_EVENT = (f"INSERT INTO events ({', '.join(_EVENT_COLUMNS)}) "
                 f"VALUES ({', '.join(f'%({c})s' for c in _EVENT_COLUMNS)})")
_UPDATE_EVENT = ("UPDATE events SET "
                 + ", ".join(f"{c} = %({c})s" for c in _EVENT_COLUMNS
                             if c not in ("id", "account", "created_at"))
                 + " WHERE id = %(id)s")
EVENT_JSON = "SELECT json_build_object({})::text FROM events".format(", ".join(
    f"'{c}', {c}" for c in _EVENT_COLUMNS if c != "stage_count"))
_LOCK_COLUMNS = "id, holder, pid, host, operation, created_at, expires_at"
_ACCOUNT_COLUMNS = "name, spec, labels, version, updated_at"
_EVENTS_ADAPTER: TypeAdapter[list[LiveEvent]] = TypeAdapter(list[LiveEvent])


def _account(row: tuple[Any, ...]) -> LiveAccount:
    name, spec, labels, version, updated_at = row
    return LiveAccount.model_validate({"name": name, "spec": spec, "labels": labels,
                                       "version": version, "updated_at": updated_at})


def lock_from_row(row: tuple[Any, ...] | None) -> LockInfo | None:
    """A lock from its columns (``_LOCK_COLUMNS``, then optionally ``accounts``)."""
    if row is None:
        return None
    names = [*_LOCK_COLUMNS.split(", "), "accounts"][:len(row)]
    return LockInfo.model_validate(dict(zip(names, row, strict=True)))


class PostgresProvider:
    """A ``Provider`` over a PostgreSQL database (migrated on open); thread-safe."""

    def __init__(self, url: str, clock: rules.Clock | None = None) -> None:
        self.db = migrated(url)
        self._clock = clock

    # -- reads ------------------------------------------------------------------------------

    def list_accounts(self) -> list[LiveAccount]:
        def work(conn: Conn) -> list[LiveAccount]:
            rows = conn.execute(f"SELECT {_ACCOUNT_COLUMNS} FROM accounts ORDER BY name")
            return [_account(row) for row in rows.fetchall()]

        return self.db.run(work)

    def list_events(self, account: str | None = None) -> list[LiveEvent]:
        def work(conn: Conn) -> list[str]:
            if account is None:
                cur = conn.execute(f"{EVENT_JSON} ORDER BY account, name")
            else:
                cur = conn.execute(f"{EVENT_JSON} WHERE account = %s ORDER BY name", (account,))
            return [row[0] for row in cur.fetchall()]

        texts = self.db.run(work)
        with bulk_gc(len(texts)):
            return self.parse_events(texts)

    def get_event(self, event_id: str) -> LiveEvent:
        row = self.db.run(lambda conn: conn.execute(f"{EVENT_JSON} WHERE id = %s",
                                                    (event_id,)).fetchone())
        if row is None:
            raise rules.unknown_event(event_id)
        return self.parse_events([row[0]])[0]

    def parse_events(self, texts: list[str]) -> list[LiveEvent]:
        """Event rows selected as ``EVENT_JSON`` texts, validated in one call."""
        events: list[LiveEvent] = []
        try:
            for start in range(0, len(texts), BULK_ROWS):
                chunk = ",".join(texts[start:start + BULK_ROWS])
                events.extend(_EVENTS_ADAPTER.validate_json(f"[{chunk}]"))
        except ValidationError as exc:
            raise StateError(f"state database {self.db.shown} holds an event this version cannot "
                             f"read ({exc.error_count()} problem(s), first: "
                             f"{exc.errors()[0]['msg']})") from exc
        for event, text in zip(events, texts, strict=True):
            event.remember_fingerprint(hashlib.sha256(text.encode()).hexdigest())
        return events

    # -- writes -----------------------------------------------------------------------------

    def put_account(self, name: str, spec: AccountSpec, labels: dict[str, str],
                    expected_version: int | None) -> LiveAccount:
        rules.check_account_rules(name, spec, labels)

        def work(conn: Conn) -> LiveAccount:
            old = self._find_account(conn, name, lock=True)
            rules.check_account_version(name, expected_version, old.version if old else None)
            if old is not None:
                rules.check_tier_change(name, old.spec, spec, self._used(conn, name))
                rules.check_account_networks(name, spec, lambda: self._network_uses(conn, name))
            account = LiveAccount(name=name, spec=spec, labels=dict(labels),
                                  version=old.version + 1 if old else 1, updated_at=self._now(conn))
            params = (name, Jsonb(spec.model_dump(mode="json", by_alias=True)),
                      Jsonb(account.labels), account.version, account.updated_at)
            if old is None:
                conn.execute(f"INSERT INTO accounts ({_ACCOUNT_COLUMNS}) VALUES "
                             "(%s, %s, %s, %s, %s)", params)
            else:
                conn.execute("UPDATE accounts SET spec = %s, labels = %s, version = %s, "
                             "updated_at = %s WHERE name = %s", (*params[1:], name))
            return account

        return self.db.run(work)

    def create_event(self, event: EventWrite) -> LiveEvent:
        def work(conn: Conn) -> LiveEvent:
            rules.check_write(event)
            account = self._locked_account(conn, event.account)
            rules.check_event_rules(account, event)
            self._check_name_free(conn, event.account, event.name, None)
            used = self._used(conn, event.account)
            rules.check_quota(account, used, used + event.stage_count)
            created = rules.new_event(rules.new_event_id(), event, self._now(conn))
            conn.execute(_INSERT_EVENT, _event_params(created))
            return created

        return self.db.run(work)

    def update_event(self, event_id: str, event: EventWrite, expected_version: int) -> LiveEvent:
        def work(conn: Conn) -> LiveEvent:
            account = self._locked_account(conn, self._event(conn, event_id).account)
            old = self._event(conn, event_id, lock=True)  # after the account: one lock order
            rules.check_event_version(old, expected_version)
            rules.check_same_account(old, event)
            rules.check_write(event)
            rules.check_event_rules(account, event, old)
            self._check_name_free(conn, event.account, event.name, event_id)
            used = self._used(conn, event.account)
            rules.check_quota(account, used, used - old.stage_count + event.stage_count)
            new = rules.updated_event(old, event, self._now(conn))
            conn.execute(_UPDATE_EVENT, _event_params(new))
            return new

        return self.db.run(work)

    def delete_event(self, event_id: str, expected_version: int | None = None) -> None:
        def work(conn: Conn) -> None:
            rules.check_event_version(self._event(conn, event_id, lock=True), expected_version)
            conn.execute("DELETE FROM events WHERE id = %s", (event_id,))

        self.db.run(work)

    # -- lock -------------------------------------------------------------------------------

    def acquire_lock(self, holder: str, operation: str, ttl_seconds: float, *,
                     pid: int | None = None, host: str | None = None,
                     accounts: Sequence[str] | None = None) -> LockInfo:
        def work(conn: Conn) -> LockInfo:
            now = self._locking(conn)
            for old in rules.taken_over(self._stored_locks(conn), accounts, now):
                conn.execute("DELETE FROM locks WHERE id = %s", (old,))
                conn.execute("DELETE FROM account_locks WHERE id = %s", (old,))
            lock = rules.new_lock(holder, operation, ttl_seconds, now,
                                  os.getpid() if pid is None else pid,
                                  host or socket.gethostname(), accounts)
            values = (lock.id, lock.holder, lock.pid, lock.host, lock.operation,
                      lock.created_at, lock.expires_at)
            if lock.accounts is None:
                conn.execute(f"INSERT INTO locks (slot, {_LOCK_COLUMNS}) VALUES "
                             "(1, %s, %s, %s, %s, %s, %s, %s)", values)
            else:
                conn.execute(f"INSERT INTO account_locks ({_LOCK_COLUMNS}, accounts) VALUES "
                             "(%s, %s, %s, %s, %s, %s, %s, %s)",
                             (*values, Jsonb(list(lock.accounts))))
            return lock

        return self.db.run(work)

    def renew_lock(self, lock_id: str, ttl_seconds: float) -> LockInfo:
        """Extend the lease ``lock_id`` to ``ttl_seconds`` from now (database clock), also
        when it expired and nobody took it; ``NotFoundError`` when it is gone or taken over."""
        def work(conn: Conn) -> LockInfo:
            now = self._locking(conn)
            renewed = rules.renewed_in(self._stored_locks(conn), lock_id, ttl_seconds, now)
            table = "locks" if renewed.accounts is None else "account_locks"
            conn.execute(f"UPDATE {table} SET expires_at = %s WHERE id = %s",
                         (renewed.expires_at, lock_id))
            return renewed

        return self.db.run(work)

    def release_lock(self, lock_id: str) -> None:
        def work(conn: Conn) -> None:
            now = self._locking(conn)
            gone = (conn.execute("DELETE FROM locks WHERE id = %s", (lock_id,)).rowcount
                    + conn.execute("DELETE FROM account_locks WHERE id = %s",
                                   (lock_id,)).rowcount)
            if not gone:
                live = rules.live_locks(self._stored_locks(conn), now)
                raise rules.no_such_lock(lock_id, rules.main_lock(live))

        self.db.run(work)

    def current_lock(self) -> LockInfo | None:
        return rules.main_lock(self.current_locks())

    def current_locks(self) -> list[LockInfo]:
        def work(conn: Conn) -> list[LockInfo]:
            return rules.live_locks(self._stored_locks(conn), self._now(conn))

        return self.db.run(work)

    # -- journal ----------------------------------------------------------------------------

    def record_step(self, run_id: str, index: int, description: str, status: str,
                    detail: str = "") -> None:
        def work(conn: Conn) -> None:
            conn.execute("INSERT INTO journal (run_id, idx, description, status, detail, at) "
                         "VALUES (%s, %s, %s, %s, %s, %s)",
                         (run_id, index, description, status, detail, self._now(conn)))

        self.db.run(work)

    def journal(self, run_id: str) -> list[dict[str, Any]]:
        rows = self.db.run(lambda conn: conn.execute(
            "SELECT run_id, idx, description, status, detail, at FROM journal WHERE run_id = %s "
            "ORDER BY seq", (run_id,)).fetchall())
        return [rules.journal_entry(*row) for row in rows]

    def runs(self, limit: int = 20) -> list[dict[str, Any]]:
        rows = self.db.run(lambda conn: conn.execute(
            "SELECT run_id, idx, description, status, detail, at FROM journal WHERE run_id IN "
            "(SELECT run_id FROM journal GROUP BY run_id ORDER BY MAX(seq) DESC LIMIT %s) "
            "ORDER BY seq", (limit,)).fetchall())
        return rules.run_summaries([rules.journal_entry(*row) for row in rows])

    def close(self) -> None:
        self.db.close()

    # -- helpers (run inside a transaction) -------------------------------------------------

    def _now(self, conn: Conn) -> datetime:
        """The time of this transaction: the database clock, unless a clock was given."""
        if self._clock is not None:
            return self._clock()
        row = conn.execute("SELECT now()").fetchone()
        assert row is not None
        return row[0]  # type: ignore[no-any-return]

    def _find_account(self, conn: Conn, name: str, *, lock: bool = False) -> LiveAccount | None:
        row = conn.execute(f"SELECT {_ACCOUNT_COLUMNS} FROM accounts WHERE name = %s"
                           + (" FOR UPDATE" if lock else ""), (name,)).fetchone()
        return _account(row) if row is not None else None

    def _locked_account(self, conn: Conn, name: str) -> LiveAccount:
        """The account, its row locked until commit: event writes of one account queue here."""
        account = self._find_account(conn, name, lock=True)
        if account is None:
            raise rules.unknown_account(name)
        return account

    def _event(self, conn: Conn, event_id: str, *, lock: bool = False) -> LiveEvent:
        row = conn.execute(f"{EVENT_JSON} WHERE id = %s" + (" FOR UPDATE" if lock else ""),
                           (event_id,)).fetchone()
        if row is None:
            raise rules.unknown_event(event_id)
        return _EVENTS_ADAPTER.validate_json(f"[{row[0]}]")[0]

    def _used(self, conn: Conn, account: str) -> int:
        row = conn.execute("SELECT COALESCE(SUM(stage_count), 0) FROM events WHERE account = %s",
                           (account,)).fetchone()
        return int(row[0]) if row else 0

    def _network_uses(self, conn: Conn, account: str) -> list[NetworkUse]:
        rows = conn.execute("SELECT COALESCE(spec->>'network', 'meta'), MIN(name), COUNT(*) "
                            "FROM events WHERE account = %s GROUP BY 1", (account,)).fetchall()
        return [NetworkUse(*row) for row in rows]

    def _check_name_free(self, conn: Conn, account: str, name: str, own_id: str | None) -> None:
        row = conn.execute("SELECT id FROM events WHERE account = %s AND name = %s AND id IS "
                           "DISTINCT FROM %s", (account, name, own_id)).fetchone()
        if row is not None:
            raise rules.name_clash(account, name, row[0])

    # -- audit ------------------------------------------------------------------------------

    def record_audit(self, record: AuditRecord) -> None:
        self.db.run(lambda conn: conn.execute("INSERT INTO audit (body) VALUES (%s)",
                                              (Jsonb(record.model_dump(mode="json")),)))

    def audit_log(self, limit: int = 100) -> list[AuditRecord]:
        rows = self.db.run(lambda conn: conn.execute(
            "SELECT body FROM audit ORDER BY seq DESC LIMIT %s", (limit,)).fetchall())
        return [AuditRecord.model_validate(row[0]) for row in rows]

    def _locking(self, conn: Conn) -> datetime:
        """Serialize lock changes (a transaction-scoped advisory lock); the time now."""
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCKS_ADVISORY_KEY,))
        return self._now(conn)

    def _stored_locks(self, conn: Conn) -> list[LockInfo]:
        """Every lock row, expired or not: the whole-state one and the account locks."""
        rows = conn.execute(f"SELECT {_LOCK_COLUMNS}, NULL::jsonb FROM locks UNION ALL "
                            f"SELECT {_LOCK_COLUMNS}, accounts FROM account_locks").fetchall()
        return [lock for row in rows if (lock := lock_from_row(row)) is not None]


def _event_params(event: LiveEvent) -> dict[str, Any]:
    return {"id": event.id, "account": event.account, "name": event.name,
            "spec": Jsonb(event.spec.model_dump(mode="json", by_alias=True)),
            "labels": Jsonb(event.labels), "api": event.api, "created_at": event.created_at,
            "updated_at": event.updated_at, "version": event.version,
            "managed_by": event.managed_by, "last_applied_hash": event.last_applied_hash,
            "stage_count": event.stage_count}

