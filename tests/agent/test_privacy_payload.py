"""Issue 13: Limited Data Use sent as Meta documents, the dropped-value counts, lead_id's type,
and the strict fake Graph API refusing what Meta would refuse."""

from __future__ import annotations

from collections import Counter
from typing import Any

import httpx
import pytest
from agentio import ACME_PIXEL, TOKENS, FakeClock
from agentkit import (
    LATER,
    LEAD_ID,
    account_spec,
    contact,
    form_event,
    lifecycle_event,
    stage_change,
    submission,
)
from fakes.graph import FakeGraph

from reconciler.core import capi
from reconciler.core.live import LiveEvent
from reconciler.core.models import EventSpec

CALIFORNIA = {"options": ["LDU"], "country": 1, "state": 1000}
SENT_CALIFORNIA = {"data_processing_options": ["LDU"], "data_processing_options_country": 1,
                   "data_processing_options_state": 1000}


def with_options(live: LiveEvent, options: dict[str, Any]) -> LiveEvent:
    spec = EventSpec.model_validate({**live.spec.model_dump(by_alias=True),
                                     "dataProcessingOptions": options})
    return live.model_copy(update={"spec": spec})


def test_the_accounts_ldu_goes_on_every_event() -> None:
    acct = account_spec(dataProcessingOptions=CALIFORNIA)
    form = capi.build_payload(form_event(), acct, submission(), contact())
    crm = capi.build_payload(lifecycle_event(), acct, stage_change(), contact())
    for body in (form, crm):
        assert {k: v for k, v in body.items() if k.startswith("data_processing")} == \
            SENT_CALIFORNIA
        assert capi.validate_payload(body, LATER) is None


@pytest.mark.parametrize(("options", "sent"), [
    ({"options": []}, {"data_processing_options": []}),
    ({"options": ["LDU"]}, {"data_processing_options": ["LDU"]}),
    ({"options": ["LDU"], "country": 0, "state": 0},
     {"data_processing_options": ["LDU"], "data_processing_options_country": 0,
      "data_processing_options_state": 0}),
])
def test_an_events_options_override_the_accounts(options: dict[str, Any],
                                                 sent: dict[str, Any]) -> None:
    acct = account_spec(dataProcessingOptions=CALIFORNIA)
    body = capi.build_payload(with_options(form_event(), options), acct, submission(), contact())
    assert {k: v for k, v in body.items() if k.startswith("data_processing")} == sent


def test_no_options_sends_no_fields() -> None:
    body = capi.build_payload(form_event(), account_spec(), submission(), contact())
    assert not [k for k in body if k.startswith("data_processing")]


def test_the_fake_accepts_ldu_and_an_integer_lead_id_and_refuses_bad_ones(
        graph: FakeGraph, clock: FakeClock) -> None:
    acct = account_spec(dataProcessingOptions=CALIFORNIA)
    change = stage_change(at=clock.now)
    good = capi.build_payload(lifecycle_event(), acct, change, contact())
    assert good["user_data"]["lead_id"] == int(LEAD_ID)
    assert _post(graph, [good]).status_code == 200
    for bad in ({**good, "data_processing_options_state": "1000"},
                {**good, "data_processing_options": ["ldu"]},
                {**good, "user_data": {"lead_id": LEAD_ID}}):
        response = _post(graph, [bad])
        assert response.status_code == 400 and response.json()["error"]["code"] == 100


def _post(graph: FakeGraph, data: list[dict[str, Any]]) -> httpx.Response:
    return httpx.post(f"{graph.base_url}/v25.0/{ACME_PIXEL}/events", timeout=5,
                      json={"data": data, "access_token": TOKENS["ACME_META_TOKEN"]})


def test_values_that_are_not_strings_are_counted_never_raised() -> None:
    builder = capi.PayloadBuilder(form_event(properties=["email", "phone", "country", "zip"]),
                                  account_spec())
    odd = contact(properties={"email": 42, "phone": ["650 555 1212"], "country": "Narnia",
                              "zip": None})  # what a careless CRM export holds
    body = builder.form(submission(), odd)
    assert set(body["user_data"]) == {"client_user_agent", "client_ip_address"}
    assert builder.dropped == Counter({("em", "not_a_string"): 1, ("ph", "not_a_string"): 1,
                                       ("country", "unusable"): 1})
