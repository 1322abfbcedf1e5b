"""``convctl state copy`` moves the agent's queues too (issue 11 item 6): inbox rows processed
or not, outbox rows queued, sent and dead (with their reasons and match-key masks), contacts,
skip and dropped-field counts, paused targets, holds and the coverage buckets; SQLite ->
PostgreSQL -> SQLite, counts printed, and each target's ``agent status`` the same as its
source's, its pending rows still pending."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from agentio import applied_state
from click.testing import CliRunner, Result

from reconciler.adapters import agentstore_copy
from reconciler.cli.main import cli
from reconciler.core.coverage import key_mask
from reconciler.core.crm import Contact, StageChange, stage_source_id
from reconciler.services.agent_chunk import queue_row
from reconciler.services.agent_setup import AgentSettings, open_store

NOW = datetime.now(UTC).replace(microsecond=0)


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def fill(url: str) -> None:
    """A store with a bit of everything the agent keeps."""
    store = open_store(AgentSettings(state=url))
    try:
        events = [StageChange(4412345, str(n), "customer", NOW - timedelta(minutes=n),
                              stage_source_id(4412345, str(n), "customer",
                                              NOW - timedelta(minutes=n))) for n in range(6)]
        store.ingest([(e.source_id, e) for e in events],
                     [Contact(4412345, "1", {"email": "a@x.com"}, meta_lead_id="1" * 15)],
                     {"invalid_ip_address": 2})
        done = store.pending(4)
        payload = {"event_name": "Purchase", "event_time": int(NOW.timestamp()) - 60,
                   "user_data": {"em": ["h"], "ph": ["h"]}}  # its key mask travels too
        rows = [queue_row("ev_1", f"e{n}", "acme", "123456789012345", {**payload,
                                                                      "event_id": f"e{n}"})
                for n in range(4)]
        store.commit_processed([r.seq for r in done], [*rows, queue_row(
            "ev_2", "e9", "acme", "123456789012345", payload, "dead", "no_customer_info",
            "not sent")], {("no_lead_id", "ev_3"): 3})
        sent, retried, rejected, _ = store.due(time.time() + 1, 10)
        store.mark_sent([sent.seq])
        store.reschedule([retried.seq], time.time() + 600, "HTTP 500")
        store.dead([rejected.seq], "rejected", "Meta said no")
        store.pause_target("meta", "999", "token", "Meta refused the token", "fp")
        store.hold("inbox", "contacts_refused", "HubSpot said 401")
        store.release_claims()
    finally:
        store.close()


def status(url: str) -> dict[str, object]:
    shown = run("agent", "status", "--format", "json", "--state", url)
    assert shown.exit_code == 0, shown.output
    data: dict[str, object] = orjson.loads(shown.output)
    return data


def copy(src: str, dst: str) -> Result:
    copied = run("state", "copy", src, dst)
    assert copied.exit_code == 0, copied.output
    for line in ("inbox pending  2", "inbox done     4", "outbox queued  2", "outbox sent    1",
                 "outbox dead    2", "contacts       1", "skips          1",
                 "ingest drops   1", "paused targets 1", "agent holds    1",
                 "match coverage 1"):
        assert f"  {line}\n" in copied.output, copied.output
    queues = agentstore_copy.read(dst)
    assert queues.same(agentstore_copy.read(src))
    assert {r[15] for r in queues.rows["outbox"]} == {key_mask({"em": 1, "ph": 1})}
    assert {(r[3], r[4]) for r in queues.rows["outbox"]} == {("meta", "123456789012345")}
    assert status(dst) == status(src)
    return copied


def test_queues_go_to_postgresql_and_back(tmp_path: Path, postgres_url: str,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CONVCTL_AGENT_STORE", raising=False)
    source = f"sqlite:///{tmp_path / 'a.db'}"
    applied_state(tmp_path / "a.db", NOW - timedelta(days=1))
    fill(source)
    copy(source, postgres_url)
    back = f"sqlite:///{tmp_path / 'c.db'}"
    copy(postgres_url, back)
    for url in (postgres_url, back):  # the copy's pending rows are still to be processed
        store = open_store(AgentSettings(state=url))
        try:
            assert [r.event.contact_id for r in store.pending(10)] == ["4", "5"]
            assert store.contacts(4412345, ["1"])["1"].meta_lead_id == "1" * 15
        finally:
            store.close()


def test_a_target_holding_agent_queues_is_refused_and_left_alone(
        tmp_path: Path, postgres_url: str) -> None:
    source = f"sqlite:///{tmp_path / 'a.db'}"
    applied_state(tmp_path / "a.db", NOW - timedelta(days=1))
    store = open_store(AgentSettings(state=postgres_url))
    store.pause_target("meta", "999", "token", "refused", None)
    store.close()
    refused = run("state", "copy", source, postgres_url)
    assert refused.exit_code == 1 and "already holds agent queues (1 paused targets)" in (
        refused.output)
    assert "***" in refused.output or "@" not in refused.output
    assert run("events", "list", "--state", postgres_url).output.count("acme/") == 0
