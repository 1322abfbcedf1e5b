"""``agent run --dry-run FILE`` leaves the store exactly as it was (issue 12, item 1.2): the same
SQL dump before and after, so a later real run still has everything to send; the requests go to
the file, with no token in it."""

from __future__ import annotations

import json
import sqlite3
from datetime import timedelta
from pathlib import Path

from agentio import (
    ACME_PIXEL,
    START,
    T_CREATED,
    FakeClock,
    applied_state,
    contact_line,
    form_line,
    make_rig,
    stage_line,
    write_jsonl,
)
from fakes.graph import FakeGraph

from reconciler.adapters.agentstore import AgentStore
from reconciler.services.agent_setup import AgentSettings, open_agent


def dump(path: Path) -> list[str]:
    conn = sqlite3.connect(path)
    try:
        return list(conn.iterdump())
    finally:
        conn.close()


def busy_store(tmp_path: Path, clock: FakeClock) -> Path:
    """A state whose store holds new inbox rows (one too old to send: a dead letter in the
    making), queued and dead outbox rows, skip counts and a paused pixel."""
    state = tmp_path / "state.db"
    applied_state(state, T_CREATED)
    old = START - timedelta(days=8)
    lines = [contact_line("501"), contact_line("502", lead=None),
             stage_line("501", "customer", START - timedelta(minutes=50)),
             stage_line("502", "customer", START - timedelta(minutes=49)),
             form_line("s-1", "501", START - timedelta(minutes=45))]
    store = AgentStore(state, clock=clock)
    try:
        rig = make_rig(tmp_path, None, clock, T_CREATED, sender=object())
        rig.agent.ingest_jsonl(write_jsonl(tmp_path / "a.jsonl", lines[:3]))
        rig.agent.process_inbox()  # one queued row, skip counts, the cursor moved
        rig.close()
        write_jsonl(tmp_path / "b.jsonl", [*lines[3:], stage_line("501", "1452450030", old)])
        rig = make_rig(tmp_path, None, clock, T_CREATED, sender=object())
        rig.agent.ingest_jsonl(tmp_path / "b.jsonl")  # three more, not processed yet
        rig.close()
        store.pause_target("meta", ACME_PIXEL, "token", "Meta refused the token", "abc")
    finally:
        store.close()
    return state


def test_a_dry_run_changes_nothing_in_the_store(tmp_path: Path, clock: FakeClock,
                                                graph: FakeGraph) -> None:
    state = busy_store(tmp_path, clock)
    before = dump(state)
    out = tmp_path / "dry.jsonl"
    settings = AgentSettings(state=f"sqlite:///{state}", dry_run=out)
    for _ in range(2):  # twice: the second run still sees everything to send
        handle = open_agent(settings, clock=clock, sleep=clock.sleep)
        try:
            handle.agent.run(once=True)
            assert handle.dry_run is not None and handle.dry_run.events == 2
        finally:
            handle.close()
        assert dump(state) == before
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert [(x["pixelId"], len(x["body"]["data"])) for x in lines] == [(ACME_PIXEL, 2)] * 2
    assert "token" not in out.read_text().lower() and not graph.requests
    real = make_rig(tmp_path, graph.base_url, clock, T_CREATED)
    try:
        assert real.agent.status().as_json()["inbox"] == {"new": 3, "processed": 1}
        real.store.resume_target(ACME_PIXEL)
        real.agent.run(once=True)
        assert real.agent.status().as_json()["inbox"] == {"new": 0, "processed": 4}
    finally:
        real.close()
    assert len(graph.unique) == 2


def test_the_cli_dry_run_says_what_it_wrote_and_keeps_the_store(
        tmp_path: Path, clock: FakeClock) -> None:
    from click.testing import CliRunner

    from reconciler.cli.main import cli

    state = busy_store(tmp_path, clock)
    before = dump(state)
    out = tmp_path / "dry.jsonl"
    result = CliRunner().invoke(cli, ["agent", "run", "--once", "--dry-run", str(out),
                                      "--state", f"sqlite:///{state}"])
    assert result.exit_code == 0, result.output
    assert result.stdout == (f"Dry run: 1 request(s) with 2 event(s) written to {out}; "
                             "the store is left as it was.\n")
    assert dump(state) == before


def test_a_running_dry_run_sees_what_the_store_takes_in_meanwhile(
        tmp_path: Path, clock: FakeClock) -> None:
    """``convctl serve --dry-run`` stores ingested events in the store; its agent sees them."""
    state = busy_store(tmp_path, clock)
    out = tmp_path / "dry.jsonl"
    handle = open_agent(AgentSettings(state=f"sqlite:///{state}", dry_run=out), clock=clock,
                        sleep=clock.sleep)
    try:
        handle.agent.run(once=True)
        assert handle.dry_run is not None and handle.dry_run.events == 2
        real = make_rig(tmp_path, None, clock, T_CREATED, sender=object())
        try:
            real.agent.ingest_jsonl(write_jsonl(tmp_path / "late.jsonl", [
                contact_line("503"), form_line("s-late", "503", START)]))
        finally:
            real.close()
        before = dump(state)
        handle.agent.run(once=True)
        assert handle.dry_run.events == 3 and handle.dry_run.requests == 2
    finally:
        handle.close()
    assert dump(state) == before
