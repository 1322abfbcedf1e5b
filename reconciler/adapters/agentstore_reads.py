"""The agent store's activity reads, for the dashboard: sends per minute, per-event counts,
recent deliveries and dead letters grouped (``AgentStore`` inherits them).

Reads only, each in one ``_read`` of the store's connection; payloads are never returned.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import Any

import orjson

from reconciler.adapters.agentrows import DELIVERY_KEYS


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


class ActivityReads:
    """Mixed into ``AgentStore``, which provides ``_read``."""

    _read: Callable[[], AbstractContextManager[sqlite3.Connection]]

    def sent_per_minute(self, since: datetime) -> dict[str, int]:
        """Rows sent since ``since``, per UTC minute (``YYYY-MM-DDTHH:MM``)."""
        with self._read() as conn:
            rows = conn.execute("SELECT substr(updated_at, 1, 16), COUNT(*) FROM outbox WHERE "
                                "status = 'sent' AND updated_at >= ? GROUP BY 1",
                                (_iso(since),)).fetchall()
        return {minute: n for minute, n in rows}

    def event_activity(self, since: datetime) -> dict[str, dict[str, Any]]:
        """Per conversion event: rows sent and dead-lettered since ``since``, and when it last
        sent (ISO, any time), plus skip counts by reason (all time)."""
        out: dict[str, dict[str, Any]] = {}

        def entry(event_id: str) -> dict[str, Any]:
            return out.setdefault(event_id, {"sent": 0, "dead": 0, "queued": 0,
                                             "lastSent": None, "skips": {}})

        with self._read() as conn:
            for event_id, state, n in conn.execute(
                    "SELECT conversion_event_id, status, COUNT(*) FROM outbox WHERE "
                    "updated_at >= ? GROUP BY 1, 2", (_iso(since),)):
                entry(event_id)[state] = n
            for event_id, last in conn.execute("SELECT conversion_event_id, MAX(updated_at) "
                                               "FROM outbox WHERE status = 'sent' GROUP BY 1"):
                entry(event_id)["lastSent"] = last
            for reason, event_id, n in conn.execute("SELECT reason, conversion_event_id, count "
                                                    "FROM skips"):
                entry(event_id)["skips"][reason] = n
        return out

    def deliveries(self, conversion_event_id: str, limit: int = 20) -> list[dict[str, Any]]:
        """The event's latest outbox rows, newest first (ids, network, target, state, attempts,
        the network's message; no payload)."""
        with self._read() as conn:
            rows = conn.execute("SELECT seq, event_id, event_name, destination, target, status, "
                                "attempts, reason, last_error, updated_at FROM outbox WHERE "
                                "conversion_event_id = ? ORDER BY seq DESC LIMIT ?",
                                (conversion_event_id, limit)).fetchall()
        keys = DELIVERY_KEYS
        return [dict(zip(keys, row, strict=True)) for row in rows]

    def dead_letter_groups(self) -> list[dict[str, Any]]:
        """Dead letters grouped by (reason, conversion event): count, network, target, latest
        message and when the latest one died, most numerous first."""
        with self._read() as conn:
            rows = conn.execute(
                "SELECT reason, conversion_event_id, COUNT(*), MAX(seq), MAX(updated_at) "
                "FROM outbox WHERE status = 'dead' GROUP BY 1, 2 ORDER BY 3 DESC, 1, 2"
            ).fetchall()
            latest = {r[0]: r[1:] for r in conn.execute(
                "SELECT seq, destination, target, event_name, last_error FROM outbox WHERE seq IN "
                "(SELECT value FROM json_each(?))", (orjson.dumps([r[3] for r in rows]).decode(),))}
        groups = []
        for reason, event_id, count, seq, at in rows:
            network, target, name, error = latest.get(seq, ("", "", "", None))
            groups.append({"reason": reason, "conversionEventId": event_id, "count": count,
                           "network": network, "target": target, "eventName": name,
                           "error": error, "lastAt": at})
        return groups
