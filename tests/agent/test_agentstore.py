"""The agent store: schema step, durable dedup'd inbox, contact merge, outbox uniqueness and
states, skip counters, pixel pauses, error translation."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from agentio import FakeClock

from reconciler.adapters import agentcodec as codec
from reconciler.adapters.agentrows import NewOutbox
from reconciler.adapters.agentstore import AgentStore
from reconciler.adapters.state import sqlite_schema
from reconciler.core.crm import Contact, FormSubmission, Ignored, StageChange, stage_source_id
from reconciler.errors import StateError
from reconciler.services.agent_chunk import queue_row

NOW = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(NOW)


@pytest.fixture
def store(tmp_path: Path, clock: FakeClock) -> Iterator[AgentStore]:
    s = AgentStore(tmp_path / "state.db", clock=clock)
    yield s
    s.close()


def change(cid: str = "501", stage: str = "customer") -> StageChange:
    at = NOW - timedelta(hours=1)
    return StageChange(4412345, cid, stage, at, stage_source_id(4412345, cid, stage, at))


def outbox(event_id: str = "e1", cev: str = "ev_1", t: int | None = None) -> NewOutbox:
    payload = {"event_name": "Lead", "event_time": t or int(NOW.timestamp()) - 60,
               "event_id": event_id}
    return queue_row(cev, event_id, "acme", "123456789012345", payload)


def raw(path: Path, sql: str) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def test_schema_step_adds_the_agent_tables(store: AgentStore) -> None:
    tables = {r[0] for r in raw(store.path, "SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"inbox", "contacts", "outbox", "skips", "paused_targets"} <= tables
    assert raw(store.path, "PRAGMA user_version") == [(sqlite_schema.SCHEMA_VERSION,)]


def test_a_version_3_inbox_keeps_what_was_processed_and_what_was_not(tmp_path: Path,
                                                                     clock: FakeClock) -> None:
    """Schema step 3 -> 4 replaces the per-row status by a cursor: the rows processed before
    the upgrade stay processed, the others are still pending, in order."""
    path = tmp_path / "v3.db"
    conn = sqlite3.connect(path, isolation_level=None)
    for step in sqlite_schema.MIGRATIONS[:3]:
        for statement in step:
            conn.execute(statement)
    conn.execute("PRAGMA user_version = 3")
    events = [change(str(n)) for n in range(5)]
    for n, ev in enumerate(events):
        conn.execute("INSERT INTO inbox (dedup_key, kind, portal_id, body, status, received_at) "
                     "VALUES (?, 'stage', 4412345, ?, ?, '2026-11-28T09:00:00+00:00')",
                     (ev.source_id, codec.encode_event(ev), "processed" if n < 2 else "new"))
    conn.close()
    upgraded = AgentStore(path, clock=clock)
    try:
        assert raw(path, "PRAGMA user_version") == [(sqlite_schema.SCHEMA_VERSION,)]
        assert upgraded.status().as_json()["inbox"] == {"new": 3, "processed": 2}
        rows = upgraded.pending(10)
        assert [r.event for r in rows] == events[2:]
        upgraded.commit_processed([r.seq for r in rows[:2]], [], {})
        assert [r.event for r in upgraded.pending(10)] == events[4:]
        assert upgraded.status().as_json()["inbox"] == {"new": 1, "processed": 4}
    finally:
        upgraded.close()


def test_a_later_ingest_is_pending_after_the_processed_ones(store: AgentStore) -> None:
    first, second = change("1"), change("2")
    store.ingest([(first.source_id, first)])
    store.commit_processed([r.seq for r in store.pending(10)], [], {})
    assert store.pending(10) == []
    store.ingest([(second.source_id, second), (first.source_id, first)])  # first: a duplicate
    assert [r.event for r in store.pending(10)] == [second]
    assert store.status().as_json()["inbox"] == {"new": 1, "processed": 1}


def test_ingest_is_committed_and_drops_duplicates(store: AgentStore) -> None:
    ev = change()
    first = store.ingest([(ev.source_id, ev), (ev.source_id, ev)])
    assert (first.stored, first.duplicates) == (1, 1)
    assert raw(store.path, "SELECT COUNT(*) FROM inbox") == [(1,)]  # visible to another reader
    assert store.ingest([(ev.source_id, ev)]).duplicates == 1
    assert [r.event for r in store.pending(10)] == [ev]


def test_every_event_kind_round_trips(store: AgentStore) -> None:
    form = FormSubmission(4412345, "f", "sub", "501", NOW, "https://x.example", "1.2.3.4", "UA")
    ignored = Ignored(4412345, "contact.creation", "7", NOW, "unsupported_subscription")
    store.ingest([("a", change()), ("b", form), ("c", ignored)])
    assert [r.event for r in store.pending(10)] == [change(), form, ignored]


def test_contacts_upsert_merges(store: AgentStore) -> None:
    store.upsert_contacts([Contact(1, "c", {"email": "a@x.com"}, meta_lead_id="1" * 15)])
    store.ingest([], [Contact(1, "c", {"phone": "123"}, ad_interaction=True)])
    got = store.contacts(1, ["c", "missing"])
    assert list(got) == ["c"]
    assert got["c"].properties == {"email": "a@x.com", "phone": "123"}
    assert got["c"].meta_lead_id == "1" * 15 and got["c"].ad_interaction


def test_processing_is_atomic_and_never_enqueues_twice(store: AgentStore) -> None:
    store.ingest([("k", change())])
    seq = store.pending(1)[0].seq
    assert store.commit_processed([seq], [outbox()], {("no_lead_id", "ev_2"): 2}) == 1
    assert store.commit_processed([seq], [outbox()], {("no_lead_id", "ev_2"): 1}) == 0
    assert store.pending(10) == []
    assert store.known_event_ids(["e1", "e2"]) == {"e1"}
    status = store.status().as_json()
    assert status["skips"] == {"no_lead_id": 3}
    assert status["outbox"] == {"queued": 1, "sent": 0, "dead": 0}


def test_outbox_states(store: AgentStore, clock: FakeClock) -> None:
    store.commit_processed([], [outbox("a"), outbox("b"), outbox("c"),
                                queue_row("ev_1", "d", "acme", "p", {"event_name": "X"}, "dead",
                                          "no_customer_info", "not sent")], {})
    rows = store.due(clock.epoch(), 10)
    assert [r.event_id for r in rows] == ["a", "b", "c"]
    assert [r.event_id for r in store.due(clock.epoch(), 10, after_seq=rows[0].seq)] == ["b", "c"]
    store.mark_sent([rows[0].seq])
    store.reschedule([rows[1].seq], clock.epoch() + 30, "HTTP 500")
    store.dead([rows[2].seq], "rejected", "Meta said no")
    assert [r.event_id for r in store.due(clock.epoch(), 10)] == []
    assert store.next_due() == clock.epoch() + 30
    assert store.due(clock.epoch() + 30, 10)[0].attempts == 1
    assert store.status().as_json()["deadLetters"] == {"no_customer_info": 1, "rejected": 1}
    assert store.retry_dead("rejected") == 1
    assert store.retry_dead() == 1
    assert store.status().as_json()["outbox"] == {"queued": 3, "sent": 1, "dead": 0}


def test_a_sent_row_is_never_touched_again(store: AgentStore, clock: FakeClock) -> None:
    store.commit_processed([], [outbox("a")], {})
    seq = store.due(clock.epoch(), 1)[0].seq
    store.mark_sent([seq])
    store.dead([seq], "expired", "late")
    store.reschedule([seq], 0, "x")
    assert store.status().as_json()["outbox"] == {"queued": 0, "sent": 1, "dead": 0}


def test_pixel_pause_and_resume(store: AgentStore) -> None:
    store.pause_target("meta", "123", "token", "Meta refused the token", "abc")
    paused = store.paused_targets()["123"]
    assert (paused.reason, paused.token_fingerprint) == ("token", "abc")
    assert store.resume_target("123") and not store.resume_target("123")
    assert store.paused_targets() == {}


def test_sqlite_errors_become_state_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"not a database" * 100)
    with pytest.raises(StateError, match="corrupt"):
        AgentStore(bad)
    store = AgentStore(tmp_path / "ok.db")
    store.close()
    with pytest.raises(StateError):
        store.pending(1)


def test_batched_contact_upserts_merge_like_one_at_a_time(tmp_path: Path,
                                                          clock: FakeClock) -> None:
    """One statement for a batch (repeats inside it and rows already stored included) gives
    what merging the updates one by one gives."""
    first = [Contact(1, "a", {"email": "a@x.com", "city": "Paris"}, meta_lead_id="1" * 15),
             Contact(2, "a", {"email": "other-portal@x.com"})]
    batch = [Contact(1, "a", {"city": "Lyon"}, fbc="fb.1.1.1"),
             Contact(1, "b", {"phone": "123"}),
             Contact(1, "a", {"zip": "69001"}, ad_interaction=True),
             Contact(1, "b", {"phone": "456"}, meta_lead_id="2" * 15)]
    batched = AgentStore(tmp_path / "batched.db", clock=clock)
    single = AgentStore(tmp_path / "single.db", clock=clock)
    try:
        batched.upsert_contacts(first)
        assert batched.ingest([], batch).contacts == 4
        for contact in first + batch:
            single.upsert_contacts([contact])
        for portal in (1, 2):
            assert batched.contacts(portal, ["a", "b"]) == single.contacts(portal, ["a", "b"])
        got = batched.contacts(1, ["a", "b"])
        assert got["a"].properties == {"email": "a@x.com", "city": "Lyon", "zip": "69001"}
        assert (got["a"].meta_lead_id, got["a"].fbc, got["a"].ad_interaction) == (
            "1" * 15, "fb.1.1.1", True)
        assert (got["b"].properties, got["b"].meta_lead_id) == ({"phone": "456"}, "2" * 15)
    finally:
        batched.close()
        single.close()


def test_outbox_keeps_the_payload_json_and_whether_it_is_as_queued(
        store: AgentStore, clock: FakeClock) -> None:
    store.commit_processed([], [outbox("a"), outbox("b"),
                                queue_row("ev_1", "d", "acme", "p", {"event_name": "X"}, "dead",
                                          "no_customer_info", "not sent")], {})
    a, b = store.due(clock.epoch(), 10)
    assert a.body.startswith(b"{") and a.payload == outbox("a").payload
    assert a.checked and b.checked
    store.reschedule([b.seq], clock.epoch(), "HTTP 500")
    assert store.retry_dead("no_customer_info") == 1
    rows = {r.event_id: r for r in store.due(clock.epoch(), 10)}
    assert rows["a"].checked  # untouched since it was checked and queued
    assert not rows["b"].checked and not rows["d"].checked  # failed once / a dead letter back


def test_mark_sent_is_one_statement_and_leaves_the_connection_durable(
        store: AgentStore, clock: FakeClock) -> None:
    store.commit_processed([], [outbox(f"e{i}") for i in range(1200)], {})
    seqs = [r.seq for r in store.due(clock.epoch(), 2000)]
    store.mark_sent(seqs[:1100])
    assert store.status().as_json()["outbox"] == {"queued": 100, "sent": 1100, "dead": 0}
    assert store._conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL again
    store.ingest([("k", change())])
    assert raw(store.path, "SELECT COUNT(*) FROM outbox WHERE status = 'sent'") == [(1100,)]
