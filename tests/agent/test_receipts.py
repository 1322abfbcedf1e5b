"""Meta's ``events_received`` is checked (issue 10, item 14): a ``200`` that acknowledges fewer
events than were sent does not mark the batch sent. The batch is retried with backoff (Meta
deduplicates the events it had) and, out of attempts, dead-lettered ``not_received``; logged."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from agentio import START, T_CREATED, FakeClock, Rig, contact_line, form_line, make_rig
from agentio import write_jsonl as write
from fakes.graph import FakeGraph

from reconciler.services.agent import DEFAULT_POLICY


@pytest.fixture
def rig(tmp_path: Path, graph: FakeGraph, clock: FakeClock) -> Iterator[Rig]:
    r = make_rig(tmp_path, graph.base_url, clock, T_CREATED)
    yield r
    r.close()


def three_forms(rig: Rig, tmp_path: Path) -> None:
    lines = [contact_line(f"50{i}") for i in range(3)]
    lines += [form_line(f"s-{i}", f"50{i}", START - timedelta(minutes=30 - i))
              for i in range(3)]
    rig.agent.ingest_jsonl(write(tmp_path / "forms.jsonl", lines))


def test_a_short_receipt_is_retried_until_meta_has_every_event(
        rig: Rig, graph: FakeGraph, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    three_forms(rig, tmp_path)
    graph.fail_next("short", received=1)
    rig.agent.run(once=True)
    assert len(graph.unique) == 1
    status = rig.agent.status().as_json()
    assert status["outbox"] == {"queued": 3, "sent": 0, "dead": 0} and status["heldOff"]
    assert "Meta received 1 of 3 events" in caplog.text
    rig.clock.advance(seconds=DEFAULT_POLICY.cap)
    rig.agent.run(once=True)
    assert len(graph.unique) == 3 and graph.duplicates == 1  # Meta counts the resent one once
    assert rig.agent.status().as_json()["outbox"] == {"queued": 0, "sent": 3, "dead": 0}


def test_a_receipt_of_zero_forever_ends_as_dead_letters_with_a_reason(
        rig: Rig, graph: FakeGraph, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    three_forms(rig, tmp_path)
    graph.fail_next("short", times=DEFAULT_POLICY.max_attempts, received=0)
    for _ in range(DEFAULT_POLICY.max_attempts):
        rig.agent.run(once=True)
        rig.clock.advance(seconds=DEFAULT_POLICY.cap)
    assert len(graph.requests) == DEFAULT_POLICY.max_attempts and not graph.unique
    status = rig.agent.status().as_json()
    assert status["outbox"] == {"queued": 0, "sent": 0, "dead": 3}
    assert status["deadLetters"] == {"not_received": 3}
    [dead, *_] = rig.store.dead_letters()
    assert dead["error"].startswith("Meta received 0 of 3 events")
    assert "retry-dead --reason not_received" in dead["error"]
    assert "dead-lettered 3 event(s) (not_received)" in caplog.text
    assert rig.store.retry_dead("not_received") == 3  # and they can go again
    rig.agent.run(once=True)
    assert len(graph.unique) == 3
