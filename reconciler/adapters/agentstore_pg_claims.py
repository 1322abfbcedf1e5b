"""Claims held by a transaction, for the PostgreSQL agent store (``agentstore_pg``).

An agent's two halves (processing the inbox, delivering the outbox: they run at once, in two
threads) each keep one connection of their own. A half claims rows by locking them in that
connection's open transaction (``SELECT ... FOR UPDATE SKIP LOCKED``), settles them in the same
transaction and commits: the commit writes the settlements and frees every lock at once. So a
claim costs the server no row version and no index entry (only the lock in the row's header),
and:

- an agent that dies loses its connection: PostgreSQL rolls the transaction back and its rows
  are free at once;
- an agent alive but stalled sits "idle in transaction": the connection's
  ``idle_in_transaction_session_timeout`` is the lease (``lease_seconds``), after which the
  server ends the session and frees the rows; the stalled agent's next statement fails with
  ``StoreUnavailableError`` (it retries, and claims afresh). The database clock is the only one.

Which rows are claimed right now (for the counts and the idle checks of other agents) is read
without taking a lock: a locked row's ``xmax`` is its locker's transaction id, and a running
transaction holds a lock on its own id in ``pg_locks`` (``HELD``). Claims are never taken in a
subtransaction (no savepoints on these connections), so ``xmax`` is a plain transaction id.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

import psycopg
from psycopg.pq import TransactionStatus

from reconciler.adapters.state.postgres_db import Database
from reconciler.adapters.state.postgres_schema import Conn
from reconciler.errors import StateError, StoreUnavailableError

# A row locked by a running transaction (a live claim); pg_locks is read once per statement.
HELD: Final = ("(xmax::text::bigint = ANY(ARRAY(SELECT transactionid::text::bigint FROM pg_locks "
               "WHERE locktype = 'transactionid')))")


class ClaimTransaction:
    """One kept connection whose open transaction holds one half's claims; thread-safe."""

    def __init__(self, db: Database, lease_seconds: float) -> None:
        self._db = db
        self._timeout_ms = max(1, round(lease_seconds * 1000))
        self._conn: Conn | None = None
        self._mutex = threading.RLock()

    @property
    def is_open(self) -> bool:
        conn = self._conn
        return conn is not None and conn.info.transaction_status != TransactionStatus.IDLE

    @contextmanager
    def held(self) -> Iterator[Conn]:
        """The connection inside the claim transaction (begun when none is open). An error
        ends the transaction (its claims are given back); a lost connection (a restart, the
        lease ran out) raises ``StoreUnavailableError``."""
        with self._mutex, self._db.translate():
            conn = self._conn if self._conn is not None and self.is_open else self._begin()
            try:
                yield conn
            except psycopg.Error as exc:
                self._end_after(exc)
                raise
            except BaseException:
                self.rollback()
                raise

    def commit(self) -> None:
        """Write what was settled and free every claim."""
        with self._mutex, self._db.translate():
            if self._conn is not None and self.is_open:
                try:
                    self._conn.execute("COMMIT")
                except psycopg.Error as exc:
                    self._end_after(exc)
                    raise

    def rollback(self) -> None:
        """Free every claim, writing nothing; a broken connection has freed them already."""
        with self._mutex:
            if self._conn is not None and self.is_open:
                try:
                    self._conn.execute("ROLLBACK")
                except psycopg.Error:
                    self._discard()

    def close(self) -> None:
        with self._mutex:
            self._discard()

    def _begin(self) -> Conn:
        """BEGIN on the kept connection, on a new one when the kept one was lost while idle
        (it held no claim: nothing of this half is lost)."""
        for attempt in (1, 2):
            conn = self._connection()
            try:
                conn.execute("BEGIN")
                return conn
            except psycopg.Error:
                if not conn.broken or attempt == 2:
                    raise
                self._discard()
        raise AssertionError("unreachable")  # pragma: no cover

    def _connection(self) -> Conn:
        if self._conn is None or self._conn.closed:
            try:
                conn = self._db.connect()
            except StateError as exc:  # the server is away: the agent retries
                raise StoreUnavailableError(str(exc)) from exc
            # Claims and settlements whose loss in a database crash is harmless (the work is
            # redone under the same event ids) commit without waiting for the disk.
            conn.execute("SELECT set_config('idle_in_transaction_session_timeout', %s, false), "
                         "set_config('synchronous_commit', 'off', false)",
                         (f"{self._timeout_ms}ms",))
            self._conn = conn
        return self._conn

    def _end_after(self, exc: psycopg.Error) -> None:
        """After a failed statement: roll back (the claims are given back), or drop a broken
        connection and say so as a lost connection, which the agent retries."""
        conn = self._conn
        if conn is not None and not conn.broken:
            self.rollback()
            return
        self._discard()
        self._db.note_lost()  # the error says it; the pool's broken connections stay quiet
        raise StoreUnavailableError(
            f"lost the connection to the state database {self._db.shown} "
            f"({self._db.one_line(exc)}); this agent's claims went back to the others; "
            "retry") from exc

    def _discard(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()
