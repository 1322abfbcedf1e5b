"""The PostgreSQL agent store's match-key coverage, dead-letter replay and the dashboard's
activity reads (``agentstore_pg.PostgresAgentStore`` inherits them), answering as the SQLite
store's ``agentquality`` and ``agentstore_reads`` do:

- ``count_sent`` settles the rows being marked sent and counts them into
  ``agent_match_coverage`` in one statement: the ``UPDATE ... RETURNING`` yields only the rows
  still queued, so a row marked twice (by two agents after a lease ran out) is counted once.
- ``replay_dead``: dead letters chosen by reason, conversion event and event time queued again,
  except those older than Meta's window, which stay dead and are counted.
- ``sent_per_minute``, ``event_activity``, ``deliveries``, ``dead_letter_groups``: reads only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Final

from reconciler.adapters.agentquality import DeadSelection, Oldest, Replay, oldest_sql
from reconciler.adapters.agentrows import DELIVERY_KEYS
from reconciler.adapters.agentstore_pg_views import iso
from reconciler.adapters.state.postgres_db import Database
from reconciler.adapters.state.postgres_schema import Conn
from reconciler.core.coverage import KEEP_HOURS, Bucket, hour_of

_COUNT_SENT: Final = (
    "WITH s AS (UPDATE agent_outbox SET {assignments}, updated_at = %s "
    "WHERE seq = ANY(%b::bigint[]) AND status = 'queued' RETURNING conversion_event_id, "
    "key_mask) INSERT INTO agent_match_coverage (conversion_event_id, hour, key_mask, sent) "
    "SELECT conversion_event_id, %s, key_mask, count(*) FROM s WHERE key_mask IS NOT NULL "
    "GROUP BY conversion_event_id, key_mask ORDER BY conversion_event_id, key_mask "
    "ON CONFLICT (conversion_event_id, hour, key_mask) "
    "DO UPDATE SET sent = agent_match_coverage.sent + excluded.sent")
_LISTED: Final = ("seq", "conversionEventId", "eventId", "network", "target", "eventName",
                  "eventTime", "reason")


def _where(selection: DeadSelection) -> tuple[str, list[Any]]:
    """``DeadSelection.where`` in PostgreSQL's placeholders."""
    parts: list[str] = ["status = 'dead'"]
    params: list[Any] = []
    if selection.reason is not None:
        parts.append("reason = %s")
        params.append(selection.reason)
    if selection.conversion_event_ids is not None:
        parts.append("conversion_event_id = ANY(%s::text[])")
        params.append(list(selection.conversion_event_ids))
    if selection.since is not None:
        parts.append("event_time >= %s")
        params.append(selection.since)
    if selection.until is not None:
        parts.append("event_time < %s")
        params.append(selection.until)
    return " AND ".join(parts), params


class CoverageReplayAndActivity:
    db: Database
    _clock: Callable[[], datetime]
    _coverage_pruned: int | None = None

    # -- match-key coverage -----------------------------------------------------------------

    def _mark_sent_counted(self, conn: Conn, seqs: Sequence[int], assignments: str) -> None:
        """Settle ``seqs`` as sent and count them into the current hour's buckets; once an
        hour, drop the buckets past the longest window."""
        now = self._clock()
        hour = hour_of(now)
        conn.execute(_COUNT_SENT.format(assignments=assignments), (now, list(seqs), hour))
        if self._coverage_pruned != hour:
            conn.execute("DELETE FROM agent_match_coverage WHERE hour < %s",
                         (hour - KEEP_HOURS + 1,))
            self._coverage_pruned = hour

    def coverage_buckets(self, since_hour: int) -> list[Bucket]:
        """The coverage buckets from ``since_hour`` on (hours since the epoch)."""
        with self.db.autocommit() as conn:
            rows = conn.execute("SELECT conversion_event_id, hour, key_mask, sent FROM "
                                "agent_match_coverage WHERE hour >= %s ORDER BY "
                                "conversion_event_id, hour, key_mask", (since_hour,)).fetchall()
        return [Bucket(str(e), int(h), int(m), int(n)) for e, h, m, n in rows]

    # -- replay -----------------------------------------------------------------------------

    def replay_dead(self, selection: DeadSelection, oldest_sendable: Oldest, *,
                    dry_run: bool = False, listed: int = 1000) -> Replay:
        """Queue again (due now) the selected dead letters sent at or after
        ``oldest_sendable`` (per network when a mapping); count the older ones, which stay
        dead. ``dry_run`` changes nothing and lists what it would queue, oldest event first.
        One transaction."""
        where, params = _where(selection)
        bound, bounds = oldest_sql(oldest_sendable, "%s")
        now = self._clock()
        with self.db.transaction() as conn:
            row = conn.execute(f"SELECT count(*) FROM agent_outbox WHERE {where} AND "
                               f"event_time < {bound}", (*params, *bounds)).fetchone()
            too_old = int(row[0]) if row else 0
            if dry_run:
                rows = conn.execute("SELECT seq, conversion_event_id, event_id, destination, "
                                    "target, event_name, event_time, reason FROM agent_outbox "
                                    f"WHERE {where} AND event_time >= {bound} "
                                    "ORDER BY event_time, seq", (*params, *bounds)).fetchall()
                return Replay(len(rows), too_old,
                              [dict(zip(_LISTED, r, strict=True)) for r in rows[:listed]])
            cur = conn.execute(
                "UPDATE agent_outbox SET status = 'queued', attempts = 0, reason = NULL, "
                "last_error = COALESCE(last_error, 'queued again'), next_attempt_at = %s, "
                f"updated_at = %s WHERE {where} AND event_time >= {bound}",
                (now.timestamp(), now, *params, *bounds))
            return Replay(max(cur.rowcount, 0), too_old, [])

    # -- the dashboard's activity reads -----------------------------------------------------

    def sent_per_minute(self, since: datetime) -> dict[str, int]:
        """Rows sent since ``since``, per UTC minute (``YYYY-MM-DDTHH:MM``)."""
        with self.db.autocommit() as conn:
            rows = conn.execute("SELECT to_char(updated_at AT TIME ZONE 'UTC', "
                                "'YYYY-MM-DD\"T\"HH24:MI'), count(*) FROM agent_outbox WHERE "
                                "status = 'sent' AND updated_at >= %s GROUP BY 1",
                                (since,)).fetchall()
        return {str(minute): int(n) for minute, n in rows}

    def event_activity(self, since: datetime) -> dict[str, dict[str, Any]]:
        """Per conversion event: rows sent, dead and queued since ``since``, when it last sent
        (ISO, any time), and its skip counts by reason (all time)."""
        out: dict[str, dict[str, Any]] = {}

        def entry(event_id: str) -> dict[str, Any]:
            return out.setdefault(event_id, {"sent": 0, "dead": 0, "queued": 0,
                                             "lastSent": None, "skips": {}})

        with self.db.transaction() as conn:
            for event_id, state, n in conn.execute(
                    "SELECT conversion_event_id, status, count(*) FROM agent_outbox WHERE "
                    "updated_at >= %s GROUP BY 1, 2", (since,)).fetchall():
                entry(event_id)[state] = int(n)
            for event_id, last in conn.execute(
                    "SELECT conversion_event_id, max(updated_at) FROM agent_outbox "
                    "WHERE status = 'sent' GROUP BY 1").fetchall():
                entry(event_id)["lastSent"] = iso(last)
            for reason, event_id, n in conn.execute(
                    "SELECT reason, conversion_event_id, count FROM agent_skips").fetchall():
                entry(event_id)["skips"][reason] = int(n)
        return out

    def deliveries(self, conversion_event_id: str, limit: int = 20) -> list[dict[str, Any]]:
        """The event's latest outbox rows, newest first (no payload)."""
        with self.db.autocommit() as conn:
            rows = conn.execute("SELECT seq, event_id, event_name, destination, target, status, "
                                "attempts, reason, last_error, updated_at FROM agent_outbox "
                                "WHERE conversion_event_id = %s ORDER BY seq DESC LIMIT %s",
                                (conversion_event_id, limit)).fetchall()
        return [dict(zip(DELIVERY_KEYS, (*r[:9], iso(r[9])), strict=True)) for r in rows]

    def dead_letter_groups(self) -> list[dict[str, Any]]:
        """Dead letters grouped by (reason, conversion event): count, the latest one's network,
        target, name and message, and when it died; most numerous first."""
        with self.db.autocommit() as conn:
            rows = conn.execute(
                "SELECT g.reason, g.conversion_event_id, g.n, o.destination, o.target, "
                "o.event_name, "
                "o.last_error, g.at FROM (SELECT reason, conversion_event_id, count(*) AS n, "
                "max(seq) AS seq, max(updated_at) AS at FROM agent_outbox WHERE status = 'dead' "
                "GROUP BY 1, 2) g JOIN agent_outbox o ON o.seq = g.seq "
                "ORDER BY g.n DESC, g.reason, g.conversion_event_id").fetchall()
        return [{"reason": r[0], "conversionEventId": r[1], "count": int(r[2]),
                 "network": r[3], "target": r[4], "eventName": r[5], "error": r[6],
                 "lastAt": iso(r[7])} for r in rows]
