"""A running agent whose store goes away for a while (a database restart, a lost connection:
``StoreUnavailableError``) logs it once, retries after growing delays, logs once that it works
again and delivers everything: no crash, no line per try (issue 11 item 8)."""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path

import pytest
from agentio import (
    T_CREATED,
    FakeClock,
    applied_state,
    contact_line,
    resolve,
    stage_line,
    write_jsonl,
)
from fakes.graph import FakeGraph

from reconciler.adapters.agentrows import InboxRow
from reconciler.adapters.agentstore import AgentStore
from reconciler.adapters.contacts import EmbeddedContacts
from reconciler.adapters.meta import GraphSender
from reconciler.adapters.networks.meta import MetaDestination
from reconciler.adapters.state.sqlite import SqliteProvider
from reconciler.core.redaction import MASK
from reconciler.errors import StoreUnavailableError
from reconciler.services.agent import Agent, AgentConfig, ingest_jsonl


class GoneForAWhile(AgentStore):
    """The SQLite store, unreachable for its first ``outage`` claims (as a restarting database
    is): each raises what the PostgreSQL store raises then."""

    outage = 3

    def pending(self, limit: int) -> list[InboxRow]:
        if self.outage:
            self.outage -= 1
            raise StoreUnavailableError("lost the connection to the state database "
                                        "postgresql://convctl:***@db/convctl (server closed the "
                                        "connection unexpectedly); retry the command")
        return super().pending(limit)


def test_an_unreachable_store_is_logged_once_retried_and_the_agent_converges(
        tmp_path: Path, clock: FakeClock, graph: FakeGraph,
        caplog: pytest.LogCaptureFixture) -> None:
    state = tmp_path / "state.db"
    applied_state(state, T_CREATED)
    store = GoneForAWhile(state, clock=clock)
    provider = SqliteProvider(state, clock=clock)
    sender = MetaDestination(GraphSender(graph.base_url, "v25.0", timeout=2.0, clock=clock))
    agent = Agent(provider, store, EmbeddedContacts(store), {"meta": sender}, AgentConfig(),
                  clock=clock, sleep=clock.sleep, rand=lambda: 0.5, resolve=resolve)
    at = clock.now - timedelta(minutes=5)
    ingest_jsonl(store, write_jsonl(tmp_path / "feed.jsonl", [
        contact_line("501"), stage_line("501", "customer", at)]))
    try:
        with caplog.at_level(logging.INFO, logger="reconciler.agent"):
            agent.run(max_cycles=5)
    finally:
        sender.close()
        provider.close()
        store.close()
    warned = [r for r in caplog.records if r.levelno >= logging.WARNING]
    # the URL's credentials are masked (``user:***@``, or the log scrub's mask once a
    # process-wide log filter from an earlier test in the session rewrote the record)
    assert [r.getMessage().replace(f"{MASK}@", "convctl:***@") for r in warned] == [
        "agent cycle failed, retrying until it works: lost the connection to the state "
        "database postgresql://convctl:***@db/convctl (server closed the connection "
        "unexpectedly); retry the command"]
    assert "agent cycle works again after 3 failed tries" in caplog.text
    assert clock.sleeps[:3] == [1.0, 2.0, 4.0]  # the agent's backoff policy, no spin
    assert [k[1] for k in graph.unique] == ["Customer"]
