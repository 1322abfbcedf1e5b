"""The sync agent's counts as Prometheus metrics, read from the agent store at scrape time.

A custom collector turns one ``agent_status`` snapshot (``convctl agent status`` shows the same
numbers) into metric families; nothing is kept in memory between scrapes, so the figures are
right whichever process (this server's agent, ``convctl agent run``) did the work. Labels are
state names, network names, targets (pixel ids, conversion rules, conversion actions: the
manifests' own, so a bounded set) and reason codes only: never a token, never contact data.
``network`` is meta, linkedin or google (anything else: other).

====================================================  ==============================================
convctl_agent_inbox_events{state}                     inbox rows: new, processed
convctl_agent_outbox_events{state}                    outbox rows: queued, sent, dead
convctl_agent_target_outbox_events{network,target,    the same per target
  state}
convctl_agent_pixel_outbox_events{pixel,state}        the same for Meta's targets (as before)
convctl_agent_skips_total{reason}                     CRM events that fired nothing, by reason
                                                      (R4-R19, and each network's own reasons)
convctl_agent_dead_letters{reason}                    dead letters by reason (retry-dead lowers it)
convctl_agent_target_paused{network,target,reason}    1 per target that cannot send: token,
                                                      permission, version (LinkedIn's API version
                                                      no longer served), token_unavailable
                                                      (else other)
convctl_agent_pixel_paused{pixel,reason}              the same for Meta's targets (as before)
convctl_agent_inbox_held{reason}                      1 while inbox processing is held off
                                                      (contacts_refused, contacts_unavailable, ...)
convctl_agent_dropped_fields_total{reason}            input fields dropped at ingest
                                                      (invalid_ip_address, invalid_user_agent)
convctl_agent_targets_held_off{network}               targets waiting out a Retry-After / backoff
convctl_agent_pixels_held_off                         all of them (as before)
convctl_agent_oldest_queued_age_seconds               age of the oldest queued row (0 when none)
convctl_agent_running                                 1 while this server's agent thread runs
convctl_agent_loop_failures_total                     agent cycles that failed and were restarted
convctl_agent_store_up                                0 when the store could not be read
====================================================  ==============================================

Match-key coverage per live event (``convctl_agent_coverage_sent_events``,
``convctl_agent_match_key_coverage_ratio``): see ``coverage_metrics``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from reconciler.core.models import NETWORKS
from reconciler.core.networks import PAUSE_REASONS as OUTCOME_PAUSES
from reconciler.errors import ConvctlError
from reconciler.server.coverage_metrics import coverage_metrics
from reconciler.services.agent_holds import HOLD_REASONS
from reconciler.services.delivery import TOKEN_UNAVAILABLE

log = logging.getLogger("convctl.server")
# Why a target is paused (a bounded label): a network's answer (token, permission, version),
# or its token cannot be read.
PAUSE_REASONS = (*OUTCOME_PAUSES, TOKEN_UNAVAILABLE)
StatusSource = Callable[[], dict[str, Any]]


def _gauge(name: str, doc: str, labels: list[str], rows: Iterator[tuple[list[str], float]]
           ) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, doc, labels=labels)
    for values, value in rows:
        family.add_metric(values, value)
    return family


def _age(oldest: str | None, now: datetime) -> float:
    if not oldest:
        return 0.0
    try:
        return max(0.0, (now - datetime.fromisoformat(oldest)).total_seconds())
    except ValueError:
        return 0.0


def _bounded(reason: object, known: tuple[str, ...]) -> str:
    """A label value from a known set (``other`` for anything else: the set stays bounded)."""
    return reason if isinstance(reason, str) and reason in known else "other"


def status_metrics(status: dict[str, Any], now: datetime) -> list[Metric]:
    """The metric families of one status snapshot (pure: easy to test)."""
    skips = CounterMetricFamily("convctl_agent_skips", "CRM events that fired no conversion "
                                "event, by reason code", labels=["reason"])
    for reason, n in sorted(status.get("skips", {}).items()):
        skips.add_metric([reason or "unknown"], float(n))
    dropped = CounterMetricFamily("convctl_agent_dropped_fields", "Input fields dropped at "
                                  "ingest (invalid IP address or user agent), by reason",
                                  labels=["reason"])
    for reason, n in sorted(status.get("droppedFields", {}).items()):
        dropped.add_metric([reason], float(n))
    pixels = status.get("pixels", {})
    targets = status.get("targets", {})
    paused = status.get("paused", {})
    held_off = status.get("heldOffNetworks", {})
    return [
        _gauge("convctl_agent_inbox_events", "Inbox rows by state", ["state"],
               (([s], float(n)) for s, n in status.get("inbox", {}).items())),
        _gauge("convctl_agent_outbox_events", "Outbox rows by state", ["state"],
               (([s], float(n)) for s, n in status.get("outbox", {}).items())),
        _gauge("convctl_agent_target_outbox_events", "Outbox rows by network, target and state",
               ["network", "target", "state"],
               (([_bounded(c.get("network"), NETWORKS), t, s], float(c[s]))
                for t, c in sorted(targets.items()) for s in ("queued", "sent", "dead"))),
        _gauge("convctl_agent_pixel_outbox_events", "Outbox rows by Meta pixel and state",
               ["pixel", "state"], (([p, s], float(n)) for p, counts in sorted(pixels.items())
                                    for s, n in counts.items())),
        skips,
        _gauge("convctl_agent_dead_letters", "Dead letters by reason", ["reason"],
               (([r or "unknown"], float(n))
                for r, n in sorted(status.get("deadLetters", {}).items(),
                                   key=lambda kv: kv[0] or ""))),
        _gauge("convctl_agent_target_paused", "Targets that cannot send: token unavailable, "
               "a token or permission error, or an API version no longer served",
               ["network", "target", "reason"],
               (([_bounded(info.get("network", "meta"), NETWORKS), t,
                  _bounded(info.get("reason"), PAUSE_REASONS)], 1.0)
                for t, info in sorted(paused.items()))),
        _gauge("convctl_agent_pixel_paused", "Meta pixels that cannot send: token unavailable, "
               "or a token or permission error", ["pixel", "reason"],
               (([p, _bounded(info.get("reason"), PAUSE_REASONS)], 1.0)
                for p, info in sorted(paused.items()) if info.get("network", "meta") == "meta")),
        _gauge("convctl_agent_inbox_held", "1 while inbox processing is held off, by reason",
               ["reason"], (([_bounded(info.get("reason"), HOLD_REASONS)], 1.0)
                            for info in status.get("held", {}).values())),
        dropped,
        _gauge("convctl_agent_targets_held_off", "Targets waiting out a Retry-After or "
               "backoff, by network", ["network"],
               (([network], float(sum(1 for t in status.get("heldOff", {})
                                      if _bounded(held_off.get(t, "meta"), NETWORKS) == network)))
                for network in (*NETWORKS, "other"))),
        GaugeMetricFamily("convctl_agent_pixels_held_off", "Targets (of every network) waiting "
                          "out a Retry-After or backoff",
                          value=float(len(status.get("heldOff", {})))),
        GaugeMetricFamily("convctl_agent_oldest_queued_age_seconds", "Age of the oldest "
                          "queued outbox row", value=_age(status.get("oldestQueuedAt"), now)),
    ]


def loop_metrics(loop: dict[str, Any] | None) -> list[Metric]:
    loop = loop or {}
    failures = CounterMetricFamily("convctl_agent_loop_failures", "Agent cycles that failed "
                                   "and were restarted", value=float(loop.get("failures", 0)))
    return [GaugeMetricFamily("convctl_agent_running", "1 while this server's agent runs",
                              value=1.0 if loop.get("running") else 0.0), failures]


class AgentCollector:
    """Collects ``source()`` (an ``agent_status``-shaped dict) at every scrape."""

    def __init__(self, source: StatusSource) -> None:
        self.source = source

    def describe(self) -> list[Metric]:
        return []  # no store read at registration time

    def collect(self) -> Iterator[Metric]:
        try:
            status = self.source()
        except ConvctlError as exc:
            log.warning("agent metrics unavailable: %s", exc)
            yield GaugeMetricFamily("convctl_agent_store_up", "The agent store is readable",
                                    value=0.0)
            return
        yield GaugeMetricFamily("convctl_agent_store_up", "The agent store is readable",
                                value=1.0)
        yield from status_metrics(status, datetime.now(UTC))
        yield from coverage_metrics(status.get("coverage", []))
        yield from loop_metrics(status.get("loop"))
