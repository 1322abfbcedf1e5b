"""Match-key coverage as Prometheus gauges, from the ``coverage`` of an ``agent_status``.

Labels stay bounded: ``key`` is one of ``core.coverage.MATCH_KEYS``, ``window`` is ``24h`` or
``7d``, and ``event`` (``ACCOUNT/NAME``) is given only to events in the live state, at most
``MAX_EVENTS`` of them (those that sent the most in 7 days); the others are summed under
``event="(other)"``. An event that no longer exists drops out at once.

=====================================================  ==========================================
convctl_agent_coverage_sent_events{event,window}       events sent in the window
convctl_agent_match_key_coverage_ratio{event,key,      share of them that carried the key (0-1):
window}                                                ours, not Meta's Event Match Quality
=====================================================  ==========================================
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from prometheus_client.core import GaugeMetricFamily, Metric

from reconciler.core.coverage import MATCH_KEYS, WINDOWS

MAX_EVENTS: Final = 25
OTHER: Final = "(other)"  # cannot be an ACCOUNT/NAME


def _totals(items: Sequence[Mapping[str, Any]]) -> dict[str, tuple[int, dict[str, int]]]:
    """Per window: sent and per-key counts summed over ``items``."""
    out: dict[str, tuple[int, dict[str, int]]] = {}
    for window in WINDOWS:
        sent = sum(i["windows"][window]["sent"] for i in items)
        keys = {k: sum(i["windows"][window]["keys"][k]["count"] for i in items)
                for k in MATCH_KEYS}
        out[window] = (sent, keys)
    return out


def coverage_metrics(coverage: Sequence[Mapping[str, Any]]) -> list[Metric]:
    live = sorted((c for c in coverage if c.get("live")),
                  key=lambda c: (-c["windows"]["7d"]["sent"], c["event"]))
    rows = [(c["event"], _totals([c])) for c in live[:MAX_EVENTS]]
    if len(live) > MAX_EVENTS:
        rows.append((OTHER, _totals(live[MAX_EVENTS:])))
    sent = GaugeMetricFamily("convctl_agent_coverage_sent_events", "Events sent in the window, "
                             "per live conversion event", labels=["event", "window"])
    ratio = GaugeMetricFamily("convctl_agent_match_key_coverage_ratio", "Share of the events "
                              "sent in the window that carried the match key (our coverage, "
                              "not Meta's Event Match Quality)", labels=["event", "key", "window"])
    for event, windows in rows:
        for window, (n, keys) in windows.items():
            sent.add_metric([event, window], float(n))
            for key in MATCH_KEYS:
                ratio.add_metric([event, key, window], keys[key] / n if n else 0.0)
    return [sent, ratio]
