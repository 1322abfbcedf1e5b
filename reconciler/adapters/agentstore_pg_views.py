"""The PostgreSQL agent store's paused targets, holds, dead-letter listing and counts
(``agentstore_pg.PostgresAgentStore`` inherits them): small tables and reads, kept apart from
the claims so each module reads on its own."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from reconciler.adapters.agentrows import (
    DEAD_LETTER_KEYS,
    OUTBOX_STATES,
    Hold,
    PausedTarget,
    QueueStatus,
)
from reconciler.adapters.agentstore_pg_claims import HELD
from reconciler.adapters.state.postgres_db import Database
from reconciler.adapters.state.postgres_schema import Conn


def iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).isoformat()


class PausesHoldsAndCounts:
    db: Database
    _clock: Callable[[], datetime]

    # -- paused targets and holds -----------------------------------------------------------

    def pause_target(self, destination: str, target: str, reason: str, message: str,
                     token_fingerprint: str | None) -> None:
        with self.db.transaction() as conn:
            conn.execute("INSERT INTO agent_paused_targets (target, destination, reason, "
                         "message, token_fingerprint, paused_at) VALUES (%s, %s, %s, %s, %s, "
                         "%s) ON CONFLICT (target) DO UPDATE SET destination = "
                         "excluded.destination, reason = excluded.reason, message = "
                         "excluded.message, token_fingerprint = excluded.token_fingerprint, "
                         "paused_at = excluded.paused_at",
                         (target, destination, reason, message, token_fingerprint,
                          iso(self._clock())))

    def resume_target(self, target: str) -> bool:
        with self.db.transaction() as conn:
            return conn.execute("DELETE FROM agent_paused_targets WHERE target = %s",
                                (target,)).rowcount > 0

    def paused_targets(self) -> dict[str, PausedTarget]:
        with self.db.autocommit() as conn:
            rows = conn.execute("SELECT target, destination, reason, message, token_fingerprint, "
                                "paused_at FROM agent_paused_targets ORDER BY target").fetchall()
        return {r[0]: PausedTarget(*r) for r in rows}

    def hold(self, target: str, reason: str, message: str) -> None:
        with self.db.transaction() as conn:
            conn.execute("INSERT INTO agent_holds (target, reason, message, since) VALUES "
                         "(%s, %s, %s, %s) ON CONFLICT (target) DO UPDATE SET reason = "
                         "excluded.reason, message = excluded.message, since = excluded.since",
                         (target, reason, message, iso(self._clock())))

    def release(self, target: str) -> bool:
        with self.db.transaction() as conn:
            return conn.execute("DELETE FROM agent_holds WHERE target = %s",
                                (target,)).rowcount > 0

    def holds(self) -> dict[str, Hold]:
        with self.db.autocommit() as conn:
            rows = conn.execute("SELECT target, reason, message, since FROM agent_holds "
                                "ORDER BY target").fetchall()
        return {r[0]: Hold(*r) for r in rows}

    # -- status -----------------------------------------------------------------------------

    def status(self) -> QueueStatus:
        """Counts per state, per target, per skip and dead-letter reason, and live claims (rows
        a running transaction holds: ``agentstore_pg_claims.HELD``)."""
        with self.db.transaction() as conn:
            new, processed, claimed = conn.execute(
                "SELECT count(*) FILTER (WHERE processed_at IS NULL), count(*) FILTER (WHERE "
                "processed_at IS NOT NULL), count(*) FILTER (WHERE processed_at IS NULL AND "
                f"{HELD}) FROM agent_inbox").fetchone() or (0, 0, 0)
            targets: dict[tuple[str, str], dict[str, int]] = {}
            for network, target, state, n in conn.execute(
                    "SELECT destination, target, status, count(*) FROM agent_outbox "
                    "GROUP BY destination, target, status"):
                targets.setdefault((network, target), dict.fromkeys(OUTBOX_STATES, 0))[state] = n
            claimed += _one(conn, "SELECT count(*) FROM agent_outbox WHERE status = 'queued' "
                                  f"AND {HELD}")
            skips = dict(conn.execute("SELECT reason, sum(count)::bigint FROM agent_skips "
                                      "GROUP BY reason ORDER BY reason").fetchall())
            dead = dict(conn.execute("SELECT reason, count(*) FROM agent_outbox WHERE status = "
                                     "'dead' GROUP BY reason ORDER BY reason").fetchall())
            oldest = conn.execute("SELECT min(created_at) FROM agent_outbox "
                                  "WHERE status = 'queued'").fetchone()
            dropped = dict(conn.execute("SELECT reason, count FROM agent_ingest_drops "
                                        "ORDER BY reason").fetchall())
        outbox = {state: sum(t[state] for t in targets.values()) for state in OUTBOX_STATES}
        return QueueStatus(new, processed, outbox, targets, skips, dead, dropped,
                           iso(oldest[0] if oldest else None), claimed)

    def dead_letters(self, limit: int = 100) -> list[dict[str, Any]]:
        with self.db.transaction() as conn:
            rows = conn.execute("SELECT seq, conversion_event_id, event_id, destination, target, "
                                "event_name, reason, last_error FROM agent_outbox WHERE status "
                                "= 'dead' ORDER BY seq DESC LIMIT %s", (limit,)).fetchall()
        return [dict(zip(DEAD_LETTER_KEYS, row, strict=True)) for row in rows]


def _one(conn: Conn, query: str) -> int:
    row = conn.execute(query).fetchone()
    return int(row[0]) if row else 0
