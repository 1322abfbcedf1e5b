"""The Data Manager fake refuses what Google refuses (tests/fakes/google_ads.py): a client
that passes against it has met the documented contract, not a lenient stand-in."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fakes.google_ads import FakeGoogleAds
from googlekit import ACTION, CUSTOMER, account_spec, contact, form_event, recent, submission

from reconciler.core.networks.google import RULES

TOKEN = "ya29.fake-contract-token"


@pytest.fixture(scope="module")
def google() -> Iterator[FakeGoogleAds]:
    with FakeGoogleAds(token=TOKEN) as fake:
        yield fake


def body(**change: Any) -> dict[str, Any]:
    event = RULES.builder(form_event(), account_spec()).build(submission(recent()), contact())
    event.update(change.pop("event", {}))
    out: dict[str, Any] = {
        "destinations": [{"reference": ACTION, "productDestinationId": ACTION,
                          "operatingAccount": {"accountType": "GOOGLE_ADS",
                                               "accountId": CUSTOMER}}],
        "events": [event], "encoding": "HEX", "validateOnly": True}
    out.update(change)
    return out


def post(google: FakeGoogleAds, payload: dict[str, Any], **headers: str) -> httpx.Response:
    return httpx.post(f"{google.base_url}/v1/events:ingest", json=payload,
                      headers={"authorization": f"Bearer {TOKEN}", **headers})


def test_a_valid_request_passes(google: FakeGoogleAds) -> None:
    assert post(google, body()).status_code == 200


@pytest.mark.parametrize(("change", "reason", "where"), [
    ({"extra": 1}, "INVALID_ARGUMENT", "extra"),
    ({"event": {"eventTimestamp": "2026-02-30T10:00:00Z"}}, "INVALID_FORMAT",
     "events[0].eventTimestamp"),
    ({"event": {"eventTimestamp": "2026-12-01 10:00"}}, "INVALID_FORMAT",
     "events[0].eventTimestamp"),
    ({"event": {"consent": {"adUserData": "GRANTED"}}}, "INVALID_ENUM_VALUE",
     "events[0].consent.adUserData"),
    ({"event": {"currency": "eur"}}, "INVALID_CURRENCY_CODE", "events[0].currency"),
    ({"event": {"adIdentifiers": {"gclid": "Cj0KCQiA4L67BhDU", "wbraid": "WBRAIDabcdefgh"}}},
     "INVALID_EVENT", "events[0].adIdentifiers"),
    ({"event": {"userData": {"userIdentifiers": [{"emailAddress": "john@x.com"}]}}},
     "INVALID_SHA256_FORMAT", "events[0].userData.userIdentifiers[0].emailAddress"),
    ({"encoding": "BASE64"}, "INVALID_HEX_ENCODING", "encoding"),
    ({"destinations": [{"productDestinationId": ACTION, "operatingAccount": {
        "accountType": "GOOGLE_ADS", "accountId": "123-456-7890"}}]}, "INVALID_DESTINATION",
     "destinations[0].operatingAccount"),
])
def test_contract_breaches_are_refused_with_googles_envelope(
        google: FakeGoogleAds, change: dict[str, Any], reason: str, where: str) -> None:
    answer = post(google, body(**change))
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["status"] == "INVALID_ARGUMENT"
    kinds = {d["@type"].rsplit(".", 1)[1]: d for d in error["details"]}
    assert kinds["ErrorInfo"]["reason"] == reason
    assert kinds["BadRequest"]["fieldViolations"][0]["field"] == where
    assert "john@x.com" not in answer.text  # values are never echoed


def test_the_header_and_the_login_account_must_agree(google: FakeGoogleAds) -> None:
    assert post(google, body(), **{"login-customer-id": "5556667777"}).status_code == 400


def test_without_a_bearer_token_it_is_401(google: FakeGoogleAds) -> None:
    answer = httpx.post(f"{google.base_url}/v1/events:ingest", json=body(),
                        headers={"authorization": TOKEN})  # no "Bearer"
    assert answer.status_code == 401 and answer.json()["error"]["status"] == "UNAUTHENTICATED"
