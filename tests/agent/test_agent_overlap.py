"""A running agent delivers what earlier cycles queued while it processes the inbox (issue 17
item 3): the wait for the network overlaps with the matching, and nothing is lost or sent twice.
``--once`` keeps its order: it processes, then delivers what it processed."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from agentio import (
    START,
    T_CREATED,
    FakeClock,
    contact_line,
    form_line,
    make_rig,
    resolve,
    stage_line,
    write_jsonl,
)
from fakes.graph import FakeGraph

from reconciler.adapters.contacts import EmbeddedContacts
from reconciler.adapters.meta import GraphSender
from reconciler.adapters.networks.meta import MetaDestination
from reconciler.core.crm import Contact
from reconciler.core.live import LiveAccount
from reconciler.services.agent import Agent, AgentConfig


class WaitsForASend:
    """The contact source of processing, which waits (at most 5 s) until the fake Graph has
    had a request, and notes how many it had when processing went on."""

    def __init__(self, inner: EmbeddedContacts, graph: FakeGraph) -> None:
        self.inner, self.graph = inner, graph
        self.requests_seen: list[int] = []

    def fetch(self, account: LiveAccount, contact_ids: Sequence[str],
              properties: Iterable[str] = ()) -> dict[str, Contact]:
        deadline = time.monotonic() + 5.0
        while not self.graph.requests and time.monotonic() < deadline:
            time.sleep(0.01)
        self.requests_seen.append(len(self.graph.requests))
        return self.inner.fetch(account, contact_ids, properties)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def at(minutes_ago: float) -> datetime:
    return START - timedelta(minutes=minutes_ago)


def test_a_running_agent_sends_the_queued_rows_while_it_processes_new_ones(
        graph: FakeGraph, clock: FakeClock, tmp_path: Path) -> None:
    rig = make_rig(tmp_path, graph.base_url, clock, T_CREATED)
    sender = GraphSender(graph.base_url, "v25.0", timeout=2.0, clock=clock)
    contacts = WaitsForASend(EmbeddedContacts(rig.store), graph)
    agent = Agent(rig.provider, rig.store, contacts, {"meta": MetaDestination(sender)},
                  AgentConfig(), clock=clock, sleep=clock.sleep, rand=lambda: 0.5,
                  resolve=resolve)
    try:
        first = write_jsonl(tmp_path / "first.jsonl", [
            contact_line("501"), stage_line("501", "customer", at(50)),
            form_line("s-1", "501", at(45))])
        rig.agent.ingest_jsonl(first)
        rig.agent.process_inbox()  # queued, not sent yet
        assert rig.agent.status().as_json()["outbox"]["queued"] == 2 and not graph.requests
        second = write_jsonl(tmp_path / "second.jsonl", [
            contact_line("502"), stage_line("502", "customer", at(40))])
        agent.ingest_jsonl(second)
        agent.run(max_cycles=1)
        assert contacts.requests_seen == [1]  # the first rows went out while it processed
        agent.run(max_cycles=3)
        status = agent.status().as_json()
        assert status["outbox"] == {"queued": 0, "sent": 3, "dead": 0}
        assert status["inbox"]["new"] == 0
        assert len(graph.unique) == 3 and all(n == 1 for n in graph.receipts.values())
    finally:
        sender.close()
        rig.close()


def test_once_still_delivers_what_it_processed(graph: FakeGraph, clock: FakeClock,
                                               tmp_path: Path) -> None:
    rig = make_rig(tmp_path, graph.base_url, clock, T_CREATED)
    try:
        rig.agent.ingest_jsonl(write_jsonl(tmp_path / "feed.jsonl", [
            contact_line("501"), stage_line("501", "customer", at(50))]))
        rig.agent.run(once=True)
        assert rig.agent.status().as_json()["outbox"] == {"queued": 0, "sent": 1, "dead": 0}
        assert len(graph.unique) == 1
    finally:
        rig.close()
