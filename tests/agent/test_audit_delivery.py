"""Audit of issue 5, items 3-5 and 7 through the agent against the strict fake Graph API:

- a slow answer (the fake accepted, the client timed out) and a dropped connection are retried
  with the very same event ids, so Meta counts each event once;
- a back-filled event already too old is dead-lettered with its reason, its neighbours sent;
- every skip reason (R4, R5, R6, R8, R12, R14, R16, R19, unknown portal, ignored webhook) is
  counted in ``agent status`` and exported on ``/metrics``; a pixel paused by code 190 shows
  in the metrics too.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from agentio import (
    ACME_PIXEL,
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
from prometheus_client import CollectorRegistry, generate_latest

from reconciler.core.crm import to_epoch_ms
from reconciler.core.crm_hubspot import parse_webhook
from reconciler.server.agent_metrics import AgentCollector

REASONS = ("before_creation", "no_lead_id", "stage_not_selected", "no_ad_interaction",
           "other_form", "no_consent", "duplicate", "disabled", "unknown_portal", "ignored")


def at(minutes_ago: float) -> datetime:
    return START - timedelta(minutes=minutes_ago)


def three_events(tmp_path: Path) -> Path:
    """Three eligible events: Customer (funnel), Demo booked (ad interaction), Lead (form)."""
    return write_jsonl(tmp_path / "three.jsonl", [
        contact_line("501", ad=True), stage_line("501", "customer", at(30)),
        stage_line("501", "1452450030", at(29)), form_line("s-1", "501", at(28))])


def test_slow_and_dropped_answers_are_retried_with_the_same_event_ids(
        tmp_path: Path, graph: FakeGraph, clock: FakeClock) -> None:
    rig = make_rig(tmp_path, graph.base_url, clock, T_CREATED, timeout=0.3)
    try:
        rig.agent.ingest_jsonl(three_events(tmp_path))
        graph.fail_next("slow", delay=1.0)  # the fake accepts, but answers after the timeout
        rig.agent.run(once=True)
        assert rig.agent.status().as_json()["outbox"]["queued"] == 3
        time.sleep(1.2)  # the slow answer has been recorded by now
        clock.advance(seconds=3600)
        graph.fail_next("drop")  # the connection is closed without an answer
        rig.agent.run(once=True)
        assert rig.agent.status().as_json()["outbox"]["queued"] == 3
        clock.advance(seconds=3600)
        rig.agent.run(once=True)
        status = rig.agent.status().as_json()
    finally:
        rig.close()
    assert status["outbox"] == {"queued": 0, "sent": 3, "dead": 0}
    assert len(graph.unique) == 3
    # the slow attempt and the final one carried identical (event_name, event_id) pairs
    assert sorted(graph.receipts.values()) == [2, 2, 2]


def test_a_back_filled_event_past_the_7_day_limit_is_dead_lettered_not_sent(
        tmp_path: Path) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    clock = FakeClock(now)
    with FakeGraph(token=TOKENS["ACME_META_TOKEN"], clock=clock.epoch) as graph:
        rig = make_rig(tmp_path, graph.base_url, clock, now - timedelta(days=10))
        try:
            rig.agent.ingest_jsonl(write_jsonl(tmp_path / "old.jsonl", [
                contact_line("501"), stage_line("501", "customer", now - timedelta(days=8)),
                stage_line("501", "lead", now - timedelta(minutes=5))]))
            rig.agent.run(once=True)
            status = rig.agent.status().as_json()
            dead = rig.store.dead_letters()
        finally:
            rig.close()
        assert [k[1] for k in graph.unique] == ["Lead"]
        assert all(r.status == 200 for r in graph.requests)
    assert status["outbox"] == {"queued": 0, "sent": 1, "dead": 1}
    assert [d["reason"] for d in dead] == ["too_old"]


def _every_reason_feed(rig: Rig, tmp_path: Path) -> None:
    """One CRM event (at least) for every skip reason, plus three that fire."""
    lines = [contact_line("501"), contact_line("502", lead=None),
             contact_line("504", consent="no"),
             stage_line("501", "customer", T_CREATED - timedelta(minutes=1)),  # R4
             stage_line("502", "customer", at(50)),                           # R5
             stage_line("501", "opportunity", at(49)),                        # R6 (both)
             stage_line("501", "1452450030", at(48)),                         # R8
             form_line("s-1", "501", at(47), form=NEWSLETTER_FORM),           # R12 + R19
             form_line("s-2", "504", at(46)),                                 # R14
             stage_line("501", "lead", at(45), portal=1)]                     # unknown portal
    rig.agent.ingest_jsonl(write_jsonl(tmp_path / "every.jsonl", lines))
    when = at(44)  # R16: the same change from a webhook and from a back-fill; + ignored
    body = [{"eventId": 1, "subscriptionId": 9, "portalId": 4412345, "appId": 1,
             "occurredAt": to_epoch_ms(when), "subscriptionType": "contact.propertyChange",
             "attemptNumber": 0, "objectId": 501, "propertyName": "lifecyclestage",
             "propertyValue": "customer"},
            {"eventId": 2, "subscriptionId": 8, "portalId": 4412345, "appId": 1,
             "occurredAt": to_epoch_ms(when), "subscriptionType": "contact.creation",
             "attemptNumber": 0, "objectId": 501}]
    rig.agent.ingest_webhook(parse_webhook(json.dumps(body)))
    rig.agent.ingest_jsonl(write_jsonl(tmp_path / "again.jsonl",
                                       [stage_line("501", "customer", when)]))


def _metrics(rig: Rig) -> str:
    registry = CollectorRegistry()
    registry.register(AgentCollector(lambda: rig.agent.status().as_json()))
    return generate_latest(registry).decode()


def test_every_skip_reason_is_counted_in_status_and_metrics(
        tmp_path: Path, graph: FakeGraph, clock: FakeClock) -> None:
    rig = make_rig(tmp_path, graph.base_url, clock, T_CREATED)
    try:
        _every_reason_feed(rig, tmp_path)
        rig.agent.run(once=True)
        skips = rig.agent.status().as_json()["skips"]
        metrics = _metrics(rig)
    finally:
        rig.close()
    assert {r: skips.get(r, 0) >= 1 for r in REASONS} == dict.fromkeys(REASONS, True)
    for reason in REASONS:
        assert f'convctl_agent_skips_total{{reason="{reason}"}} {float(skips[reason])}' \
            in metrics, reason
    assert len(graph.unique) == 1  # only the webhook's Customer change fires, once
    assert "person50" not in metrics and "@" not in metrics


def test_a_pixel_paused_by_code_190_shows_in_status_and_metrics(
        tmp_path: Path, graph: FakeGraph, clock: FakeClock) -> None:
    rig = make_rig(tmp_path, graph.base_url, clock, T_CREATED)
    try:
        rig.agent.ingest_jsonl(three_events(tmp_path))
        graph.fail_next("190")
        rig.agent.run(once=True)
        paused = rig.agent.status().as_json()["paused"]
        metrics = _metrics(rig)
    finally:
        rig.close()
    assert list(paused) == [ACME_PIXEL] and paused[ACME_PIXEL]["reason"] == "token"
    assert f'convctl_agent_pixel_paused{{pixel="{ACME_PIXEL}",reason="token"}} 1.0' in metrics
    assert f'convctl_agent_pixel_outbox_events{{pixel="{ACME_PIXEL}",state="queued"}} 3.0' \
        in metrics
    assert TOKENS["ACME_META_TOKEN"] not in metrics + json.dumps(paused)
