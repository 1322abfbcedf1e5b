"""The agent store's SQL for match-key coverage and for replaying dead letters.

Kept apart from ``agentstore`` (which owns the connection and the transactions and calls these
inside them), so the coverage table and the replay filters are in one place:

- ``match_coverage`` (schema step 5 -> 6): sent events per (conversion event id, hour, key
  mask), ``core.coverage``. ``count_sent`` adds the rows a send is about to mark ``sent`` (only
  those still queued, so a row is counted once however often it is marked), grouped in SQL by
  the ``key_mask`` column the outbox row got when it was queued: a batch of 1,000 costs one
  statement and a handful of bucket rows.
- ``replay_dead``: dead letters chosen by reason, conversion event and event time are queued
  again, except those their network would refuse as older than its window (Meta's 7 days,
  ...), which stay dead and are counted.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from reconciler.core.coverage import Bucket


@dataclass(frozen=True, slots=True)
class DeadSelection:
    """Which dead letters ``replay_dead`` takes: with this ``reason``, of these conversion
    event ids, with an event time (epoch seconds) in ``[since, until)``; None: any."""

    reason: str | None = None
    conversion_event_ids: tuple[str, ...] | None = None
    since: int | None = None
    until: int | None = None

    def where(self) -> tuple[str, tuple[Any, ...]]:
        parts: list[str] = ["status = 'dead'"]
        params: list[Any] = []
        if self.reason is not None:
            parts.append("reason = ?")
            params.append(self.reason)
        if self.conversion_event_ids is not None:
            parts.append("conversion_event_id IN (SELECT value FROM json_each(?))")
            params.append(orjson.dumps(list(self.conversion_event_ids)).decode())
        if self.since is not None:
            parts.append("event_time >= ?")
            params.append(self.since)
        if self.until is not None:
            parts.append("event_time < ?")
            params.append(self.until)
        return " AND ".join(parts), tuple(params)


@dataclass(frozen=True, slots=True)
class Replay:
    """What ``replay_dead`` did (or would do): rows queued again, rows refused as too old
    (left dead), and for a dry run the rows it would queue (``listed`` at most)."""

    queued: int
    too_old: int
    rows: list[dict[str, Any]]


_LISTED = ("seq", "conversionEventId", "eventId", "network", "target", "eventName",
           "eventTime", "reason")


def count_sent(conn: sqlite3.Connection, ids: str, hour: int) -> None:
    """Add the still-queued rows among ``ids`` (a JSON array of seqs) to ``hour``'s buckets
    (rows queued before coverage was counted have no mask and are left out)."""
    conn.execute("INSERT INTO match_coverage (conversion_event_id, hour, key_mask, sent) "
                 "SELECT conversion_event_id, ?, key_mask, COUNT(*) FROM outbox WHERE seq IN "
                 "(SELECT value FROM json_each(?)) AND status = 'queued' AND key_mask IS NOT "
                 "NULL GROUP BY conversion_event_id, key_mask "
                 "ON CONFLICT (conversion_event_id, hour, key_mask) "
                 "DO UPDATE SET sent = sent + excluded.sent", (hour, ids))


def drop_buckets_before(conn: sqlite3.Connection, hour: int) -> None:
    conn.execute("DELETE FROM match_coverage WHERE hour < ?", (hour,))


def buckets(conn: sqlite3.Connection, since_hour: int) -> list[Bucket]:
    rows = conn.execute("SELECT conversion_event_id, hour, key_mask, sent FROM match_coverage "
                        "WHERE hour >= ? ORDER BY conversion_event_id, hour, key_mask",
                        (since_hour,)).fetchall()
    return [Bucket(*row) for row in rows]


# The earliest event time still sent (epoch seconds): one for every network, or one per
# network (``destination``) as each takes events for its own window.
Oldest = int | Mapping[str, int]


def oldest_sql(oldest: Oldest, mark: str = "?") -> tuple[str, tuple[Any, ...]]:
    """``oldest`` as an SQL expression over an outbox row and its parameters (``mark``: the
    placeholder); a network not named gets the latest bound (the shortest window)."""
    if isinstance(oldest, int):
        return mark, (oldest,)
    pairs = sorted(oldest.items())
    cases = " ".join(f"WHEN {mark} THEN {mark}" for _ in pairs)
    params = (*(v for pair in pairs for v in pair), max(oldest.values()))
    return f"(CASE destination {cases} ELSE {mark} END)", params


def replay_dead(conn: sqlite3.Connection, selection: DeadSelection, oldest_sendable: Oldest,
                now: datetime, *, dry_run: bool, listed: int) -> Replay:
    """Queue again (due now) the selected dead letters whose event time is at or after
    ``oldest_sendable`` (epoch seconds, per network when a mapping); count the older ones,
    which stay dead. ``dry_run`` changes nothing and lists (up to ``listed``) the rows it
    would queue, oldest event first. Call inside one write transaction."""
    where, params = selection.where()
    bound, bounds = oldest_sql(oldest_sendable)
    too_old = conn.execute(f"SELECT COUNT(*) FROM outbox WHERE {where} AND event_time < "
                           f"{bound}", (*params, *bounds)).fetchone()[0]
    if dry_run:
        rows = conn.execute(f"SELECT {', '.join(_COLUMNS)} FROM outbox WHERE {where} AND "
                            f"event_time >= {bound} ORDER BY event_time, seq",
                            (*params, *bounds)).fetchall()
        return Replay(len(rows), too_old,
                      [dict(zip(_LISTED, row, strict=True)) for row in rows[:listed]])
    # last_error stays set: the row is no longer as queued (``OutboxRow.checked`` is false),
    # so delivery checks its payload in full again before sending it.
    cur = conn.execute("UPDATE outbox SET status = 'queued', attempts = 0, reason = NULL, "
                       "last_error = COALESCE(last_error, 'queued again'), next_attempt_at = ?, "
                       f"updated_at = ? WHERE {where} AND event_time >= {bound}",
                       (now.timestamp(), now.astimezone(UTC).isoformat(), *params, *bounds))
    return Replay(cur.rowcount, too_old, [])


_COLUMNS = ("seq", "conversion_event_id", "event_id", "destination", "target", "event_name",
            "event_time", "reason")
