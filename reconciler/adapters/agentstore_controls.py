"""The agent store's controls and counts: paused targets, holds, the match-key coverage
buckets, and the status counts and dead-letter listing of ``agent status`` (``AgentStore``
inherits them).

- ``paused_targets``: targets that cannot send (token unavailable, a token or permission
  error, an API version no longer served), with their network and the token's fingerprint so
  a new token resumes them.
- ``agent_holds``: other parts of the work held off, with why (the inbox while the contact
  source refuses it).
- ``match_coverage``: the key masks of sent rows, counted per hour in the transaction that
  marks them sent (``agentquality``).

Each method is one ``_read`` or ``_write`` of the store's connection.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import Any

from reconciler.adapters import agentquality
from reconciler.adapters.agentrows import (
    DEAD_LETTER_KEYS,
    OUTBOX_STATES,
    Hold,
    PausedTarget,
    QueueStatus,
)
from reconciler.core.coverage import KEEP_HOURS, Bucket, hour_of

CURSOR = "SELECT seq FROM agent_cursor WHERE name = 'inbox'"
"""The last processed inbox ``seq``."""


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


class TargetControls:
    """Mixed into ``AgentStore``, which provides ``_read``, ``_write`` and ``_clock``."""

    _read: Callable[[], AbstractContextManager[sqlite3.Connection]]
    _write: Callable[..., AbstractContextManager[sqlite3.Connection]]
    _clock: Callable[[], datetime]
    _coverage_pruned: int | None  # the hour old coverage buckets were last dropped

    # -- paused targets ---------------------------------------------------------------------

    def pause_target(self, destination: str, target: str, reason: str, message: str,
                     token_fingerprint: str | None) -> None:
        with self._write() as conn:
            conn.execute("INSERT OR REPLACE INTO paused_targets (target, destination, reason, "
                         "message, token_fingerprint, paused_at) VALUES (?, ?, ?, ?, ?, ?)",
                         (target, destination, reason, message, token_fingerprint,
                          iso(self._clock())))

    def resume_target(self, target: str) -> bool:
        with self._write() as conn:
            cur = conn.execute("DELETE FROM paused_targets WHERE target = ?", (target,))
            return cur.rowcount > 0

    def paused_targets(self) -> dict[str, PausedTarget]:
        with self._read() as conn:
            rows = conn.execute("SELECT target, destination, reason, message, token_fingerprint, "
                                "paused_at FROM paused_targets ORDER BY target").fetchall()
        return {r[0]: PausedTarget(*r) for r in rows}

    # -- holds ------------------------------------------------------------------------------

    def hold(self, target: str, reason: str, message: str) -> None:
        """Record that ``target`` (e.g. ``inbox``) is held off and why (for ``status``)."""
        with self._write() as conn:
            conn.execute("INSERT OR REPLACE INTO agent_holds (target, reason, message, since) "
                         "VALUES (?, ?, ?, ?)", (target, reason, message, iso(self._clock())))

    def release(self, target: str) -> bool:
        with self._write() as conn:
            return conn.execute("DELETE FROM agent_holds WHERE target = ?",
                                (target,)).rowcount > 0

    def holds(self) -> dict[str, Hold]:
        with self._read() as conn:
            rows = conn.execute("SELECT target, reason, message, since FROM agent_holds "
                                "ORDER BY target").fetchall()
        return {r[0]: Hold(*r) for r in rows}

    # -- match-key coverage (core.coverage; table match_coverage) ---------------------------

    def _count_coverage(self, conn: sqlite3.Connection, ids: str, now: datetime) -> None:
        """Count the rows being marked sent into the coverage buckets (``agentquality``);
        once an hour, drop buckets past the longest window."""
        hour = hour_of(now)
        agentquality.count_sent(conn, ids, hour)
        if self._coverage_pruned != hour:
            agentquality.drop_buckets_before(conn, hour - KEEP_HOURS + 1)
            self._coverage_pruned = hour

    def coverage_buckets(self, since_hour: int) -> list[Bucket]:
        """The coverage buckets from ``since_hour`` on (hours since the epoch)."""
        with self._read() as conn:
            return agentquality.buckets(conn, since_hour)

    # -- status -----------------------------------------------------------------------------

    def status(self) -> QueueStatus:
        """Counts per state, per target, per skip reason and per dead-letter reason."""
        with self._read() as conn:
            cursor = conn.execute(CURSOR).fetchone()[0]
            new = conn.execute("SELECT COUNT(*) FROM inbox WHERE seq > ?", (cursor,)).fetchone()[0]
            processed = conn.execute("SELECT COUNT(*) FROM inbox WHERE seq <= ?",
                                     (cursor,)).fetchone()[0]
            outbox = dict(conn.execute("SELECT status, COUNT(*) FROM outbox GROUP BY status"))
            targets: dict[tuple[str, str], dict[str, int]] = {}
            for network, target, state, n in conn.execute(
                    "SELECT destination, target, status, COUNT(*) FROM outbox "
                    "GROUP BY destination, target, status"):
                targets.setdefault((network, target), dict.fromkeys(OUTBOX_STATES, 0))[state] = n
            skips = dict(conn.execute("SELECT reason, SUM(count) FROM skips GROUP BY reason "
                                      "ORDER BY reason"))
            dead = dict(conn.execute("SELECT reason, COUNT(*) FROM outbox WHERE status = 'dead' "
                                     "GROUP BY reason ORDER BY reason"))
            oldest = conn.execute("SELECT MIN(created_at) FROM outbox "
                                  "WHERE status = 'queued'").fetchone()[0]
            dropped = dict(conn.execute("SELECT reason, count FROM ingest_drops "
                                        "ORDER BY reason"))
        return QueueStatus(new, processed, {s: outbox.get(s, 0) for s in OUTBOX_STATES},
                           targets, skips, dead, dropped, oldest)

    def dead_letters(self, limit: int = 100) -> list[dict[str, Any]]:
        """The latest dead letters: ids, network, target, reason and the network's message (no
        payload: it holds PII hashes only, but a listing has no use for them)."""
        with self._read() as conn:
            rows = conn.execute("SELECT seq, conversion_event_id, event_id, destination, target, "
                                "event_name, reason, last_error FROM outbox WHERE status = "
                                "'dead' ORDER BY seq DESC LIMIT ?", (limit,)).fetchall()
        keys = DEAD_LETTER_KEYS
        return [dict(zip(keys, row, strict=True)) for row in rows]
