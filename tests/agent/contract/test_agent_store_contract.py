"""One contract for every agent store (``services.ports.AgentStore``): SQLite and PostgreSQL
give the same answers to one agent: a durable, deduplicated inbox; claims acknowledged with
their outbox rows; an outbox unique per (event_id, conversion event) (R16); delivery states and
dead letters; contacts merged; paused pixels, holds, retention and the typed status."""

from __future__ import annotations

from datetime import timedelta

from agentio import FakeClock
from conftest import NOW

from reconciler.adapters.agentrows import NewOutbox, QueueStatus
from reconciler.core.crm import Contact, FormSubmission, Ignored, StageChange, stage_source_id
from reconciler.services.agent import agent_status
from reconciler.services.agent_chunk import queue_row
from reconciler.services.ports import AgentStore

PIXEL = "123456789012345"


def change(cid: str = "501", stage: str = "customer") -> StageChange:
    at = NOW - timedelta(hours=1)
    return StageChange(4412345, cid, stage, at, stage_source_id(4412345, cid, stage, at))


def outbox(event_id: str = "e1", cev: str = "ev_1") -> NewOutbox:
    payload = {"event_name": "Lead", "event_time": int(NOW.timestamp()) - 60,
               "event_id": event_id}
    return queue_row(cev, event_id, "acme", PIXEL, payload)


def test_ingest_is_durable_deduplicated_and_in_order(agent_store: AgentStore) -> None:
    events = [change(str(n)) for n in range(5)]
    first = agent_store.ingest([(e.source_id, e) for e in events[:3]] +
                               [(events[0].source_id, events[0])])
    assert (first.stored, first.duplicates) == (3, 1)
    assert agent_store.ingest([(e.source_id, e) for e in events]).duplicates == 3
    assert agent_store.has_pending()
    assert [r.event for r in agent_store.pending(10)] == events


def test_every_event_kind_round_trips(agent_store: AgentStore) -> None:
    form = FormSubmission(4412345, "f", "sub", "501", NOW, "https://x.example", "1.2.3.4", "UA")
    ignored = Ignored(4412345, "contact.creation", "7", NOW, "unsupported_subscription")
    agent_store.ingest([("a", change()), ("b", form), ("c", ignored)])
    assert [r.event for r in agent_store.pending(10)] == [change(), form, ignored]


def test_acknowledged_rows_are_not_pending_and_later_ones_are(agent_store: AgentStore) -> None:
    first, second = change("1"), change("2")
    agent_store.ingest([(first.source_id, first)])
    agent_store.commit_processed([r.seq for r in agent_store.pending(10)], [], {})
    assert agent_store.pending(10) == [] and not agent_store.has_pending()
    agent_store.ingest([(second.source_id, second), (first.source_id, first)])
    assert [r.event for r in agent_store.pending(10)] == [second]
    assert agent_store.status().as_json()["inbox"] == {"new": 1, "processed": 1}


def test_processing_twice_never_enqueues_twice(agent_store: AgentStore) -> None:
    """R16: the outbox is unique per (event_id, conversion event)."""
    agent_store.ingest([("k", change())])
    seq = agent_store.pending(1)[0].seq
    assert agent_store.commit_processed([seq], [outbox()], {("no_lead_id", "ev_2"): 2}) == 1
    assert agent_store.commit_processed([seq], [outbox(), outbox("e1", "ev_9")],
                                        {("no_lead_id", "ev_2"): 1}) == 1
    assert agent_store.pending(10) == []
    assert agent_store.known_event_ids(["e1", "e2"]) == {"e1"}
    status = agent_store.status().as_json()
    assert status["skips"] == {"no_lead_id": 3}
    assert status["outbox"] == {"queued": 2, "sent": 0, "dead": 0}


def test_outbox_states_and_dead_letters(agent_store: AgentStore, clock: FakeClock) -> None:
    agent_store.commit_processed([], [outbox("a"), outbox("b"), outbox("c"),
                                      queue_row("ev_1", "d", "acme", PIXEL, {"event_name": "X"},
                                                "dead", "no_customer_info", "not sent")], {})
    rows = agent_store.due(clock.epoch(), 10)
    assert [r.event_id for r in rows] == ["a", "b", "c"]
    assert rows[0].body.startswith(b"{") and rows[0].payload == outbox("a").payload
    assert all(r.checked for r in rows)
    assert [r.event_id for r in agent_store.due(clock.epoch(), 10, rows[0].seq)] == ["b", "c"]
    assert agent_store.due(clock.epoch(), 10, exclude={PIXEL}) == []
    agent_store.mark_sent([rows[0].seq])
    agent_store.reschedule([rows[1].seq], clock.epoch() + 30, "HTTP 500")
    agent_store.dead([rows[2].seq], "rejected", "Meta said no")
    agent_store.dead([rows[0].seq], "expired", "a sent row is never touched again")
    assert agent_store.due(clock.epoch(), 10) == []
    assert agent_store.next_due() == clock.epoch() + 30
    assert agent_store.next_due({PIXEL}) is None
    again = agent_store.due(clock.epoch() + 30, 10)[0]
    assert (again.attempts, again.checked) == (1, False)
    assert agent_store.status().as_json()["deadLetters"] == {"no_customer_info": 1,
                                                             "rejected": 1}
    letters = agent_store.dead_letters(10)
    assert [(d["eventId"], d["reason"], d["error"]) for d in letters] == [  # latest first
        ("d", "no_customer_info", "not sent"), ("c", "rejected", "Meta said no")]
    assert agent_store.retry_dead("rejected") == 1 and agent_store.retry_dead() == 1
    assert agent_store.status().as_json()["outbox"] == {"queued": 3, "sent": 1, "dead": 0}
    assert agent_store.status().pixels == {PIXEL: {"queued": 3, "sent": 1, "dead": 0}}


def test_contacts_merge_in_batches_like_one_at_a_time(agent_store: AgentStore) -> None:
    agent_store.upsert_contacts([Contact(1, "a", {"email": "a@x.com", "city": "Paris"},
                                         meta_lead_id="1" * 15),
                                 Contact(2, "a", {"email": "other-portal@x.com"})])
    assert agent_store.ingest([], [Contact(1, "a", {"city": "Lyon"}, fbc="fb.1.1.1"),
                                   Contact(1, "b", {"phone": "123"}),
                                   Contact(1, "a", {"zip": "69001"}, ad_interaction=True),
                                   Contact(1, "b", {"phone": "456"}, meta_lead_id="2" * 15)]
                              ).contacts == 4
    got = agent_store.contacts(1, ["a", "b", "missing"])
    assert sorted(got) == ["a", "b"]
    assert got["a"].properties == {"email": "a@x.com", "city": "Lyon", "zip": "69001"}
    assert (got["a"].meta_lead_id, got["a"].fbc, got["a"].ad_interaction) == (
        "1" * 15, "fb.1.1.1", True)
    assert (got["b"].properties, got["b"].meta_lead_id) == ({"phone": "456"}, "2" * 15)
    assert agent_store.contacts(2, ["a"])["a"].properties == {"email": "other-portal@x.com"}


def test_dropped_fields_are_counted(agent_store: AgentStore) -> None:
    agent_store.ingest([("a", change())], drops={"invalid_ip_address": 2})
    agent_store.ingest([], drops={"invalid_ip_address": 1, "invalid_user_agent": 1})
    assert agent_store.status().dropped_fields == {"invalid_ip_address": 3,
                                                   "invalid_user_agent": 1}


def test_pixel_pauses_and_holds(agent_store: AgentStore, clock: FakeClock) -> None:
    agent_store.pause_target("meta", "123", "token", "Meta refused the token", "abc")
    agent_store.pause_target("meta", "123", "permission", "no permission", "def")
    paused = agent_store.paused_targets()["123"]
    assert (paused.reason, paused.message, paused.token_fingerprint) == (
        "permission", "no permission", "def")
    assert paused.paused_at == NOW.isoformat()
    assert agent_store.resume_target("123") and not agent_store.resume_target("123")
    assert agent_store.paused_targets() == {}
    agent_store.hold("inbox", "contacts_refused", "HubSpot said 401")
    assert agent_store.holds()["inbox"].reason == "contacts_refused"
    assert agent_store.release("inbox") and not agent_store.release("inbox")


def test_retention_keeps_queued_rows_and_dead_letters(agent_store: AgentStore,
                                                      clock: FakeClock) -> None:
    events = [change(str(n)) for n in range(3)]
    agent_store.ingest([(e.source_id, e) for e in events])
    seqs = [r.seq for r in agent_store.pending(2)]
    agent_store.commit_processed(seqs, [outbox("a"), outbox("b"), outbox("c")], {})
    a, b, _ = agent_store.due(clock.epoch(), 10)
    agent_store.mark_sent([a.seq])
    agent_store.dead([b.seq], "rejected", "no")
    agent_store.release_claims("outbox")  # the page's settlements are committed with it
    clock.now += timedelta(days=31)
    assert agent_store.prune(clock.now - timedelta(days=30), batch=1) == (2, 1)
    status = agent_store.status().as_json()
    assert status["inbox"] == {"new": 1, "processed": 0}
    assert status["outbox"] == {"queued": 1, "sent": 0, "dead": 1}


def test_status_is_a_typed_value_with_the_json_users_know(agent_store: AgentStore) -> None:
    agent_store.commit_processed([], [outbox("a")], {("ignored", ""): 1})
    agent_store.pause_target("meta", PIXEL, "token", "refused", None)
    status = agent_status(agent_store, {"999": 1.5})
    assert isinstance(status.queues, QueueStatus) and status.queues.outbox["queued"] == 1
    data = status.as_json()
    assert list(data) == ["inbox", "outbox", "pixels", "targets", "skips", "deadLetters",
                          "droppedFields", "oldestQueuedAt", "coverage", "paused", "held",
                          "heldOff", "heldOffNetworks"]
    assert data["oldestQueuedAt"] == NOW.isoformat()
    assert data["paused"] == {PIXEL: {"network": "meta", "reason": "token", "message": "refused",
                                      "since": NOW.isoformat()}}
    assert data["targets"] == {PIXEL: {"network": "meta", "queued": 1, "sent": 0, "dead": 0}}
    assert data["pixels"] == {PIXEL: {"queued": 1, "sent": 0, "dead": 0}}
    assert data["heldOffNetworks"] == {"999": "meta"}
    assert data["heldOff"] == {"999": 1.5} and data["skips"] == {"ignored": 1}


def test_release_claims_leaves_the_rows_to_take_again(agent_store: AgentStore,
                                                      clock: FakeClock) -> None:
    agent_store.ingest([("k", change())])
    agent_store.commit_processed([], [outbox("a")], {})
    assert len(agent_store.pending(10)) == 1 and len(agent_store.due(clock.epoch(), 10)) == 1
    agent_store.release_claims()
    assert len(agent_store.pending(10)) == 1 and len(agent_store.due(clock.epoch(), 10)) == 1
