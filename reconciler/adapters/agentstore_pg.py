"""The sync agent's stores in a shared PostgreSQL database: several agents at once.

The SQLite store's cursor relies on "a row committed later has a higher seq", which is false
here (sequence order is not commit order). So work is **claimed** and **acknowledged**, each
claim held by a transaction (``agentstore_pg_claims``): the processing half and the delivery
half each keep a connection whose open transaction locks the rows they took.

- ``pending`` locks the oldest unprocessed inbox rows no one holds (``FOR UPDATE SKIP
  LOCKED``), so two agents never hold one row and nothing is skipped; ``commit_processed``
  queues the chunk's payloads and marks its rows processed in that same transaction, and
  commits. An agent killed in between loses its connection and PostgreSQL frees its rows at
  once; a stalled one's are freed after ``lease_seconds`` (the connection's idle-in-transaction
  timeout). The Meta ``event_id`` is derived from the CRM event alone and the outbox is unique
  on (event_id, conversion event), so a row processed twice (a stalled agent coming back) never
  queues twice (R16).
- ``due`` locks queued outbox rows the same way, a page at a time; ``mark_sent`` /
  ``reschedule`` / ``dead`` settle them in the page's transaction, committed with the next page
  (``due``) or when delivery gives its claims back (``release_claims``): a page is settled in
  one commit, so no row of it is free to another agent while it is being sent. A row held by an
  agent that died is sent again by another, under its same ``event_id`` (Meta deduplicates).
- ``release_claims`` gives back at once what this store holds and did not settle.

Contacts, skips, dropped fields, paused targets, holds, dead letters and retention are as on
SQLite (``adapters.agentstore``); pauses, holds and the counts are in ``agentstore_pg_views``;
match-key coverage (counted as rows are marked sent), dead-letter replay and the dashboard's
activity reads in ``agentstore_pg_reads``.
Writes whose loss is harmless (claims, ``commit_processed``, ``mark_sent``) commit with
``synchronous_commit = off``, like SQLite's ``NORMAL``. A lost connection or a restarting
server raises ``StoreUnavailableError`` (a running agent retries).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from typing import Any, Final

import orjson

from reconciler.adapters import agentcodec as codec
from reconciler.adapters.agentcodec import InboxEvent
from reconciler.adapters.agentrows import InboxRow, IngestResult, NewOutbox, OutboxRow, Queue
from reconciler.adapters.agentstore_pg_claims import HELD, ClaimTransaction
from reconciler.adapters.agentstore_pg_reads import CoverageReplayAndActivity
from reconciler.adapters.agentstore_pg_views import PausesHoldsAndCounts
from reconciler.adapters.state.postgres_schema import Conn, migrated
from reconciler.core.crm import Contact, merge_contacts
from reconciler.errors import ConvctlError

Clock = Callable[[], datetime]
DEFAULT_LEASE_SECONDS: Final = 60.0
PRUNE_BATCH: Final = 2000
_CONTACTS_LOCK: Final = 0x636F6E74  # "cont": contact merges one at a time (read, merge, write)
_OUTBOX_COLS = ("seq, conversion_event_id, event_id, account, destination, target, event_name, "
                "event_time, payload, attempts, last_error IS NULL")
_CLAIM_INBOX = ("SELECT seq, kind, body FROM agent_inbox WHERE processed_at IS NULL "
                "ORDER BY seq LIMIT %(limit)s FOR UPDATE SKIP LOCKED")
_CLAIM_DUE = (f"SELECT {_OUTBOX_COLS} FROM agent_outbox WHERE status = 'queued' "
              "AND next_attempt_at <= %(now)s AND seq > %(after)s "
              "AND NOT (target = ANY(%(exclude)s::text[])) "
              "ORDER BY seq LIMIT %(limit)s FOR UPDATE SKIP LOCKED")
# Rows go in as arrays in binary form (%b): the text form escapes every element.
_ENQUEUE = ("INSERT INTO agent_outbox (conversion_event_id, event_id, account, destination, "
            "target, event_name, event_time, payload, status, next_attempt_at, reason, "
            "last_error, key_mask, created_at, updated_at) SELECT u.*, %s, %s FROM unnest("
            "%b::text[], %b::text[], %b::text[], %b::text[], %b::text[], %b::text[], "
            "%b::bigint[], %b::text[], %b::text[], %b::float8[], %b::text[], %b::text[], "
            "%b::int4[]) AS u ON CONFLICT (event_id, conversion_event_id) DO NOTHING")


class PostgresAgentStore(PausesHoldsAndCounts, CoverageReplayAndActivity):
    """The agent's tables in a PostgreSQL database (migrated on open); thread-safe.
    ``lease_seconds`` is how long a claim of a stalled agent lasts at most."""

    def __init__(self, url: str, clock: Clock | None = None, *,
                 lease_seconds: float = DEFAULT_LEASE_SECONDS) -> None:
        self.db = migrated(url)
        self.url = self.db.shown
        self._clock = clock or (lambda: datetime.now(UTC))
        self.lease_seconds = lease_seconds
        self._claims: dict[Queue, ClaimTransaction] = {
            queue: ClaimTransaction(self.db, lease_seconds) for queue in ("inbox", "outbox")}

    def close(self) -> None:
        """Give back the claims (what was settled is committed: a lost connection has given
        them back already) and close the connections."""
        with suppress(ConvctlError):
            self.release_claims()
        for claims in self._claims.values():
            claims.close()
        self.db.close()

    # -- ingest and contacts ----------------------------------------------------------------

    def ingest(self, items: Sequence[tuple[str, InboxEvent]], contacts: Sequence[Contact] = (),
               drops: Mapping[str, int] | None = None) -> IngestResult:
        """Store events (``(dedup key, event)``), contact upserts and dropped-field counts in
        one committed transaction; known keys are counted as duplicates and dropped."""
        now = self._clock()
        with self.db.transaction() as conn:
            self._upsert_contacts(conn, contacts, now)
            if drops:
                reasons, counts = zip(*sorted(drops.items()), strict=True)
                conn.execute("INSERT INTO agent_ingest_drops (reason, count) SELECT * FROM "
                             "unnest(%s::text[], %s::bigint[]) ON CONFLICT (reason) DO UPDATE "
                             "SET count = agent_ingest_drops.count + excluded.count",
                             (list(reasons), list(counts)))
            stored = 0
            if items:
                cur = conn.execute(
                    "INSERT INTO agent_inbox (dedup_key, kind, portal_id, body, received_at) "
                    "SELECT u.*, %s FROM unnest(%b::text[], %b::text[], %b::bigint[], "
                    "%b::text[]) AS u ON CONFLICT (dedup_key) DO NOTHING",
                    (now, [key for key, _ in items], [codec.kind_of(e) for _, e in items],
                     [e.portal_id for _, e in items], [codec.encode_event(e) for _, e in items]))
                stored = max(cur.rowcount, 0)
        return IngestResult(stored, len(items) - stored, len(contacts))

    def upsert_contacts(self, contacts: Iterable[Contact]) -> int:
        items = list(contacts)
        with self.db.transaction() as conn:
            self._upsert_contacts(conn, items, self._clock())
        return len(items)

    @staticmethod
    def _upsert_contacts(conn: Conn, contacts: Sequence[Contact], now: datetime) -> None:
        """Merge each contact into its stored version (later updates win) under one
        transaction-scoped lock, so concurrent ingests never lose each other's fields."""
        if not contacts:
            return
        merged = merge_contacts(contacts)
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_CONTACTS_LOCK,))
        keys = sorted(merged)
        stored = conn.execute(
            "SELECT c.portal_id, c.contact_id, c.body FROM agent_contacts c JOIN unnest("
            "%b::bigint[], %b::text[]) AS k(p, i) ON c.portal_id = k.p AND c.contact_id = k.i",
            ([p for p, _ in keys], [c for _, c in keys])).fetchall()
        for portal, cid, body in stored:
            merged[(portal, cid)] = codec.decode_contact(portal, cid, body).merged(
                merged[(portal, cid)])
        conn.execute("INSERT INTO agent_contacts (portal_id, contact_id, body, updated_at) "
                     "SELECT u.*, %s FROM unnest(%b::bigint[], %b::text[], %b::text[]) AS u "
                     "ON CONFLICT (portal_id, contact_id) DO UPDATE SET body = excluded.body, "
                     "updated_at = excluded.updated_at",
                     (now, [p for p, _ in keys], [c for _, c in keys],
                      [codec.encode_contact(merged[k]) for k in keys]))

    def contacts(self, portal_id: int, contact_ids: Iterable[str]) -> dict[str, Contact]:
        ids = sorted(set(contact_ids))
        if not ids:
            return {}
        with self.db.autocommit() as conn:
            rows = conn.execute("SELECT contact_id, body FROM agent_contacts WHERE portal_id = %s "
                                "AND contact_id = ANY(%b::text[])", (portal_id, ids)).fetchall()
        return {cid: codec.decode_contact(portal_id, cid, body) for cid, body in rows}

    # -- processing: claim, acknowledge -----------------------------------------------------

    def pending(self, limit: int) -> list[InboxRow]:
        """Claim up to ``limit`` unprocessed inbox rows no other store holds, oldest first
        (this store's own unsettled claims again among them)."""
        claims = self._claims["inbox"]
        with claims.held() as conn:
            rows = conn.execute(_CLAIM_INBOX, {"limit": limit}).fetchall()
        if not rows:
            claims.rollback()  # an idle agent never sits in a transaction
        return [InboxRow(seq, codec.decode_event(kind, body)) for seq, kind, body in sorted(rows)]

    def has_pending(self) -> bool:
        with self.db.autocommit() as conn:
            row = conn.execute("SELECT EXISTS (SELECT 1 FROM agent_inbox WHERE processed_at IS "
                               f"NULL AND NOT {HELD})").fetchone()
        return bool(row and row[0])

    def known_event_ids(self, event_ids: Iterable[str]) -> set[str]:
        ids = sorted(set(event_ids))
        if not ids:
            return set()
        with self.db.autocommit() as conn:
            rows = conn.execute("SELECT event_id FROM agent_outbox WHERE event_id = "
                                "ANY(%b::text[])", (ids,)).fetchall()
        return {r[0] for r in rows}

    def commit_processed(self, seqs: Sequence[int], rows: Sequence[NewOutbox],
                         skips: Mapping[tuple[str, str], int]) -> int:
        """Queue ``rows`` (pairs already queued ignored), add the skip counts and mark the
        claimed inbox rows ``seqs`` processed, in the claims' transaction, and commit it; how
        many rows were new."""
        now = self._clock()
        claims = self._claims["inbox"]
        with claims.held() as conn:
            added = self._enqueue(conn, rows, now) if rows else 0
            if skips:
                keys = sorted(skips)  # one lock order: concurrent commits never deadlock
                conn.execute("INSERT INTO agent_skips (reason, conversion_event_id, count) "
                             "SELECT * FROM unnest(%s::text[], %s::text[], %s::bigint[]) ON "
                             "CONFLICT (reason, conversion_event_id) DO UPDATE SET count = "
                             "agent_skips.count + excluded.count",
                             ([r for r, _ in keys], [c for _, c in keys], [skips[k] for k in keys]))
            if seqs:
                conn.execute("UPDATE agent_inbox SET processed_at = now() "
                             "WHERE seq = ANY(%b::bigint[]) AND processed_at IS NULL",
                             (list(seqs),))
        claims.commit()
        return added

    @staticmethod
    def _enqueue(conn: Conn, rows: Sequence[NewOutbox], now: datetime) -> int:
        """The rows (not none) as one array per column (``zip(*rows)`` turns them over in C:
        0.2 us a row where a loop appending to each column took 1.0)."""
        columns: list[list[Any]] = [list(c) for c in zip(*rows, strict=True)]
        (event, event_id, account, destination, target, name, event_time, mask, payloads,
         status, reason, error) = columns
        payloads = [orjson.dumps(payload).decode() for payload in payloads]
        cur = conn.execute(_ENQUEUE, (now, now, event, event_id, account, destination, target,
                                      name, event_time, payloads, status,
                                      [now.timestamp()] * len(rows), reason, error, mask))
        return max(cur.rowcount, 0)

    def release_claims(self, queue: Queue | None = None) -> None:
        """Give back the rows this store holds and did not settle, of ``queue`` (``inbox``,
        ``outbox``) or of both; what was settled in the meantime is committed."""
        for name in (queue,) if queue else ("inbox", "outbox"):
            self._claims[name].commit()

    # -- delivery ---------------------------------------------------------------------------

    def due(self, now: float, limit: int, after_seq: int = 0,
            exclude: Collection[str] = ()) -> list[OutboxRow]:
        """Claim queued rows due at ``now`` that no other store holds, oldest first, after
        ``after_seq``, the targets in ``exclude`` left out: the next page. What was settled of
        the page before is committed first (its unsettled rows are given back)."""
        claims = self._claims["outbox"]
        claims.commit()
        with claims.held() as conn:
            rows = conn.execute(_CLAIM_DUE, {"now": now, "after": after_seq,
                                             "exclude": sorted(exclude), "limit": limit}).fetchall()
        if not rows:
            claims.commit()
        return [OutboxRow(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8].encode(), r[9],
                          bool(r[10])) for r in sorted(rows)]

    def next_due(self, exclude: Collection[str] = ()) -> float | None:
        """When the earliest queued row can be sent (one another store holds: once a lease
        from now has passed, at the latest when it comes back)."""
        with self.db.autocommit() as conn:
            row = conn.execute(
                f"SELECT MIN(CASE WHEN {HELD} THEN GREATEST(next_attempt_at, "
                "extract(epoch FROM now())::float8 + %s) ELSE next_attempt_at END) "
                "FROM agent_outbox WHERE status = 'queued' AND NOT (target = ANY(%s::text[]))",
                (self.lease_seconds, sorted(exclude))).fetchone()
        return None if row is None or row[0] is None else float(row[0])

    def mark_sent(self, seqs: Sequence[int]) -> None:
        """The network accepted these rows: settled and counted into the match-key coverage in one
        statement (``agentstore_pg_reads``), in the page's transaction (``_settling``)."""
        if not seqs:
            return
        with self._settling() as conn:
            self._mark_sent_counted(conn, seqs, "status = 'sent', attempts = attempts + 1, "
                                                "last_error = NULL")

    def reschedule(self, seqs: Sequence[int], next_attempt_at: float, error: str) -> None:
        if not seqs:
            return
        with self._settling(durable=True) as conn:
            conn.execute("UPDATE agent_outbox SET attempts = attempts + 1, next_attempt_at = %s, "
                         "last_error = %s, updated_at = %s WHERE seq = ANY(%b::bigint[]) "
                         "AND status = 'queued'",
                         (next_attempt_at, error, self._clock(), list(seqs)))

    def dead(self, seqs: Sequence[int], reason: str, error: str) -> None:
        if not seqs:
            return
        with self._settling(durable=True) as conn:
            conn.execute("UPDATE agent_outbox SET status = 'dead', reason = %s, last_error = %s, "
                         "updated_at = %s WHERE seq = ANY(%b::bigint[]) AND status = 'queued'",
                         (reason, error, self._clock(), list(seqs)))

    @contextmanager
    def _settling(self, *, durable: bool = False) -> Iterator[Conn]:
        """The outbox claims' transaction: the page's, committed with it (the next ``due`` or
        ``release_claims``), or one of its own, committed here. ``durable``: its commit waits
        for the disk (dead letters and retries are not redone silently)."""
        claims = self._claims["outbox"]
        own = not claims.is_open
        with claims.held() as conn:
            if durable:
                conn.execute("SET LOCAL synchronous_commit = on")
            yield conn
        if own:
            claims.commit()

    def retry_dead(self, reason: str | None = None) -> int:
        """Queue dead letters again (only those with ``reason`` when given), due now."""
        now = self._clock()
        where, params = ("AND reason = %s", (reason,)) if reason else ("", ())
        with self.db.transaction() as conn:
            cur = conn.execute(
                "UPDATE agent_outbox SET status = 'queued', attempts = 0, reason = NULL, "
                "last_error = COALESCE(last_error, 'queued again'), next_attempt_at = %s, "
                f"updated_at = %s WHERE status = 'dead' {where}",
                (now.timestamp(), now, *params))
            return max(cur.rowcount, 0)

    # -- retention --------------------------------------------------------------------------

    def prune(self, before: datetime, batch: int = PRUNE_BATCH) -> tuple[int, int]:
        """Delete processed inbox rows received before ``before`` and sent outbox rows last
        updated before it, ``batch`` rows per transaction; queued rows and dead letters stay."""
        inbox = self._prune("agent_inbox", "processed_at IS NOT NULL AND received_at < %s",
                            before, batch)
        outbox = self._prune("agent_outbox", "status = 'sent' AND updated_at < %s", before, batch)
        return inbox, outbox

    def _prune(self, table: str, where: str, before: datetime, batch: int) -> int:
        total = 0
        while True:
            with self.db.transaction() as conn:
                done = conn.execute(f"DELETE FROM {table} WHERE seq IN (SELECT seq FROM {table} "
                                    f"WHERE {where} ORDER BY seq LIMIT %s)",
                                    (before, batch)).rowcount
            total += done
            if done < batch:
                return total
