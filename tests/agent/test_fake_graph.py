"""The strict fake Graph API refuses what Meta refuses (capi-contract.md), and injects faults."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fakes.graph import FakeGraph

PIXEL = "123456789012345"
NOW = int(time.time())
H = hashlib.sha256(b"john@x.com").hexdigest()


@pytest.fixture(scope="module")
def graph() -> Iterator[FakeGraph]:
    with FakeGraph(token="tok") as fake:
        yield fake


def event(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "event_name": "Lead", "event_time": NOW - 60, "event_id": "e1",
        "action_source": "website", "event_source_url": "https://acme.example/demo",
        "user_data": {"em": H, "client_user_agent": "Mozilla/5.0", "client_ip_address": "1.2.3.4"},
    }
    base.update(over)
    return {k: v for k, v in base.items() if v is not None}


def post(graph: FakeGraph, data: Any, token: str | None = "tok", **extra: Any) -> httpx.Response:
    body: dict[str, Any] = {"data": data, **extra}
    if token is not None:
        body["access_token"] = token
    return httpx.post(f"{graph.base_url}/v25.0/{PIXEL}/events", json=body, timeout=5)


def error(resp: httpx.Response) -> dict[str, Any]:
    err: dict[str, Any] = resp.json()["error"]
    return err


def test_accepts_a_valid_event_and_records_it(graph: FakeGraph) -> None:
    resp = post(graph, [event(event_id="ok-1")])
    assert resp.status_code == 200
    assert resp.json()["events_received"] == 1
    assert (PIXEL, "Lead", "ok-1") in graph.unique


def test_accepts_the_sdk_form_encoded_shape(graph: FakeGraph) -> None:
    form = {"data": json.dumps([json.dumps(event(event_id="form-1"))]), "access_token": "tok"}
    resp = httpx.post(f"{graph.base_url}/v25.0/{PIXEL}/events", data=form, timeout=5)
    assert resp.status_code == 200
    assert (PIXEL, "Lead", "form-1") in graph.unique


def test_token_in_query_is_accepted(graph: FakeGraph) -> None:
    resp = httpx.post(f"{graph.base_url}/v25.0/{PIXEL}/events?access_token=tok",
                      json={"data": [event(event_id="q-1")]}, timeout=5)
    assert resp.status_code == 200


@pytest.mark.parametrize(("data", "subcode", "needle"), [
    ([event(event_name=None)], 2804001, "event 0: event_name"),
    ([event(event_time="123")], 2804001, "event_time must be an integer"),
    ([event(action_source="web")], 2804001, "action_source must be one of"),
    ([event(action_source=None)], 2804001, "action_source must be one of"),
    ([event(event_source_url=None)], 2804001, "event_source_url"),
    ([event(event_source_url="ftp://x")], 2804001, "event_source_url"),
    ([event(user_data={"em": H})], 2804001, "client_user_agent is required"),
    ([event(user_data={})], 2804001, "user_data is required"),
    ([event(user_data={"em": "john@x.com", "client_user_agent": "UA"})], 2804008, "em must be"),
    ([event(user_data={"em": H.upper(), "client_user_agent": "UA"})], 2804008, "em must be"),
    ([event(action_source="system_generated", user_data={"lead_id": "12345"})], 2804008,
     "lead_id must be an integer of 15-17 digits"),
    ([event(action_source="system_generated", user_data={"lead_id": "1234567890123456"})],
     2804008, "lead_id must be an integer"),  # a string of digits is not Meta's type
    ([event(action_source="system_generated", user_data={"lead_id": H})], 2804008, "lead_id"),
    ([event(user_data={"ct": H, "zp": H, "client_user_agent": "UA"})], 2804050, "customer"),
    ([event(action_source="email", user_data={"fn": H, "ge": H})], 2804050, "customer"),
    ([event(user_data={"db": H, "client_user_agent": "UA"})], 2804050, "customer"),
    ([event(colour="red")], 2804001, "unknown field colour"),
    ([event(user_data={"email": H, "client_user_agent": "UA"})], 2804001, "unknown user_data"),
    ([event(custom_data={"value": "40"})], 2804001, "custom_data.value"),
    ([event(user_data={"em": H, "client_user_agent": "UA", "client_ip_address": "x"})], 2804001,
     "client_ip_address"),
    ([event(), event(event_id="e2", user_data={"em": H, "client_user_agent": "UA",
                                               "client_ip_address": "999.999.1.1"})],
     2804001, "event 1: user_data.client_ip_address"),
    ([event(user_data={"em": H, "client_user_agent": "UA",
                       "client_ip_address": "john.doe@example.com"})], 2804001,
     "client_ip_address"),
    ([event(event_time=NOW + 3600)], 2804004, "future"),
    ([], 2804001, "non-empty"),
])
def test_refuses_what_meta_refuses(graph: FakeGraph, data: list[Any], subcode: int,
                                   needle: str) -> None:
    resp = post(graph, data)
    assert resp.status_code == 400
    err = error(resp)
    assert (err["code"], err["error_subcode"]) == (100, subcode)
    assert needle in err["error_user_msg"]
    assert err["is_transient"] is False


def test_one_invalid_event_rejects_the_whole_batch_naming_its_index(graph: FakeGraph) -> None:
    data = [event(event_id="b-0"), event(event_id="b-1"),
            event(event_id="b-2", user_data={"em": "raw@x.com", "client_user_agent": "UA"})]
    resp = post(graph, data)
    assert resp.status_code == 400
    assert error(resp)["error_user_msg"].startswith("event 2: ")
    assert not {("b-0"), ("b-1")} & graph.event_ids()


def test_an_event_older_than_seven_days_rejects_the_whole_request(graph: FakeGraph) -> None:
    old = NOW - 7 * 24 * 3600 - 10
    resp = post(graph, [event(event_id="fresh"), event(event_id="old", event_time=old)])
    err = error(resp)
    assert (err["code"], err["error_subcode"]) == (100, 2804003)
    assert "fresh" not in graph.event_ids()


def test_at_most_1000_events(graph: FakeGraph) -> None:
    resp = post(graph, [event(event_id=f"c{i}") for i in range(1001)])
    assert error(resp)["code"] == 100
    assert "at most 1000" in error(resp)["error_user_msg"]
    assert post(graph, [event(event_id=f"c{i}") for i in range(1000)]).status_code == 200


def test_crm_event_with_lead_id_is_accepted(graph: FakeGraph) -> None:
    crm = event(event_id="crm-1", action_source="system_generated", event_source_url=None,
                user_data={"lead_id": 1234567890123456},
                custom_data={"event_source": "crm", "lead_event_source": "HubSpot"})
    assert post(graph, [crm]).status_code == 200


def test_wrong_or_missing_token(graph: FakeGraph) -> None:
    assert error(post(graph, [event()], token="nope"))["code"] == 190
    assert error(post(graph, [event()], token=None))["code"] == 104
    body = str(post(graph, [event()], token="nope").json())
    assert "nope" not in body


def test_duplicates_count_once_but_are_recorded_raw(graph: FakeGraph) -> None:
    post(graph, [event(event_id="dup")])
    post(graph, [event(event_id="dup")])
    assert graph.receipts[(PIXEL, "Lead", "dup")] == 2
    assert sum(1 for key in graph.unique if key[2] == "dup") == 1


def test_faults_on_demand() -> None:
    with FakeGraph(token="tok") as graph:
        graph.fail_next("500")
        graph.fail_next("613", retry_after=7)
        graph.fail_next("190")
        r500, r613, r190 = (post(graph, [event()]) for _ in range(3))
        assert r500.status_code == 500 and error(r500)["is_transient"] is True
        assert error(r613)["code"] == 613 and r613.headers["retry-after"] == "7"
        assert error(r613)["is_transient"] is True
        assert error(r190)["code"] == 190
        assert post(graph, [event(event_id="after")]).status_code == 200
        graph.fail_next("drop")
        with pytest.raises(httpx.TransportError):
            post(graph, [event(event_id="dropped")])
        assert "dropped" not in graph.event_ids()
        graph.fail_next("slow", delay=0.5)
        with pytest.raises(httpx.TimeoutException):
            httpx.post(f"{graph.base_url}/v25.0/{PIXEL}/events", timeout=0.1,
                       json={"data": [event(event_id="slow")], "access_token": "tok"})
        time.sleep(0.6)
        assert "slow" in graph.event_ids()  # a slow server still accepted it
        graph.fail_next("short", received=1)
        short = post(graph, [event(event_id="short-1"), event(event_id="short-2")])
        assert (short.status_code, short.json()["events_received"]) == (200, 1)
        assert "short-1" in graph.event_ids() and "short-2" not in graph.event_ids()


def test_unknown_path_is_refused(graph: FakeGraph) -> None:
    resp = httpx.post(f"{graph.base_url}/v25.0/{PIXEL}/nope", json={}, timeout=5)
    assert resp.status_code == 400 and error(resp)["code"] == 100
