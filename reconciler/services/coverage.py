"""Match-key coverage per conversion event, read from the agent store (``core.coverage``).

``event_coverage`` is the one reader: ``agent status``, ``/metrics``, ``GET /v1/agent/coverage``,
``agent quality`` and the dashboard all show what it returns (typed ``EventCoverage`` values,
``to_json`` for the wire). Events are named ``ACCOUNT/NAME`` from the live state; an event no
longer there keeps its id as its name and ``live`` False. Sorted by name.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import UTC, datetime

from reconciler.core.coverage import WINDOWS, EventCoverage, hour_of, summarize
from reconciler.core.live import LiveEvent
from reconciler.errors import ConvctlError
from reconciler.services.ports import AgentStore

log = logging.getLogger("reconciler.agent")


def event_coverage(store: AgentStore, events: Iterable[LiveEvent] | None,
                   now: datetime | None = None) -> list[EventCoverage]:
    """Coverage over the last 24 hours and 7 days of every event that sent in the last 7
    days; ``events`` (the live events) give the names (None: ids only)."""
    hour = hour_of(now or datetime.now(UTC))
    windows = summarize(store.coverage_buckets(hour - max(WINDOWS.values()) + 1), hour)
    refs = {e.id: f"{e.account}/{e.name}" for e in events or ()}
    found = [EventCoverage(cid, refs.get(cid, cid), cid in refs, per_window)
             for cid, per_window in windows.items()]
    return sorted(found, key=lambda c: (not c.live, c.ref))


def live_events_or_none(list_events: Callable[[], list[LiveEvent]]) -> list[LiveEvent] | None:
    """The live events for naming, or None when the state cannot be read (coverage is then
    shown by id rather than not at all)."""
    try:
        return list_events()
    except ConvctlError as exc:
        log.warning("coverage: the live state could not be read for event names (%s)", exc)
        return None
