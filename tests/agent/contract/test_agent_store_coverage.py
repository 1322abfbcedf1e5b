"""Main's agent features through the store protocol, on every backend (SQLite and PostgreSQL):
match-key coverage counted as rows are marked sent (once per row), ``agent retry-dead``'s
replay of chosen dead letters (too old ones stay dead), and the dashboard's activity reads."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from agentio import FakeClock
from conftest import NOW

from reconciler.adapters.agentquality import DeadSelection
from reconciler.adapters.agentrows import NewOutbox
from reconciler.core.coverage import hour_of, key_mask
from reconciler.services.agent import agent_status
from reconciler.services.agent_chunk import queue_row
from reconciler.services.ports import AgentStore

PIXEL = "123456789012345"
EVENT_TIME = int(NOW.timestamp()) - 60


def row(event_id: str, keys: tuple[str, ...] = ("em",), cev: str = "ev_1",
        event_time: int = EVENT_TIME, status: str = "queued",
        reason: str | None = None) -> NewOutbox:
    payload: dict[str, Any] = {"event_name": "Lead", "event_time": event_time,
                               "event_id": event_id, "user_data": dict.fromkeys(keys, "h")}
    return queue_row(cev, event_id, "acme", PIXEL, payload, status, reason,
                     "Meta said no" if status == "dead" else None)


def test_sent_rows_are_counted_once_per_key_mask_and_hour(agent_store: AgentStore,
                                                           clock: FakeClock) -> None:
    agent_store.commit_processed([], [row("a", ("em",)), row("b", ("em", "ph")),
                                      row("c", ("em",)), row("d", ("ph",), "ev_2")], {})
    a, b, c, d = agent_store.due(clock.epoch(), 10)
    agent_store.mark_sent([a.seq, b.seq])
    agent_store.mark_sent([a.seq])  # marked twice (a lease ran out): counted once
    agent_store.reschedule([c.seq], clock.epoch() + 30, "HTTP 500")  # not sent: not counted
    clock.advance(hours=1)
    agent_store.mark_sent([d.seq])
    agent_store.release_claims("outbox")  # the page's settlements are committed with it
    hour = hour_of(NOW)
    found = {(x.conversion_event_id, x.hour, x.mask, x.sent)
             for x in agent_store.coverage_buckets(hour)}
    assert found == {("ev_1", hour, key_mask({"em": 1}), 1),
                     ("ev_1", hour, key_mask({"em": 1, "ph": 1}), 1),
                     ("ev_2", hour + 1, key_mask({"ph": 1}), 1)}
    assert {x.hour for x in agent_store.coverage_buckets(hour + 1)} == {hour + 1}
    coverage = {c["conversionEventId"]: c for c in
                agent_status(agent_store, now=clock.now).as_json()["coverage"]}
    assert coverage["ev_1"]["windows"]["24h"]["sent"] == 2
    assert coverage["ev_2"]["windows"]["7d"]["sent"] == 1


def test_replay_queues_the_chosen_dead_letters_and_keeps_too_old_ones(
        agent_store: AgentStore, clock: FakeClock) -> None:
    old = EVENT_TIME - 10 * 86400
    agent_store.commit_processed([], [
        row("a", status="dead", reason="rejected"),
        row("b", cev="ev_2", status="dead", reason="rejected"),
        row("c", status="dead", reason="expired", event_time=old),
        row("d", status="dead", reason="rejected", event_time=old)], {})
    cutoff = EVENT_TIME - 86400
    dry = agent_store.replay_dead(DeadSelection(reason="rejected"), cutoff, dry_run=True)
    assert (dry.queued, dry.too_old) == (2, 1)
    assert [r["eventId"] for r in dry.rows] == ["a", "b"]
    assert set(dry.rows[0]) == {"seq", "conversionEventId", "eventId", "network", "target",
                                "eventName", "eventTime", "reason"}
    assert (dry.rows[0]["network"], dry.rows[0]["target"]) == ("meta", PIXEL)
    assert agent_store.status().outbox["dead"] == 4  # the dry run changed nothing
    only = DeadSelection(conversion_event_ids=("ev_1",), since=EVENT_TIME - 5,
                         until=EVENT_TIME + 5)
    done = agent_store.replay_dead(only, cutoff)
    assert (done.queued, done.too_old, done.rows) == (1, 0, [])
    assert [(r.event_id, r.checked) for r in agent_store.due(clock.epoch(), 10)] == [("a", False)]
    rest = agent_store.replay_dead(DeadSelection(), cutoff)
    assert (rest.queued, rest.too_old) == (1, 2)
    assert agent_store.status().dead_letters == {"expired": 1, "rejected": 1}


def test_replay_bounds_are_per_network(agent_store: AgentStore, clock: FakeClock) -> None:
    """Each network takes events for its own window: a LinkedIn dead letter 30 days old is
    queued again (90 days), a Meta one as old stays dead (7 days); a network the bounds do not
    name gets the latest one (the shortest window)."""
    old = EVENT_TIME - 30 * 86400
    rule = "urn:lla:llaPartnerConversion:111"
    linkedin = {"conversion": rule, "conversionHappenedAt": old * 1000, "eventId": "li",
                "user": {"userIds": []}}
    agent_store.commit_processed([], [
        row("meta-old", status="dead", reason="rejected", event_time=old),
        queue_row("ev_li", "li", "acme", rule, linkedin, "dead", "rejected", "no",
                  network="linkedin")], {})
    bounds = {"meta": EVENT_TIME - 7 * 86400, "linkedin": EVENT_TIME - 90 * 86400}
    dry = agent_store.replay_dead(DeadSelection(), bounds, dry_run=True)
    assert ([(r["network"], r["eventId"]) for r in dry.rows], dry.too_old) == (
        [("linkedin", "li")], 1)
    done = agent_store.replay_dead(DeadSelection(), {"meta": EVENT_TIME - 7 * 86400})
    assert (done.queued, done.too_old) == (0, 2)  # linkedin unnamed: the 7-day bound
    done = agent_store.replay_dead(DeadSelection(), bounds)
    assert (done.queued, done.too_old) == (1, 1)
    assert [(r.destination, r.target, r.event_time) for r in
            agent_store.due(clock.epoch(), 10)] == [("linkedin", rule, old)]


def test_the_dashboards_activity_reads(agent_store: AgentStore, clock: FakeClock) -> None:
    agent_store.commit_processed([], [row("a"), row("b"), row("c", cev="ev_2")],
                                 {("no_lead_id", "ev_1"): 2})
    a, b, c = agent_store.due(clock.epoch(), 10)
    agent_store.mark_sent([a.seq])
    clock.advance(minutes=1)
    agent_store.mark_sent([b.seq])
    agent_store.dead([c.seq], "rejected", "Meta said no")
    agent_store.release_claims("outbox")  # the page's settlements are committed with it
    since = NOW - timedelta(hours=1)
    assert agent_store.sent_per_minute(since) == {"2026-11-28T10:00": 1, "2026-11-28T10:01": 1}
    activity = agent_store.event_activity(since)
    assert activity["ev_1"] == {"sent": 2, "dead": 0, "queued": 0,
                                "lastSent": (NOW + timedelta(minutes=1)).isoformat(),
                                "skips": {"no_lead_id": 2}}
    assert (activity["ev_2"]["dead"], activity["ev_2"]["lastSent"]) == (1, None)
    latest = agent_store.deliveries("ev_1", 1)
    assert [(d["eventId"], d["status"], d["attempts"]) for d in latest] == [("b", "sent", 1)]
    assert latest[0]["updatedAt"] == (NOW + timedelta(minutes=1)).isoformat()
    assert "payload" not in latest[0]
    assert (latest[0]["network"], latest[0]["target"]) == ("meta", PIXEL)
    assert agent_store.dead_letter_groups() == [
        {"reason": "rejected", "conversionEventId": "ev_2", "count": 1, "network": "meta",
         "target": PIXEL, "eventName": "Lead", "error": "Meta said no",
         "lastAt": (NOW + timedelta(minutes=1)).isoformat()}]
