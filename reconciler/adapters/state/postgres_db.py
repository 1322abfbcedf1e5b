"""One door to a PostgreSQL state database: connecting, transactions, and its errors.

``Database(url)`` checks the URL, connects once directly (so a wrong password, a missing database
or an unreachable server is reported at once, in one line, with what to do), then serves
connections from a small ``psycopg_pool`` pool: ``run(work)`` runs ``work(conn)`` in one
transaction, committed on success, rolled back on any error, and runs it again on a fresh
connection when the server went away before the commit (a restart, a failover);
``transaction()`` is the same without the retry, for blocks that read or write in bulk.
Connections run in UTC with a ``lock_timeout``, so a stuck writer turns into an error instead
of a hang.

Every psycopg error leaves this module as a ``reconciler.errors`` type whose message names the
URL with its password redacted (``redact_url``), and never the password itself.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Final, TypeVar

import orjson
import psycopg
from psycopg import errors as pg_errors
from psycopg.conninfo import conninfo_to_dict
from psycopg.types.json import set_json_dumps
from psycopg_pool import ConnectionPool, PoolTimeout

from reconciler.adapters.state import redact_url
from reconciler.errors import ConflictError, StateError, StoreUnavailableError, UsageError

CONNECT_TIMEOUT_SECONDS: Final = 10
LOCK_TIMEOUT_SECONDS: Final = 30
POOL_SIZE: Final = 4
_HINTS: Final = (  # (what libpq says, what to do)
    ("password authentication failed", "check the password (in the URL, PGPASSWORD or "
                                       "~/.pgpass) and the user name"),
    ("no password supplied", "give the password in the URL, PGPASSWORD or ~/.pgpass"),
    ("does not exist", "create the database (createdb) or fix its name in --state / "
                       "CONVCTL_STATE"),
    ("connection refused", "start PostgreSQL or fix the host and port in --state / "
                           "CONVCTL_STATE"),
    ("timeout expired", "check that the host is reachable (firewall, host name)"),
    ("could not translate host name", "fix the host name in --state / CONVCTL_STATE"),
    ("failed to resolve host", "fix the host name in --state / CONVCTL_STATE"),
    ("no pg_hba.conf entry", "allow this client in the server's pg_hba.conf or set sslmode"),
    ("ssl", "check sslmode in the URL and the server's TLS settings"),
)
set_json_dumps(orjson.dumps)  # JSONB parameters: the fast codec the rest of convctl uses
# The pool logs each failed reconnection attempt; a command reports the failure itself, in one
# line, so without a configured logging handler (the CLI) these stay quiet. A server that
# configures logging still sees them.
logging.getLogger("psycopg").addHandler(logging.NullHandler())
# A process that logs (serve, agent run) hears of a lost connection once, in one line, from
# ``Database._check``, not once per reconnection attempt over several lines from the pool.
logging.getLogger("psycopg.pool").setLevel(logging.ERROR)
log = logging.getLogger("reconciler.state")


T = TypeVar("T")
RETRIES: Final = 3


@dataclass
class _Health:
    lost: bool = False
    lost_at: float = 0.0  # when (monotonic): connections made before are of the same outage


_HEALTH: dict[str, _Health] = {}


class _Lost(Exception):
    """The connection broke before the commit: the transaction is safe to run again."""


class Database:
    """A pool of connections to the state database at ``url``; safe to share between threads."""

    def __init__(self, url: str, *, pool_size: int = POOL_SIZE) -> None:
        self.url = url
        self.shown = redact_url(url)
        self._secret = _password(url)
        self._kwargs = self._connect_kwargs()
        self._pool: ConnectionPool | None = None
        self._pool_size = pool_size
        self._reached = False  # a direct connection worked: the pool's will too
        # A connection broke (a restart): logged once, until back, by every Database of this
        # process on the same URL (an agent has its store's and its state's).
        self._health = _HEALTH.setdefault(url, _Health())
        self._born: weakref.WeakKeyDictionary[psycopg.Connection[Any], float] = (
            weakref.WeakKeyDictionary())
        self._mutex = threading.Lock()

    def _connect_kwargs(self) -> dict[str, Any]:
        try:
            params = conninfo_to_dict(self.url)
        except psycopg.ProgrammingError as exc:
            raise UsageError(f"state URL {self.shown} is not a valid PostgreSQL URL "
                             f"({_one_line(self.scrub(str(exc)))}); use "
                             "postgresql://USER[:PASSWORD]@HOST[:PORT]/DB[?sslmode=...]") from exc
        params.setdefault("connect_timeout", CONNECT_TIMEOUT_SECONDS)
        params.setdefault("application_name", "convctl")
        return {**params, "autocommit": True}

    def connect(self) -> psycopg.Connection[Any]:
        """One new connection, configured; the caller closes it."""
        try:
            conn = psycopg.connect(**self._kwargs)
        except psycopg.Error as exc:
            raise self.cannot_connect(exc) from exc
        with self.translate():
            self._configure(conn)
        self._reached = True
        return conn

    @contextmanager
    def transaction(self) -> Iterator[psycopg.Connection[Any]]:
        """A pooled connection inside one transaction (committed unless the block raises)."""
        with self.translate(), self._connection() as conn, conn.transaction():
            yield conn

    @contextmanager
    def autocommit(self) -> Iterator[psycopg.Connection[Any]]:
        """A pooled connection outside a transaction: for one read-only statement, each its
        own snapshot (no BEGIN and COMMIT round trips)."""
        with self.translate(), self._connection() as conn:
            yield conn

    def run(self, work: Callable[[psycopg.Connection[Any]], T]) -> T:
        """``work(conn)`` in one transaction, run again on a fresh connection when the
        connection was lost before the commit (the server restarted or failed over: nothing of
        the lost attempt was committed). A connection lost during the commit is not retried:
        the change may or may not have been saved, and the error says so."""
        for attempt in range(1, RETRIES + 1):
            with self.translate():
                try:
                    return self._attempt(work)
                except _Lost as lost:
                    if attempt == RETRIES:
                        raise lost.__cause__ from None  # type: ignore[misc]
        raise AssertionError("unreachable")  # pragma: no cover

    def _attempt(self, work: Callable[[psycopg.Connection[Any]], T]) -> T:
        with self._connection() as conn:
            committing = False
            try:
                with conn.transaction():
                    result = work(conn)
                    committing = True
            except psycopg.OperationalError as exc:
                if not conn.broken:
                    raise
                if not committing:
                    raise _Lost from exc
                raise StoreUnavailableError(
                    f"lost the connection to the state database {self.shown} while "
                    "committing: the change may or may not have been saved; run `convctl plan` "
                    "to see") from exc
            return result

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[Any]]:
        pool = self._open_pool()
        try:
            with pool.connection() as conn:
                yield conn
        except PoolTimeout as exc:
            raise StoreUnavailableError(
                f"no connection to the state database {self.shown} within {pool.timeout:g}s "
                f"({self.scrub(str(exc))}); check that the server is up and accepts "
                "connections") from exc

    def _open_pool(self) -> ConnectionPool:
        with self._mutex:
            if self._pool is None:
                if not self._reached:  # a bad password or a missing database fails here, clearly
                    self.connect().close()
                self._pool = ConnectionPool(
                    kwargs=self._kwargs, min_size=1, max_size=self._pool_size, open=False,
                    configure=self._configure, check=self._check,
                    name="convctl-state", timeout=CONNECT_TIMEOUT_SECONDS * 3, num_workers=1)
                self._pool.open()
            return self._pool

    def _check(self, conn: psycopg.Connection[Any]) -> None:
        """The pool's check of a connection before lending it: a broken one (the server
        restarted) is logged once, in one line, then replaced."""
        try:
            ConnectionPool.check_connection(conn)
        except psycopg.Error as exc:
            if not self._health.lost and self._born.get(conn, 0.0) > self._health.lost_at:
                self.note_lost()
                log.warning("lost the connection to the state database %s (%s); reconnecting",
                            self.shown, _one_line(self.scrub(str(exc))))
            raise

    def note_lost(self) -> None:
        """A connection was lost (a restart): the connections made before stay quiet when the
        pool finds them broken too (one outage, one line: whoever noticed first said it)."""
        self._health.lost, self._health.lost_at = True, time.monotonic()

    def _configure(self, conn: psycopg.Connection[Any]) -> None:
        _configure(conn)
        self._born[conn] = time.monotonic()
        if self._health.lost:
            self._health.lost = False
            log.info("reconnected to the state database %s", self.shown)

    def close(self) -> None:
        with self._mutex:
            if self._pool is not None:
                self._pool.close()
                self._pool = None

    # -- errors -----------------------------------------------------------------------------

    def scrub(self, text: str) -> str:
        """``text`` without the password (libpq never echoes it; this makes sure)."""
        return text.replace(self._secret, "***") if self._secret else text

    def one_line(self, exc: BaseException) -> str:
        """The error's message on one line, without the password."""
        return _one_line(self.scrub(str(exc)))

    def cannot_connect(self, exc: psycopg.Error) -> StateError:
        reason = _one_line(self.scrub(str(exc)))
        hint = next((todo for said, todo in _HINTS if said in reason.lower()),
                    "check --state / CONVCTL_STATE and that the server is up")
        return StateError(f"cannot connect to the state database {self.shown}: {reason}; {hint}")

    @contextmanager
    def translate(self) -> Iterator[None]:
        """Turn psycopg errors raised by the block into ``reconciler.errors`` types."""
        try:
            yield
        except pg_errors.IntegrityError as exc:
            raise ConflictError(f"state database {self.shown} refused the write: "
                                f"{_one_line(self.scrub(str(exc)))}") from exc
        except pg_errors.LockNotAvailable as exc:
            raise StateError(f"state database {self.shown} is busy: another writer held a row "
                             f"for more than {LOCK_TIMEOUT_SECONDS}s; retry") from exc
        except psycopg.OperationalError as exc:
            raise StoreUnavailableError(
                f"lost the connection to the state database {self.shown} "
                f"({_one_line(self.scrub(str(exc)))}); retry the command") from exc
        except psycopg.Error as exc:
            raise StateError(f"state database {self.shown}: "
                             f"{_one_line(self.scrub(str(exc)))}") from exc


def _configure(conn: psycopg.Connection[Any]) -> None:
    conn.execute("SET TIME ZONE 'UTC'")
    conn.execute(f"SET lock_timeout = '{LOCK_TIMEOUT_SECONDS}s'")


def _password(url: str) -> str:
    try:
        return str(conninfo_to_dict(url).get("password") or "")
    except psycopg.Error:
        return ""


def _one_line(message: str) -> str:
    """libpq's multi-line messages as one line: the FATAL/ERROR part, else the first line."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    for line in lines:
        for marker in ("FATAL:", "ERROR:"):
            if marker in line:
                return line.split(marker, 1)[1].strip()
    text = "; ".join(lines) or "unknown error"
    return text.removeprefix("connection failed: ")
