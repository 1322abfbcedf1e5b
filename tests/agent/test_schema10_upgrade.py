"""Schema step 9 -> 10 (issue 17): the outbox's queue index holds only queued rows and dead
letters (a sent row leaves it), its rows kept.

A store written at step 9 keeps every row as it was (queued, sent, dead), its sequence
(a row queued after the step never reuses the seq of one pruned before it), delivers what was
queued under the same event ids, and an inbox row processed again after the step still queues
nothing twice (R16)."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path

from agentio import T_CREATED, FakeClock, contact_line, form_line, make_rig, write_jsonl
from fakes.graph import FakeGraph

from reconciler.adapters.state import sqlite_schema

_ALL = "SELECT * FROM outbox ORDER BY seq"


def _schema9_copy(source: Path, target: Path, sequence: int) -> None:
    """A state file at schema 9 holding ``source``'s live state and outbox, its outbox
    sequence at ``sequence`` (as if rows after the last one had been pruned)."""
    conn = sqlite3.connect(target, isolation_level=None)
    for step in sqlite_schema.MIGRATIONS[:9]:
        for statement in step:
            conn.execute(statement)
    conn.execute("PRAGMA user_version = 9")
    conn.execute("ATTACH DATABASE ? AS src", (str(source),))
    for table in ("accounts", "events", "inbox", "contacts", "agent_cursor"):
        conn.execute(f"DELETE FROM {table}")
        conn.execute(f"INSERT INTO {table} SELECT * FROM src.{table}")
    columns = ", ".join(r[1] for r in conn.execute("PRAGMA table_info(outbox)"))
    conn.execute(f"INSERT INTO outbox ({columns}) SELECT {columns} FROM src.outbox")
    conn.execute("UPDATE sqlite_sequence SET seq = ? WHERE name = 'outbox'", (sequence,))
    conn.execute("DETACH DATABASE src")
    conn.close()


def _rows(path: Path) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(_ALL).fetchall()
    finally:
        conn.close()


def test_the_outbox_keeps_its_rows_sequence_and_dedup_across_the_step(
        tmp_path: Path, graph: FakeGraph, clock: FakeClock) -> None:
    before = tmp_path / "before"
    before.mkdir()
    old = make_rig(before, None, clock, T_CREATED, sender=object())
    lines = [contact_line("501")] + [form_line(f"s-{i}", "501", clock.now - timedelta(minutes=i))
                                     for i in range(4)]
    old.agent.ingest_jsonl(write_jsonl(before / "feed.jsonl", lines))
    old.agent.process_inbox()
    rows = old.store.due(clock.epoch(), 100)
    old.store.mark_sent([rows[0].seq])
    old.store.dead([rows[1].seq], "rejected", "refused by the network")
    queued = {r.event_id for r in rows[2:]}
    old.close()
    after = tmp_path / "after"
    after.mkdir()
    _schema9_copy(before / "state.db", after / "state.db", sequence=rows[-1].seq + 100)
    at_step_9 = _rows(after / "state.db")

    rig = make_rig(after, graph.base_url, clock, T_CREATED)
    try:
        conn = rig.store._conn
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        migrated = conn.execute(_ALL).fetchall()
        indexes = {r[1]: r[2] for r in conn.execute("PRAGMA index_list(outbox)")}
        rig.agent.run(once=True)
        conn.execute("UPDATE agent_cursor SET seq = 0")  # processed again, as after a crash
        again = rig.agent.process_inbox()
        rig.agent.ingest_jsonl(write_jsonl(after / "more.jsonl",
                                           [form_line("s-new", "501", clock.now)]))
        rig.agent.process_inbox()
        newest = conn.execute("SELECT MAX(seq) FROM outbox").fetchone()[0]
        status = rig.agent.status().as_json()["outbox"]
    finally:
        rig.close()
    assert version == sqlite_schema.SCHEMA_VERSION == 10
    assert migrated == at_step_9 and len(migrated) == 4
    assert indexes == {"outbox_dead": 0, "outbox_queued": 0, "sqlite_autoindex_outbox_1": 1}
    assert graph.event_ids() == queued and graph.duplicates == 0
    assert (again.processed, again.queued, again.skips["duplicate"]) == (4, 0, 4)
    assert newest == rows[-1].seq + 101
    assert status == {"queued": 1, "sent": 3, "dead": 1}


def test_the_step_refuses_nothing_on_an_empty_outbox(tmp_path: Path) -> None:
    """A store that never queued anything (no sequence row yet) migrates too."""
    path = tmp_path / "state.db"
    conn = sqlite3.connect(path, isolation_level=None)
    for step in sqlite_schema.MIGRATIONS[:9]:
        for statement in step:
            conn.execute(statement)
    conn.execute("PRAGMA user_version = 9")
    conn.close()
    sqlite_schema.connect(path).close()
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 10
        assert conn.execute("SELECT COUNT(*) FROM outbox").fetchone()[0] == 0
    finally:
        conn.close()
