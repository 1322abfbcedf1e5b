"""The sync agent's durable stores, in the SQLite state file (schema steps 2 -> 3 -> 4 ... 10).

- ``inbox``: CRM events as received, unique by a dedup key; ``INSERT OR IGNORE`` acknowledges and
  drops duplicates. ``ingest`` commits before it returns: durable before acknowledged. Rows are
  processed in ``seq`` order, a chunk at a time, so what is processed is a prefix: one cursor
  (``agent_cursor``, the last processed ``seq``) says where it ends, moved in the transaction
  that queues the chunk's payloads (no status write per row). A row committed later always has
  a higher ``seq`` (writers are serialized), so it can never land behind the cursor.
- ``contacts``: the embedded contact source, upserted by (portal, contact id), merged
  (``agentstore_contacts``).
- ``outbox``: one row per (event_id, conversion event id), ``UNIQUE`` on the pair, so an
  inbox row processed twice (a crash before it was marked) never enqueues twice (R16); queued
  rows and dead letters are indexed by ``seq``, sent ones are not; each row names
  its ``destination`` (network) and ``target`` (the network's key: a Meta pixel, ...). States:
  ``queued`` -> ``sent`` | ``dead`` (a dead letter: ``reason`` code + ``last_error``).
- ``prune``: retention. Processed inbox rows and sent outbox rows older than the cut-off go;
  queued rows and dead letters stay. Safe for R16 as long as the cut-off is over 7 days back
  (``MIN_RETENTION_DAYS`` in ``services.agent``): an event re-delivered after its rows were
  pruned is too old to send and is dead-lettered ``too_old``, never sent twice.
- ``skips``: counters per (reason, conversion event); ``ingest_drops``: input fields dropped
  at ingest (an invalid IP address or user agent), by reason.
- the dashboard's activity reads (sends per minute, per-event counts, deliveries, dead letters
  grouped) are in ``agentstore_reads``; paused targets, holds, the match-key coverage buckets
  and the status counts in ``agentstore_controls`` (both mixed into ``AgentStore``).

Every write is one ``BEGIN IMMEDIATE`` transaction, committed with ``synchronous = FULL`` (on
disk before it returns) except two whose loss is harmless, committed with ``NORMAL`` (WAL: they
survive a kill -9 of the process, and only a power loss or OS crash can undo them, together
with every later one): ``commit_processed`` (undone, the inbox rows, durable since their
ingest, are processed again into the same outbox rows) and ``mark_sent`` (a lost mark only
re-sends an event under its same ``event_id``, which every network deduplicates). Outbox
payloads are stored as their final JSON, so a send concatenates them. Every ``sqlite3`` error
leaves as a ``reconciler.errors`` type. Nothing here logs, and no token or raw PII is ever
stored outside the contact and inbox bodies (which are the data itself).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from reconciler.adapters import agentcodec as codec
from reconciler.adapters import agentquality
from reconciler.adapters.agentcodec import InboxEvent
from reconciler.adapters.agentquality import DeadSelection, Replay
from reconciler.adapters.agentrows import (
    InboxRow,
    IngestResult,
    NewOutbox,
    OutboxRow,
    Queue,
)
from reconciler.adapters.agentstore_contacts import EmbeddedContactStore, chunks
from reconciler.adapters.agentstore_controls import CURSOR as _CURSOR
from reconciler.adapters.agentstore_controls import TargetControls
from reconciler.adapters.agentstore_controls import iso as _iso
from reconciler.adapters.agentstore_reads import ActivityReads
from reconciler.adapters.state import sqlite_schema
from reconciler.core.crm import Contact
from reconciler.errors import StateError, TransientError

Clock = Callable[[], datetime]


PRUNE_BATCH = 2000
_OUTBOX_COLS = ("seq, conversion_event_id, event_id, account, destination, target, event_name, "
                "event_time, CAST(payload AS BLOB), attempts, "
                "last_error IS NULL")  # the payload: the JSON's UTF-8 bytes
class AgentStore(ActivityReads, TargetControls, EmbeddedContactStore):
    """The agent's tables in one SQLite file; share one instance between threads freely."""

    def __init__(self, path: str | Path, clock: Clock | None = None) -> None:
        self.path = Path(path)
        self._clock = clock or (lambda: datetime.now(UTC))
        self._mutex = threading.RLock()
        self._coverage_pruned: int | None = None  # the hour old coverage buckets were dropped
        self._conn = sqlite_schema.connect(self.path)
        # Every commit waits for the disk unless a write says otherwise (``_write``): an
        # ingested event is on disk before the caller acknowledges it.
        with self._translate():
            self._conn.execute("PRAGMA synchronous = FULL")

    def close(self) -> None:
        with self._mutex, self._translate():
            self._conn.close()

    # -- ingest -----------------------------------------------------------------------------

    def ingest(self, items: Sequence[tuple[str, InboxEvent]],
               contacts: Sequence[Contact] = (),
               drops: Mapping[str, int] | None = None) -> IngestResult:
        """Store events (``(dedup key, event)``), contact upserts and the counts of input
        fields dropped by the parser (``drops``: reason -> count) in one committed
        transaction; already-known keys are counted as duplicates and dropped."""
        now = _iso(self._clock())
        with self._write() as conn:
            self._upsert_contacts(conn, contacts, now)
            if drops:
                conn.executemany("INSERT INTO ingest_drops (reason, count) VALUES (?, ?) "
                                 "ON CONFLICT (reason) DO UPDATE SET count = count + "
                                 "excluded.count", sorted(drops.items()))
            cur = conn.executemany(
                "INSERT OR IGNORE INTO inbox (dedup_key, kind, portal_id, body, received_at) "
                "VALUES (?, ?, ?, ?, ?)",
                [(key, codec.kind_of(event), event.portal_id, codec.encode_event(event), now)
                 for key, event in items])
            stored = max(cur.rowcount, 0)  # rows inserted (ignored duplicates not counted)
        return IngestResult(stored, len(items) - stored, len(contacts))

    # -- processing -------------------------------------------------------------------------

    def pending(self, limit: int) -> list[InboxRow]:
        """The oldest ``limit`` inbox rows not processed yet."""
        with self._read() as conn:
            rows = conn.execute(f"SELECT seq, kind, body FROM inbox WHERE seq > ({_CURSOR}) "
                                "ORDER BY seq LIMIT ?", (limit,)).fetchall()
        return [InboxRow(seq, codec.decode_event(kind, body)) for seq, kind, body in rows]

    def has_pending(self) -> bool:
        """Whether an inbox row waits to be processed (without claiming it)."""
        with self._read() as conn:
            row = conn.execute(f"SELECT EXISTS (SELECT 1 FROM inbox WHERE seq > ({_CURSOR}))"
                               ).fetchone()
        return bool(row[0])

    def release_claims(self, queue: Queue | None = None) -> None:
        """Nothing to give back: one writer at a time, the cursor says what is processed."""

    def known_event_ids(self, event_ids: Iterable[str]) -> set[str]:
        """Which of these event ids already have an outbox row (R16)."""
        ids = sorted(set(event_ids))
        known: set[str] = set()
        with self._read() as conn:
            for chunk in chunks(ids, 500):
                marks = ",".join("?" * len(chunk))
                rows = conn.execute(f"SELECT event_id FROM outbox WHERE event_id IN ({marks})",
                                    chunk)
                known.update(r[0] for r in rows)
        return known

    def commit_processed(self, seqs: Sequence[int], rows: Sequence[NewOutbox],
                         skips: Mapping[tuple[str, str], int]) -> int:
        """Atomically: enqueue ``rows`` (pairs already queued are ignored), add the skip counts
        and move the inbox cursor past the rows (``seqs``: a chunk from ``pending``). Returns
        how many outbox rows were new. Committed without waiting for the disk (see the module
        notes): the agent's processing does not wait on an fsync per chunk."""
        now = self._clock()
        stamp, epoch = _iso(now), now.timestamp()
        with self._write(durable=False) as conn:
            added = self._enqueue(conn, rows, stamp, epoch)
            for (reason, conversion_event_id), count in skips.items():
                conn.execute("INSERT INTO skips (reason, conversion_event_id, count) "
                             "VALUES (?, ?, ?) ON CONFLICT (reason, conversion_event_id) "
                             "DO UPDATE SET count = count + excluded.count",
                             (reason, conversion_event_id, count))
            if seqs:  # MAX: a second agent on the same file may have gone further already
                conn.execute("UPDATE agent_cursor SET seq = MAX(seq, ?) WHERE name = 'inbox'",
                             (max(seqs),))
        return added

    @staticmethod
    def _enqueue(conn: sqlite3.Connection, rows: Sequence[NewOutbox], stamp: str,
                 epoch: float) -> int:
        """Insert the rows in one statement; pairs already queued are ignored, not counted.
        The payload is only encoded: what is kept beside it comes with the row."""
        if not rows:
            return 0
        cur = conn.executemany(
            "INSERT OR IGNORE INTO outbox (conversion_event_id, event_id, account, destination, "
            "target, event_name, event_time, payload, status, attempts, next_attempt_at, "
            "reason, last_error, created_at, updated_at, key_mask) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?, ?, ?)",
            [(row.conversion_event_id, row.event_id, row.account, row.destination, row.target,
              row.event_name, row.event_time, orjson.dumps(row.payload).decode(), row.status,
              epoch, row.reason, row.error, stamp, stamp, row.key_mask) for row in rows])
        return max(cur.rowcount, 0)

    # -- delivery ---------------------------------------------------------------------------

    def due(self, now: float, limit: int, after_seq: int = 0,
            exclude: Collection[str] = ()) -> list[OutboxRow]:
        """Queued rows whose next attempt is due, oldest first, from ``after_seq`` on (so one
        pass pages through the due rows and sees each once), leaving out the targets in
        ``exclude`` (held off)."""
        skip, params = _excluding(exclude)
        with self._read() as conn:
            rows = conn.execute(f"SELECT {_OUTBOX_COLS} FROM outbox WHERE status = 'queued' "
                                f"AND next_attempt_at <= ? AND seq > ?{skip} ORDER BY seq "
                                "LIMIT ?", (now, after_seq, *params, limit)).fetchall()
        return [OutboxRow(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9],
                          bool(r[10])) for r in rows]

    def next_due(self, exclude: Collection[str] = ()) -> float | None:
        """When the earliest queued row is due (epoch seconds), or None; the targets in
        ``exclude`` (held off) left out."""
        skip, params = _excluding(exclude)
        with self._read() as conn:
            row = conn.execute("SELECT MIN(next_attempt_at) FROM outbox "
                               f"WHERE status = 'queued'{skip}", params).fetchone()
        return None if row[0] is None else float(row[0])

    def mark_sent(self, seqs: Sequence[int]) -> None:
        """The network accepted these rows. Committed without waiting for the disk (``synchronous =
        NORMAL``): in WAL mode that still survives a crash or kill -9 of the process, only a
        power loss or OS crash can lose the mark, and a lost mark means the rows are sent again
        under the same ``event_id``, which the network deduplicates. Ingest, reschedules and dead
        letters stay ``FULL``. The rows' key masks are counted into the match-key coverage
        of the current hour in the same transaction (``match_coverage``)."""
        self._set(seqs, "status = 'sent', attempts = attempts + 1, last_error = NULL", (),
                  durable=False, before=self._count_coverage)

    def reschedule(self, seqs: Sequence[int], next_attempt_at: float, error: str) -> None:
        self._set(seqs, "attempts = attempts + 1, next_attempt_at = ?, last_error = ?",
                  (next_attempt_at, error))

    def dead(self, seqs: Sequence[int], reason: str, error: str) -> None:
        self._set(seqs, "status = 'dead', reason = ?, last_error = ?", (reason, error))

    def _set(self, seqs: Sequence[int], assignments: str, params: tuple[Any, ...], *,
             durable: bool = True,
             before: Callable[[sqlite3.Connection, str, datetime], None] | None = None) -> None:
        if not seqs:
            return
        now = self._clock()
        ids = orjson.dumps(list(seqs)).decode()
        with self._write(durable=durable) as conn:
            if before is not None:
                before(conn, ids, now)
            conn.execute(f"UPDATE outbox SET {assignments}, updated_at = ? WHERE seq IN "
                         "(SELECT value FROM json_each(?)) AND status = 'queued'",
                         (*params, _iso(now), ids))

    def retry_dead(self, reason: str | None = None) -> int:
        """Queue dead letters again (only those with ``reason`` when given), due now."""
        now = self._clock()
        where, params = ("AND reason = ?", (reason,)) if reason else ("", ())
        with self._write() as conn:
            # last_error stays set: the row is no longer as queued (``OutboxRow.checked`` is
            # false), so delivery checks its payload in full again before sending it.
            cur = conn.execute(
                "UPDATE outbox SET status = 'queued', attempts = 0, reason = NULL, "
                "last_error = COALESCE(last_error, 'queued again'), "
                f"next_attempt_at = ?, updated_at = ? WHERE status = 'dead' {where}",
                (now.timestamp(), _iso(now), *params))
            return cur.rowcount

    # -- replay: dead letters chosen by reason, event and event time (``agent retry-dead``) --

    def replay_dead(self, selection: DeadSelection, oldest_sendable: agentquality.Oldest, *,
                    dry_run: bool = False, listed: int = 1000) -> Replay:
        """``agentquality.replay_dead`` in one write transaction (the counts and the update
        agree)."""
        with self._write() as conn:
            return agentquality.replay_dead(conn, selection, oldest_sendable, self._clock(),
                                            dry_run=dry_run, listed=listed)

    # -- retention --------------------------------------------------------------------------

    def prune(self, before: datetime, batch: int = PRUNE_BATCH) -> tuple[int, int]:
        """Delete processed inbox rows received before ``before`` and sent outbox rows last
        updated before it, ``batch`` rows per transaction (an ingest waits for one batch at
        most). Queued rows and dead letters are kept. Returns (inbox rows, outbox rows)."""
        stamp = _iso(before)
        inbox = self._prune(f"SELECT seq FROM inbox WHERE seq <= ({_CURSOR}) AND received_at "
                            "< ? ORDER BY seq LIMIT ?", "inbox", stamp, batch)
        outbox = self._prune("SELECT seq FROM outbox WHERE status = 'sent' AND updated_at < ? "
                             "ORDER BY seq LIMIT ?", "outbox", stamp, batch)
        return inbox, outbox

    def _prune(self, select: str, table: str, stamp: str, batch: int) -> int:
        total = 0
        while True:
            with self._write() as conn:
                done = conn.execute(f"DELETE FROM {table} WHERE seq IN ({select})",
                                    (stamp, batch)).rowcount
            total += done
            if done < batch:
                return total

    def copy_to(self, path: str | Path) -> None:
        """A consistent copy of the whole file at ``path`` (SQLite's online backup): what a
        dry run works on, so the store itself is left exactly as it was."""
        with self._mutex, self._translate():
            target = sqlite3.connect(path)
            try:
                self._conn.backup(target)
            finally:
                target.close()

    def pull_from(self, source: str | Path) -> None:
        """Copy in the inbox rows and contact updates that the store at ``source`` gained
        since (a dry run's copy keeping up with the store it was taken from, which is only
        read). Rows already here are kept: their seq and dedup key are unique."""
        with self._mutex, self._translate():
            self._conn.execute("ATTACH DATABASE ? AS source", (str(source),))
            try:
                with sqlite_schema.immediate(self._conn) as conn:
                    conn.execute("INSERT OR IGNORE INTO main.inbox SELECT * FROM source.inbox "
                                 "WHERE seq > (SELECT COALESCE(MAX(seq), 0) FROM main.inbox)")
                    conn.execute("INSERT INTO main.contacts SELECT * FROM source.contacts "
                                 "WHERE true ON CONFLICT (portal_id, contact_id) DO UPDATE SET "
                                 "body = excluded.body, updated_at = excluded.updated_at "
                                 "WHERE excluded.updated_at > contacts.updated_at")
            finally:
                self._conn.execute("DETACH DATABASE source")

    # -- transactions -----------------------------------------------------------------------

    @contextmanager
    def _translate(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.OperationalError as exc:
            if sqlite_schema.is_busy(exc):
                raise TransientError(f"agent store {self.path} is busy ({exc})") from exc
            raise StateError(f"agent store {self.path}: {exc}") from exc
        except sqlite3.Error as exc:
            raise StateError(f"agent store {self.path}: {exc}") from exc

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        with self._mutex, self._translate():
            yield self._conn

    @contextmanager
    def _write(self, *, durable: bool = True) -> Iterator[sqlite3.Connection]:
        """One ``BEGIN IMMEDIATE`` transaction. ``durable=False`` commits it with ``synchronous
        = NORMAL`` (WAL: atomic, survives a process crash, may be lost on power loss; the next
        ``FULL`` commit syncs it with its own), for writes whose loss is harmless."""
        with self._mutex, self._translate():
            if not durable:
                self._conn.execute("PRAGMA synchronous = NORMAL")
            try:
                with sqlite_schema.immediate(self._conn) as conn:
                    yield conn
            finally:
                if not durable:
                    self._conn.execute("PRAGMA synchronous = FULL")


def _excluding(targets: Collection[str]) -> tuple[str, tuple[str, ...]]:
    """A ``target NOT IN (...)`` condition and its parameters (none when nothing is held,
    so the usual query is the plain one)."""
    if not targets:
        return "", ()
    return (" AND target NOT IN (SELECT value FROM json_each(?))",
            (orjson.dumps(sorted(targets)).decode(),))
