"""The agent end to end: shipped manifests applied, JSONL ingested, delivered to the strict fake
Graph API; exactly once, hashed, with retries, pauses, splits, expiry and R19 honoured."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from agentio import (
    ACME_PIXEL,
    DEMO_FORM,
    NEWSLETTER_FORM,
    START,
    T_CREATED,
    TOKENS,
    FakeClock,
    Rig,
    contact_line,
    form_line,
    make_rig,
    stage_line,
    write_jsonl,
)
from fakes.graph import FakeGraph

from reconciler.core.live import EventWrite
from reconciler.errors import UsageError
from reconciler.services.agent import AgentConfig
from reconciler.services.agent_chunk import queue_row
from reconciler.services.delivery import RECHECK_SECONDS


@pytest.fixture
def rig(tmp_path: Path, graph: FakeGraph, clock: FakeClock) -> Iterator[Rig]:
    r = make_rig(tmp_path, graph.base_url, clock, T_CREATED)
    yield r
    r.close()


def at(minutes_ago: float) -> object:
    return START - timedelta(minutes=minutes_ago)


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def feed(tmp_path: Path) -> Path:
    lines = [contact_line("501"), contact_line("502", lead=None), contact_line("503", ad=True),
             contact_line("504", consent="no"),
             stage_line("501", "customer", at(50)), stage_line("502", "customer", at(49)),
             stage_line("503", "1452450030", at(48)), stage_line("501", "1452450030", at(47)),
             stage_line("501", "opportunity", at(46)),
             form_line("s-1", "501", at(45)), form_line("s-2", "504", at(44)),
             form_line("s-3", "501", at(43), form=NEWSLETTER_FORM)]
    return write_jsonl(tmp_path / "feed.jsonl", lines)


def names(graph: FakeGraph) -> list[str]:
    return sorted(key[1] for key in graph.unique)


def test_end_to_end_the_right_events_arrive_hashed_exactly_once(
        rig: Rig, graph: FakeGraph, tmp_path: Path) -> None:
    report = rig.agent.ingest_jsonl(feed(tmp_path))
    assert (report.stored, report.contacts, report.errors) == (8, 4, [])
    rig.agent.run(once=True)
    assert names(graph) == ["Customer", "Demo booked", "Lead"]
    assert all(n == 1 for n in graph.receipts.values())
    lead = next(p for k, p in graph.payloads.items() if k[1] == "Lead")
    assert lead["user_data"]["em"] == sha("person501@example.com")
    assert lead["user_data"]["fn"] == sha("valéry") and lead["user_data"]["ln"] == sha("obrien")
    assert lead["user_data"]["ph"] == sha("16505551201")
    assert lead["user_data"]["client_ip_address"] == "203.0.113.7"
    assert lead["custom_data"] == {"value": 40, "currency": "eur", "predictive_lead_score": 42}
    customer = next(p for k, p in graph.payloads.items() if k[1] == "Customer")
    assert customer["user_data"] == {"lead_id": 123456789012345}
    assert customer["action_source"] == "system_generated"
    status = rig.agent.status().as_json()
    assert status["outbox"] == {"queued": 0, "sent": 3, "dead": 0}
    assert status["pixels"] == {ACME_PIXEL: {"queued": 0, "sent": 3, "dead": 0}}
    assert status["skips"]["no_lead_id"] == 1 and status["skips"]["no_consent"] == 1
    assert status["skips"]["no_ad_interaction"] == 1 and status["skips"]["disabled"] == 3
    assert status["skips"]["stage_not_selected"] >= 1


def test_duplicates_ingested_twice_are_sent_once(rig: Rig, graph: FakeGraph,
                                                  tmp_path: Path) -> None:
    path = feed(tmp_path)
    rig.agent.ingest_jsonl(path)
    again = rig.agent.ingest_jsonl(path)
    assert (again.stored, again.duplicates) == (0, 8)
    rig.agent.run(once=True)
    rig.agent.ingest_jsonl(path)
    rig.agent.run(once=True)
    assert len(graph.unique) == 3 and graph.duplicates == 0


def test_bad_lines_are_reported_with_their_number_and_skipped(rig: Rig, tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "mixed.jsonl", [
        contact_line("501"), "{not json", {"type": "meeting"},
        stage_line("501", "customer", at(5)), {"type": "contact", "portalId": 1}])
    report = rig.agent.ingest_jsonl(path)
    assert [n for n, _ in report.errors] == [2, 3, 5]
    assert (report.stored, report.contacts) == (1, 1)
    assert "person501" not in json.dumps(report.errors).lower()


def test_retries_on_500_and_613_then_success(rig: Rig, graph: FakeGraph,
                                             tmp_path: Path) -> None:
    rig.agent.ingest_jsonl(feed(tmp_path))
    graph.fail_next("500")
    rig.agent.run(once=True)
    assert not graph.unique
    assert rig.agent.status().as_json()["heldOff"]
    graph.fail_next("613", retry_after=120)
    rig.clock.advance(seconds=5)
    rig.agent.run(once=True)
    due = rig.store.next_due()
    assert due is not None and due >= rig.clock.epoch() + 120  # Retry-After honoured
    rig.clock.advance(seconds=60)
    rig.agent.run(once=True)
    assert not graph.unique  # not before Retry-After
    rig.clock.advance(seconds=61)
    rig.agent.run(once=True)
    assert names(graph) == ["Customer", "Demo booked", "Lead"]
    assert all(n == 1 for n in graph.receipts.values())


def test_run_loop_sleeps_through_backoff_in_zero_time(rig: Rig, graph: FakeGraph,
                                                      tmp_path: Path) -> None:
    rig.agent.ingest_jsonl(feed(tmp_path))
    graph.fail_next("500", 3)
    rig.agent.run(max_cycles=40)
    assert len(graph.unique) == 3
    assert sum(rig.clock.sleeps) > 0


def test_token_error_pauses_the_pixel_until_the_token_changes(
        rig: Rig, graph: FakeGraph, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    rig.agent.ingest_jsonl(feed(tmp_path))
    graph.fail_next("190")
    rig.agent.run(once=True)
    status = rig.agent.status().as_json()
    assert list(status["paused"]) == [ACME_PIXEL]
    assert "env ACME_META_TOKEN" in status["paused"][ACME_PIXEL]["message"]
    assert "paused" in caplog.text and TOKENS["ACME_META_TOKEN"] not in caplog.text
    before = len(graph.requests)
    rig.agent.run(once=True)
    assert len(graph.requests) == before and rig.agent.status().as_json()["outbox"]["queued"] == 3
    graph.token = "rotated-token"
    monkeypatch.setitem(TOKENS, "ACME_META_TOKEN", "rotated-token")
    rig.agent.run(once=True)
    assert not graph.unique  # a paused pixel's token is read again every RECHECK_SECONDS
    rig.clock.advance(seconds=RECHECK_SECONDS)
    rig.agent.run(once=True)
    assert len(graph.unique) == 3 and not rig.agent.status().as_json()["paused"]


def test_one_invalid_event_does_not_sink_its_neighbours(rig: Rig, graph: FakeGraph,
                                                        tmp_path: Path) -> None:
    lines = [contact_line(f"6{i:02d}") for i in range(9)]
    lines += [form_line(f"s{i}", f"6{i:02d}", at(30 - i)) for i in range(9)]
    rig.agent.ingest_jsonl(write_jsonl(tmp_path / "f.jsonl", lines))
    rig.agent.process_inbox()
    # A row queued by an agent that did not check IP addresses at ingest yet: Meta refuses it.
    row = rig.store.due(rig.clock.epoch(), 100)[4]
    bad = {**row.payload, "event_id": "legacy-1",
           "user_data": {**row.payload["user_data"], "client_ip_address": "999.1.1.1"}}
    rig.store.commit_processed([], [queue_row(row.conversion_event_id, "legacy-1", row.account,
                                              row.target, bad)], {})
    rig.agent.run(once=True)
    assert len(graph.unique) == 9
    dead = rig.store.dead_letters()
    assert len(dead) == 1 and dead[0]["reason"] == "rejected"
    assert "client_ip_address is not an IP address" in dead[0]["error"]
    assert "999.1.1.1" not in dead[0]["error"]
    assert rig.agent.status().as_json()["deadLetters"] == {"rejected": 1}


def test_events_expire_before_seven_days(rig: Rig, graph: FakeGraph, tmp_path: Path) -> None:
    rig.agent.ingest_jsonl(feed(tmp_path))
    rig.agent.process_inbox()
    rig.clock.advance(days=7)
    rig.agent.deliver_once()
    assert not graph.requests
    assert rig.agent.status().as_json()["deadLetters"] == {"expired": 3}


def test_retry_that_would_land_after_expiry_dead_letters_expired(
        rig: Rig, graph: FakeGraph, tmp_path: Path) -> None:
    rig.agent.ingest_jsonl(feed(tmp_path))
    rig.agent.process_inbox()
    rig.clock.advance(days=6, hours=22)
    graph.fail_next("613", retry_after=3600)
    rig.agent.deliver_once()
    assert rig.agent.status().as_json()["deadLetters"] == {"expired": 3}


def _switch(rig: Rig, name: str, *, enabled: bool) -> None:
    """Switch an acme conversion event on or off in the live state (R19)."""
    event = next(e for e in rig.provider.list_events("acme") if e.name == name)
    spec = event.spec.model_copy(update={"enabled": enabled})
    rig.provider.update_event(event.id, EventWrite(account="acme", name=name, spec=spec),
                              event.version)


def test_disabling_an_event_stops_its_sending_at_once(rig: Rig, graph: FakeGraph,
                                                      tmp_path: Path) -> None:
    rig.agent.ingest_jsonl(feed(tmp_path))
    rig.agent.process_inbox()
    _switch(rig, "demo-request", enabled=False)
    funnel = next(e for e in rig.provider.list_events("acme") if e.name == "funnel")
    rig.provider.delete_event(funnel.id)
    rig.agent.deliver_once()
    assert names(graph) == ["Demo booked"]
    assert rig.agent.status().as_json()["deadLetters"] == {"deleted": 1, "disabled": 1}


def test_batches_of_at_most_batch_size_per_pixel(tmp_path: Path, graph: FakeGraph,
                                                 clock: FakeClock) -> None:
    rig = make_rig(tmp_path, graph.base_url, clock, T_CREATED, batch_size=4)
    try:
        lines = [contact_line("700")]
        lines += [stage_line("700", s, at(40 - i)) for i, s in
                  enumerate(["lead", "marketingqualifiedlead", "salesqualifiedlead", "customer"])]
        lines += [form_line(f"b{i}", "700", at(30 - i)) for i in range(6)]
        rig.agent.ingest_jsonl(write_jsonl(tmp_path / "b.jsonl", lines))
        rig.agent.run(once=True)
    finally:
        rig.close()
    assert [r.events for r in graph.requests] == [4, 4, 2]
    assert len(graph.unique) == 10


def test_retry_dead_requeues_by_reason(rig: Rig, graph: FakeGraph, tmp_path: Path) -> None:
    rig.agent.ingest_jsonl(feed(tmp_path))
    rig.agent.process_inbox()
    _switch(rig, "demo-request", enabled=False)
    rig.agent.deliver_once()
    assert rig.agent.retry_dead("expired") == 0
    _switch(rig, "demo-request", enabled=True)
    assert rig.agent.retry_dead("disabled") == 1
    rig.agent.deliver_once()
    assert names(graph) == ["Customer", "Demo booked", "Lead"]


def test_form_with_garbage_contact_data_is_dead_lettered_not_crashing(
        rig: Rig, graph: FakeGraph, tmp_path: Path) -> None:
    odd = contact_line("800", email="", phone="n/a", firstname="!!", lastname="??",
                       country="Atlantis")
    line = form_line("g-1", "800", at(10))
    del line["ipAddress"]  # user agent alone is not enough customer information
    rig.agent.ingest_jsonl(write_jsonl(tmp_path / "g.jsonl", [odd, line]))
    rig.agent.run(once=True)
    assert not graph.unique
    assert rig.agent.status().as_json()["deadLetters"] == {"no_customer_info": 1}


def test_demo_form_constant_is_the_manifest_one() -> None:
    assert DEMO_FORM.startswith("0b8f6c9e")


def test_webhook_and_jsonl_copies_of_one_change_are_sent_once(
        rig: Rig, graph: FakeGraph, tmp_path: Path) -> None:
    from reconciler.core.crm import to_epoch_ms
    from reconciler.core.crm_hubspot import parse_webhook

    when = START - timedelta(minutes=20)
    body = [{"eventId": 1, "subscriptionId": 9, "portalId": 4412345, "appId": 1,
             "occurredAt": to_epoch_ms(when), "subscriptionType": "contact.propertyChange",
             "attemptNumber": 0, "objectId": 501, "propertyName": "lifecyclestage",
             "propertyValue": "customer"},
            {"eventId": 2, "subscriptionId": 8, "portalId": 4412345, "appId": 1,
             "occurredAt": to_epoch_ms(when), "subscriptionType": "contact.creation",
             "attemptNumber": 0, "objectId": 501}]
    rig.agent.ingest_jsonl(write_jsonl(tmp_path / "c.jsonl", [contact_line("501")]))
    assert rig.agent.ingest_webhook(parse_webhook(json.dumps(body))).stored == 2
    assert rig.agent.ingest_webhook(parse_webhook(json.dumps(body))).duplicates == 2
    rig.agent.ingest_jsonl(write_jsonl(tmp_path / "s.jsonl", [stage_line("501", "customer",
                                                                          when)]))
    rig.agent.run(once=True)
    assert names(graph) == ["Customer"] and graph.duplicates == 0
    skips = rig.agent.status().as_json()["skips"]
    assert skips["ignored"] == 1 and skips["duplicate"] == 1


def test_retention_drops_old_processed_and_sent_rows_only(rig: Rig, graph: FakeGraph,
                                                          tmp_path: Path) -> None:
    """Once the retention has passed, processed inbox rows and sent outbox rows go; dead
    letters and queued rows stay; the same events delivered again are not sent twice."""
    lines = [contact_line(f"6{i:02d}") for i in range(3)]
    lines += [form_line(f"s{i}", f"6{i:02d}", at(30 - i)) for i in range(3)]
    lines[3 + 1]["userAgent"] = None  # a website event needs one: a dead letter
    path = write_jsonl(tmp_path / "f.jsonl", lines)
    rig.agent.ingest_jsonl(path)
    rig.agent.run(once=True)  # the first cycle's retention pass: nothing is old yet
    assert rig.agent.status().as_json()["outbox"] == {"queued": 0, "sent": 2, "dead": 1}
    rig.clock.advance(days=29)
    rig.agent.ingest_jsonl(write_jsonl(tmp_path / "late.jsonl", [
        contact_line("700"), form_line("s-late", "700", rig.clock() - timedelta(minutes=1))]))
    graph.fail_next("500")  # the late event stays queued for a retry
    rig.agent.run(once=True)
    assert rig.agent.status().as_json()["outbox"] == {"queued": 1, "sent": 2, "dead": 1}
    assert rig.agent.prune_if_due() == (0, 0)  # an hour has not passed since the last pass
    rig.clock.advance(days=2)
    assert rig.agent.prune_if_due() == (3, 2)  # the 3 old submissions, the 2 sent rows
    status = rig.agent.status().as_json()
    assert status["outbox"] == {"queued": 1, "sent": 0, "dead": 1}
    assert status["inbox"] == {"new": 0, "processed": 1}
    rig.agent.ingest_jsonl(path)  # the old submissions again: far too old to send now
    rig.agent.run(once=True)
    assert len(graph.unique) == 3 and graph.duplicates == 0  # 2 old + the late one, once each
    status = rig.agent.status().as_json()
    assert status["deadLetters"] == {"missing_user_agent": 1, "too_old": 2}  # 2: pruned, sent
    assert status["skips"]["duplicate"] == 1  # the kept dead letter still deduplicates


def test_retention_under_eight_days_is_refused() -> None:
    with pytest.raises(UsageError, match="at least 8 days"):
        AgentConfig(retention_days=7)
    assert AgentConfig(retention_days=0).retention_days == 0  # keep everything


def test_a_process_role_and_a_deliver_role_share_one_store(graph: FakeGraph, clock: FakeClock,
                                                           tmp_path: Path) -> None:
    """Two agents on one state file, one matching and queueing, one sending: each does only
    its half, and together they deliver exactly what one agent would."""
    matcher = make_rig(tmp_path, graph.base_url, clock, T_CREATED, role="process")
    sender = make_rig(tmp_path, graph.base_url, clock, T_CREATED, role="deliver")
    try:
        matcher.agent.ingest_jsonl(feed(tmp_path))
        sender.agent.run(max_cycles=2)
        assert not graph.requests and sender.agent.status().as_json()["inbox"]["new"] == 8
        matcher.agent.run(max_cycles=2)
        status = matcher.agent.status().as_json()
        assert status["inbox"]["new"] == 0 and status["outbox"]["queued"] == 3
        assert not graph.requests
        sender.agent.run(max_cycles=2)
        assert names(graph) == ["Customer", "Demo booked", "Lead"]  # as one agent sends
        assert graph.duplicates == 0 and sender.agent.status().as_json()["outbox"]["sent"] == 3
    finally:
        matcher.close()
        sender.close()
