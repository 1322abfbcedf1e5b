"""Schema step 8 -> 9 (issue 16): a store written before networks existed keeps its queue.

The outbox gains ``destination`` (every old row is Meta's) and its ``pixel_id`` becomes
``target``; paused pixels become paused targets. A queued row from before the step is delivered
by the new agent to Meta, under its same event id, and a pixel paused before it is still paused
(and resumes with ``agent resume PIXEL``)."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path

from agentio import ACME_PIXEL, T_CREATED, FakeClock, contact_line, form_line, make_rig, write_jsonl
from fakes.graph import FakeGraph

from reconciler.adapters.state import sqlite_schema

_V8_COLUMNS = ("conversion_event_id, event_id, account, {pixel}, event_name, event_time, "
               "payload, status, attempts, next_attempt_at, reason, last_error, created_at, "
               "updated_at, key_mask")


def _schema8_copy(source: Path, target: Path) -> None:
    """A state file at schema 8 holding ``source``'s live state and outbox (as 8 kept them)."""
    conn = sqlite3.connect(target, isolation_level=None)
    for step in sqlite_schema.MIGRATIONS[:8]:
        for statement in step:
            conn.execute(statement)
    conn.execute("PRAGMA user_version = 8")
    conn.execute("ATTACH DATABASE ? AS src", (str(source),))
    for table in ("accounts", "events", "inbox", "contacts", "agent_cursor"):
        conn.execute(f"DELETE FROM {table}")
        conn.execute(f"INSERT INTO {table} SELECT * FROM src.{table}")
    conn.execute(f"INSERT INTO outbox ({_V8_COLUMNS.format(pixel='pixel_id')}) "
                 f"SELECT {_V8_COLUMNS.format(pixel='target')} FROM src.outbox")
    conn.execute("INSERT INTO paused_pixels (pixel_id, reason, message, token_fingerprint, "
                 "paused_at) VALUES ('999000111222333', 'token', 'Meta refused the token', "
                 "'fp', '2026-11-28T09:00:00+00:00')")
    conn.execute("DETACH DATABASE src")
    conn.close()


def test_rows_queued_before_the_step_are_delivered_after_it(
        tmp_path: Path, graph: FakeGraph, clock: FakeClock) -> None:
    before = tmp_path / "before"
    before.mkdir()
    old = make_rig(before, None, clock, T_CREATED, sender=object())
    lines = [contact_line("501")] + [form_line(f"s-{i}", "501", clock.now - timedelta(minutes=i))
                                     for i in range(3)]
    old.agent.ingest_jsonl(write_jsonl(before / "feed.jsonl", lines))
    old.agent.process_inbox()
    queued = {r.event_id for r in old.store.due(clock.epoch(), 100)}
    old.close()
    assert len(queued) == 3
    after = tmp_path / "after"
    after.mkdir()
    _schema8_copy(before / "state.db", after / "state.db")

    rig = make_rig(after, graph.base_url, clock, T_CREATED)
    try:
        version = rig.store._conn.execute("PRAGMA user_version").fetchone()[0]
        paused = rig.store.paused_targets()
        rig.agent.run(once=True)
        status = rig.agent.status().as_json()
    finally:
        rig.close()
    assert version == sqlite_schema.SCHEMA_VERSION
    assert graph.event_ids() == queued and graph.duplicates == 0
    assert {pixel for pixel, _, _ in graph.unique} == {ACME_PIXEL}
    assert status["targets"] == {ACME_PIXEL: {"network": "meta", "queued": 0, "sent": 3,
                                              "dead": 0}}
    assert status["pixels"] == {ACME_PIXEL: {"queued": 0, "sent": 3, "dead": 0}}
    assert [(p.target, p.destination, p.reason) for p in paused.values()] == [
        ("999000111222333", "meta", "token")]


def test_a_postgresql_store_at_step_5_keeps_its_queue_and_pauses(postgres_url: str) -> None:
    """PostgreSQL's step 6 is the same: the queued row comes out of ``due`` as Meta's, keyed by
    its pixel, and the paused pixel is a paused Meta target."""
    import psycopg

    from reconciler.adapters.agentstore_pg import PostgresAgentStore
    from reconciler.adapters.state import postgres_schema

    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(postgres_schema._VERSION_TABLE)
        for version, (description, statements) in enumerate(postgres_schema.MIGRATIONS[:5], 1):
            for statement in statements:
                conn.execute(statement)
            conn.execute("INSERT INTO convctl_schema (version, description) VALUES (%s, %s)",
                         (version, description))
        conn.execute(
            "INSERT INTO agent_outbox (conversion_event_id, event_id, account, pixel_id, "
            "event_name, event_time, payload, status, next_attempt_at, created_at, updated_at, "
            "key_mask) VALUES ('ev_1', 'e1', 'acme', %s, 'Lead', 1, '{\"event_id\":\"e1\"}', "
            "'queued', 0, now(), now(), 1)", (ACME_PIXEL,))
        conn.execute("INSERT INTO agent_paused_pixels (pixel_id, reason, message, "
                     "token_fingerprint, paused_at) VALUES (%s, 'token', 'refused', 'fp', "
                     "'2026-11-28T09:00:00+00:00')", (ACME_PIXEL,))
    store = PostgresAgentStore(postgres_url)
    try:
        [row] = store.due(10.0, 10)
        paused = store.paused_targets()
        store.mark_sent([row.seq])
        store.release_claims("outbox")  # the page's settlements are committed with it
        status = store.status()
    finally:
        store.close()
    assert (row.event_id, row.destination, row.target, row.body) == (
        "e1", "meta", ACME_PIXEL, b'{"event_id":"e1"}')
    assert [(p.target, p.destination, p.reason) for p in paused.values()] == [
        (ACME_PIXEL, "meta", "token")]
    assert status.targets == {("meta", ACME_PIXEL): {"queued": 0, "sent": 1, "dead": 0}}
