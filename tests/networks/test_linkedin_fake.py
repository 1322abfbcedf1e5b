"""The fake LinkedIn refuses what LinkedIn refuses (or it proves nothing about the sender)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import orjson
import pytest
from fakes.linkedin import FakeLinkedIn
from linkedinkit import NOW, RULE, TOKEN, Clock

from reconciler.core.crm import to_epoch_ms

HEX = "bad8677b6c86f5d308ee82786c183482a5995f066694246c58c4df37b0cc41f1"
HEADERS = {"authorization": f"Bearer {TOKEN}", "linkedin-version": "202611",
           "x-restli-protocol-version": "2.0.0", "x-restli-method": "BATCH_CREATE",
           "content-type": "application/json"}


def element(**changes: Any) -> dict[str, Any]:
    """LinkedIn's documented example element, at a time the fake takes."""
    data: dict[str, Any] = {
        "conversion": RULE, "conversionHappenedAt": to_epoch_ms(NOW - timedelta(days=1)),
        "conversionValue": {"currencyCode": "USD", "amount": "1500.0"},
        "user": {"userIds": [{"idType": "SHA256_EMAIL", "idValue": HEX},
                             {"idType": "LINKEDIN_FIRST_PARTY_ADS_TRACKING_UUID",
                              "idValue": "df5gf5-gh6t7-ph4j7h-fgf6n1"}],
                 "userInfo": {"firstName": "mike", "lastName": "smith",
                              "title": "software engineer", "companyName": "microsoft",
                              "countryCode": "US"}},
        "eventId": "abc12345"}
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeLinkedIn]:
    with FakeLinkedIn(token=TOKEN, read_only={"ro-token"}, clock=Clock(NOW).epoch) as server:
        yield server


def post(fake: FakeLinkedIn, body: Any, path: str = "/rest/conversionEvents",
         **headers: str | None) -> httpx.Response:
    sent = {k: v for k, v in {**HEADERS, **headers}.items() if v is not None}
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    return httpx.post(fake.base_url + path, content=raw, headers=sent, timeout=5)


def test_the_documented_example_is_taken(fake: FakeLinkedIn) -> None:
    answer = post(fake, {"elements": [element(), element(eventId="xyz345")]})
    assert answer.status_code == 200
    assert answer.json() == {"elements": [{"status": 201}, {"status": 201}]}
    assert {(RULE, "abc12345"), (RULE, "xyz345")} <= fake.unique


@pytest.mark.parametrize(("headers", "status", "code"), [
    ({"linkedin-version": None}, 400, "VERSION_MISSING"),
    ({"linkedin-version": "202501"}, 426, "NONEXISTENT_VERSION"),  # sunset: over a year old
    ({"linkedin-version": "202612"}, 426, "NONEXISTENT_VERSION"),  # not out yet
    ({"linkedin-version": "2026-11"}, 426, "NONEXISTENT_VERSION"),
    ({"linkedin-version": "20261101"}, 426, "NONEXISTENT_VERSION"),
    ({"x-restli-protocol-version": None}, 400, "ILLEGAL_ARGUMENT"),
    ({"x-restli-protocol-version": "1.0.0"}, 400, "ILLEGAL_ARGUMENT"),
    ({"x-restli-method": None}, 400, "ILLEGAL_ARGUMENT"),
    ({"content-type": "text/plain"}, 415, "UNSUPPORTED_MEDIA_TYPE"),
    ({"authorization": None}, 401, "EMPTY_ACCESS_TOKEN"),
    ({"authorization": TOKEN}, 401, "EMPTY_ACCESS_TOKEN"),  # no Bearer scheme
    ({"authorization": "Bearer nope"}, 401, "INVALID_ACCESS_TOKEN"),
    ({"authorization": "Bearer ro-token"}, 403, "ACCESS_DENIED"),
])
def test_request_refusals_use_linkedins_envelope(fake: FakeLinkedIn, headers: dict[str, Any],
                                                 status: int, code: str) -> None:
    answer = post(fake, {"elements": [element()]}, **headers)
    assert answer.status_code == status
    body = answer.json()
    assert set(body) == {"status", "serviceErrorCode", "code", "message"}
    assert (body["status"], body["code"]) == (status, code)


def test_the_version_a_year_back_is_still_served(fake: FakeLinkedIn) -> None:
    assert post(fake, {"elements": [element()]}, **{"linkedin-version": "202512"}
                ).status_code == 200


@pytest.mark.parametrize("body", [
    b"not json", [], {"elements": []}, {"elements": {}}, {"data": [1]},
    {"elements": [1], "extra": 1},
])
def test_malformed_bodies_are_refused_whole(fake: FakeLinkedIn, body: Any) -> None:
    assert post(fake, body).status_code == 400


def test_more_than_5000_elements_are_refused_whole(fake: FakeLinkedIn) -> None:
    before = len(fake.unique)
    answer = post(fake, {"elements": [element(eventId=f"e{i}") for i in range(5001)]})
    assert answer.status_code == 400 and answer.json()["code"] == "TOO_MANY_ELEMENTS"
    assert len(fake.unique) == before
    assert post(fake, {"elements": [element(eventId=f"e{i}") for i in range(5000)]}
                ).status_code == 200


def test_other_paths_are_not_found(fake: FakeLinkedIn) -> None:
    assert post(fake, {"elements": [element()]}, path="/v2/conversionEvents").status_code == 404


NOW_MS = to_epoch_ms(NOW)


@pytest.mark.parametrize(("changes", "fragment"), [
    ({"conversionHappenedAt": NOW_MS // 1000}, "epoch milliseconds"),  # Meta's seconds
    ({"conversionHappenedAt": str(NOW_MS)}, "integer"),
    ({"conversionHappenedAt": NOW_MS - 90 * 86_400_000 - 1}, "90 days"),
    ({"conversionHappenedAt": NOW_MS + 1000}, "future"),
    ({"conversion": "urn:li:llaPartnerConversion:1"}, "urn:lla"),
    ({"eventId": "x" * 65}, "eventId"),
    ({"eventId": 5}, "eventId"),
    ({"ipAddress": "203.0.113.7"}, "unknown field"),
    ({"user": None}, "user is required"),
    ({"user": {"userInfo": {"firstName": "a", "lastName": "b"}, "ip": "1"}}, "unknown field"),
    ({"user": {"userInfo": {"firstName": "a", "lastName": "b"}}}, "userIds"),
    ({"user": {"userIds": []}}, "at least one"),
    ({"user": {"userIds": [{"idType": "SHA256_EMAIL", "idValue": "mike@x.com"}]}}, "SHA-256"),
    ({"user": {"userIds": [{"idType": "SHA256_EMAIL", "idValue": HEX.upper()}]}}, "SHA-256"),
    ({"user": {"userIds": [{"idType": "EMAIL", "idValue": HEX}]}}, "idType"),
    ({"user": {"userIds": [{"idType": "ACXIOM_ID", "idValue": ""}]}}, "idValue"),
    ({"user": {"userIds": [], "userInfo": {"firstName": "mike"}}}, "lastName"),
    ({"user": {"userIds": [], "userInfo": {"firstName": "a", "lastName": " "}}}, "non-empty"),
    ({"user": {"userIds": [], "userInfo": {"firstName": "a", "lastName": "b",
                                           "countryCode": "us"}}}, "alpha-2"),
    ({"conversionValue": {"currencyCode": "USD", "amount": 1500.0}}, "string"),
    ({"conversionValue": {"currencyCode": "usd", "amount": "1"}}, "ISO 4217"),
    ({"conversionValue": {"currencyCode": "USD", "amount": "1e3"}}, "string"),
    ({"conversionValue": {"amount": "1"}}, "currencyCode"),
])
def test_element_refusals_are_per_element(fake: FakeLinkedIn, changes: dict[str, Any],
                                          fragment: str) -> None:
    bad = {k: v for k, v in {**element(eventId="bad"), **changes}.items() if v is not None}
    answer = post(fake, {"elements": [element(eventId="ok-1"), bad]})
    assert answer.status_code == 200
    first, second = answer.json()["elements"]
    assert first == {"status": 201}
    assert second["status"] == 400 and fragment in second["error"]["message"]
    assert (RULE, str(bad.get("eventId"))) not in fake.unique


def test_a_user_may_be_known_by_name_alone_at_linkedin(fake: FakeLinkedIn) -> None:
    info = {"userIds": [], "userInfo": {"firstName": "mike", "lastName": "smith"}}
    answer = post(fake, {"elements": [element(eventId="names-only", user=info)]})
    assert answer.json() == {"elements": [{"status": 201}]}


def test_unknown_conversion_rules_are_not_found() -> None:
    with FakeLinkedIn(token=TOKEN, rules={"urn:lla:llaPartnerConversion:1"},
                      clock=Clock(NOW).epoch) as fake:
        answer = post(fake, {"elements": [element()]})
    assert answer.json()["elements"][0]["status"] == 404


def test_unknown_faults_are_refused(fake: FakeLinkedIn) -> None:
    with pytest.raises(ValueError, match="unknown fault"):
        fake.fail_next("418")
