"""The coverage gauges keep their labels bounded: live events only, at most ``MAX_EVENTS`` of
them (those that sent most in 7 days), the rest summed under ``(other)``."""

from __future__ import annotations

from typing import Any

from reconciler.core.coverage import MATCH_KEYS, EventCoverage, WindowCoverage
from reconciler.server.coverage_metrics import MAX_EVENTS, OTHER, coverage_metrics


def item(ref: str, sent: int, em: int, live: bool = True) -> dict[str, Any]:
    window = WindowCoverage(sent, {"em": em} if em else {})
    return EventCoverage(ref, ref, live, {"24h": window, "7d": window}).to_json()


def samples(coverage: list[dict[str, Any]]) -> dict[tuple[str, ...], float]:
    out = {}
    for family in coverage_metrics(coverage):
        for sample in family.samples:
            out[(family.name, *sample.labels.values())] = sample.value
    return out


def test_many_events_are_capped_and_the_rest_summed() -> None:
    events = [item(f"acme/e{i:03}", sent=100 + i, em=i) for i in range(MAX_EVENTS + 5)]
    events.append(item("gone-id", sent=10_000, em=10_000, live=False))
    got = samples(events)
    named = {labels[1] for labels in got if labels[0] == "convctl_agent_coverage_sent_events"}
    top = {f"acme/e{i:03}" for i in range(5, MAX_EVENTS + 5)}  # the most sent
    assert named == top | {OTHER}
    assert got[("convctl_agent_coverage_sent_events", OTHER, "7d")] == sum(100 + i
                                                                           for i in range(5))
    assert got[("convctl_agent_match_key_coverage_ratio", OTHER, "em", "24h")] == (
        sum(range(5)) / sum(100 + i for i in range(5)))
    ratios = [k for k in got if k[0] == "convctl_agent_match_key_coverage_ratio"]
    assert len(ratios) == (MAX_EVENTS + 1) * len(MATCH_KEYS) * 2
    assert all(0.0 <= got[k] <= 1.0 for k in ratios)


def test_no_sent_events_means_no_series() -> None:
    assert samples([]) == {}
