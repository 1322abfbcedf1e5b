"""Audit of issue 5, items 4 and 7 (capi-contract.md): what a user of the agent would notice.

- a legacy lifecycle event (R11) keeps syncing under its legacy name ``Other`` next to an
  enhanced one, each with its own deterministic ``event_id``;
- Meta lead ids and phone numbers are ASCII digits: a lead id typed with other digits (full
  width, Arabic-Indic) is no lead id (R5) and is never sent; a phone typed with full-width
  digits normalizes to the ASCII E.164 digits (else its hash can never match);
- the fake Graph API refuses the remaining malformed fields (``event_id`` type, ``event_time``
  boolean, currency code, a form-encoded ``data`` that is not JSON).
"""

from __future__ import annotations

import hashlib
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from agentio import (
    ACME_PIXEL,
    START,
    T_CREATED,
    TOKENS,
    FakeClock,
    contact_line,
    make_rig,
    stage_line,
    write_jsonl,
)
from agentkit import LATER, account, contact, lifecycle_event, stage_change
from fakes.graph import FakeGraph

from reconciler.core import capi
from reconciler.core.crm import stage_source_id
from reconciler.core.live import EventWrite
from reconciler.core.matching import match
from reconciler.core.models import EventSpec
from reconciler.core.normalize import normalize

FULLWIDTH_LEAD = "１２３４５６７８９０１２３４５"  # 15 full-width digits
ARABIC_LEAD = "١٢٣٤٥٦٧٨٩٠١٢٣٤٥"  # 15 Arabic-Indic digits


def test_a_legacy_event_keeps_syncing_as_other_beside_the_enhanced_one(
        tmp_path: Path, graph: FakeGraph, clock: FakeClock) -> None:
    rig = make_rig(tmp_path, graph.base_url, clock, T_CREATED)
    try:
        funnel = next(e for e in rig.provider.list_events("acme") if e.name == "funnel")
        data = funnel.spec.model_dump(mode="json", by_alias=True, exclude_none=True)
        data["trigger"]["lifecycleStageChange"]["stages"] = ["customer"]
        spec = EventSpec.model_validate(data)
        legacy = rig.provider.create_event(EventWrite(
            account="acme", name="legacy-offline", spec=spec, api="legacy", managed_by=None))
        clock.advance(minutes=10)
        when = START + timedelta(minutes=5)
        rig.agent.ingest_jsonl(write_jsonl(tmp_path / "l.jsonl", [
            contact_line("501"), stage_line("501", "customer", when)]))
        rig.agent.run(once=True)
    finally:
        rig.close()
    source = stage_source_id(4412345, "501", "customer", when)
    assert graph.unique == {(ACME_PIXEL, "Customer", capi.event_id(funnel.id, source)),
                            (ACME_PIXEL, "Other", capi.event_id(legacy.id, source))}
    other = graph.payloads[(ACME_PIXEL, "Other", capi.event_id(legacy.id, source))]
    assert other["action_source"] == "system_generated"
    assert other["custom_data"] == {"event_source": "crm", "lead_event_source": "HubSpot"}
    assert other["user_data"]["lead_id"] == 123456789012345  # an integer (Meta's spec)


@pytest.mark.parametrize("lead", [FULLWIDTH_LEAD, ARABIC_LEAD])
def test_a_lead_id_in_non_ascii_digits_is_no_lead_id(lead: str) -> None:
    result = match(stage_change(), contact(meta_lead_id=lead), [lifecycle_event()], account())
    assert [s.reason for s in result.skips] == ["no_lead_id"]
    body = capi.build_payload(lifecycle_event(), account().spec, stage_change(),
                              contact(meta_lead_id=lead))
    assert capi.validate_payload(body, LATER) in ("bad_lead_id", "no_customer_info")


@pytest.mark.parametrize(("raw", "cc", "expected"), [
    ("(６５０)５５５-１２１２", "1", "16505551212"),
    ("+４４ ２０ ７９４６ ０９５８", "1", "442079460958"),
])
def test_a_phone_in_full_width_digits_normalizes_to_ascii(raw: str, cc: str,
                                                          expected: str) -> None:
    assert normalize("ph", raw, default_country_code=cc) == expected
    assert capi.hash_value("ph", raw, default_country_code=cc) == hashlib.sha256(
        expected.encode()).hexdigest()


# --- the fake Graph API: the remaining refusals ------------------------------------------------

H = hashlib.sha256(b"john@x.com").hexdigest()
NOW = int(START.timestamp())


def _event(**overrides: Any) -> dict[str, Any]:
    event: dict[str, Any] = {"event_name": "Lead", "event_time": NOW, "event_id": "e-1",
                             "action_source": "website",
                             "event_source_url": "https://acme.example/demo",
                             "user_data": {"em": H, "client_user_agent": "UA"}}
    event.update(overrides)
    return {k: v for k, v in event.items() if v is not None}


def _post(graph: FakeGraph, data: list[dict[str, Any]]) -> httpx.Response:
    return httpx.post(f"{graph.base_url}/v25.0/{ACME_PIXEL}/events", timeout=5,
                      json={"data": data, "access_token": TOKENS["ACME_META_TOKEN"]})


@pytest.mark.parametrize(("event", "needle"), [
    (_event(event_id=42), "event_id must be a string"),
    (_event(event_time=True), "event_time must be an integer"),
    (_event(custom_data={"value": 1, "currency": "euro"}), "currency"),
    (_event(action_source="system_generated", event_source_url=None,
            user_data={"lead_id": FULLWIDTH_LEAD}), "lead_id"),
])
def test_the_fake_refuses_malformed_fields(graph: FakeGraph, event: dict[str, Any],
                                           needle: str) -> None:
    response = _post(graph, [_event(event_id="fine"), event])
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == 100 and needle in error["error_user_msg"]
    assert not graph.unique  # the whole request is refused


def test_the_fake_refuses_a_form_encoded_data_that_is_not_json(graph: FakeGraph) -> None:
    response = httpx.post(f"{graph.base_url}/v25.0/{ACME_PIXEL}/events", timeout=5,
                          data={"data": "[not json", "access_token": TOKENS["ACME_META_TOKEN"]})
    error = response.json()["error"]
    assert response.status_code == 400 and error["code"] == 100
    assert "data must be a JSON array" in error["error_user_msg"]
