"""GoogleDestination (adapters/networks/google.py) against the strict Data Manager fake: the
request as documented, and every answer mapped to an Outcome delivery can act on."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import orjson
import pytest
from fakes.google_ads import FakeGoogleAds
from googlekit import (
    ACTION,
    CUSTOMER,
    account_spec,
    contact,
    form_event,
    google_block,
    now,
    recent,
    submission,
)

from reconciler.adapters.networks.google import GoogleDestination
from reconciler.core.networks.google import RULES

TOKEN = "ya29.test-google-token"
TARGET = f"{CUSTOMER}/{ACTION}"
ACCOUNT = account_spec()


@pytest.fixture
def google() -> Iterator[FakeGoogleAds]:
    with FakeGoogleAds(token=TOKEN) as fake:
        yield fake


@pytest.fixture
def dest(google: FakeGoogleAds) -> Iterator[GoogleDestination]:
    sender = GoogleDestination(google.base_url, timeout=2.0)
    yield sender
    sender.close()


def events(n: int, **change: Any) -> list[bytes]:
    builder = RULES.builder(form_event(), ACCOUNT)
    out = []
    for i in range(n):
        payload = builder.build(submission(recent(), sub=f"sub-{i}"), contact())
        out.append(orjson.dumps({**payload, **change} if i == n - 1 else payload))
    return out


def test_events_arrive_once_per_transaction_id(google: FakeGoogleAds,
                                              dest: GoogleDestination) -> None:
    batch = events(3)
    assert dest.send(TARGET, ACCOUNT, batch, TOKEN).kind == "sent"
    assert dest.send(TARGET, ACCOUNT, batch, TOKEN).kind == "sent"  # a retry after a timeout
    assert len(google.unique) == 3 and sum(google.receipts.values()) == 6
    assert {key[:2] for key in google.unique} == {(CUSTOMER, ACTION)}
    body = google.bodies[0]
    assert body["encoding"] == "HEX" and body["validateOnly"] is False
    assert body["destinations"] == [{"reference": ACTION, "productDestinationId": ACTION,
                                     "operatingAccount": {"accountType": "GOOGLE_ADS",
                                                          "accountId": CUSTOMER}}]


def test_a_manager_account_sends_login_customer_id(google: FakeGoogleAds,
                                                  dest: GoogleDestination) -> None:
    managed = account_spec(google_block(loginCustomerId="5556667777"))
    assert dest.send(TARGET, managed, events(1), TOKEN).kind == "sent"
    assert google.requests[-1].login_customer_id == "5556667777"
    assert google.bodies[-1]["destinations"][0]["loginAccount"] == {
        "accountType": "GOOGLE_ADS", "accountId": "5556667777"}


def test_validate_only_checks_and_records_nothing(google: FakeGoogleAds) -> None:
    sender = GoogleDestination(google.base_url, validate_only=True)
    try:
        assert sender.send(TARGET, ACCOUNT, events(2), TOKEN).kind == "sent"
        bad = sender.send(TARGET, ACCOUNT, events(2, currency="euro"), TOKEN)
    finally:
        sender.close()
    assert google.unique == set() and google.requests[0].validate_only
    assert bad.kind == "reject" and bad.code == "INVALID_ARGUMENT"


def test_one_bad_event_rejects_the_request_naming_its_index(google: FakeGoogleAds,
                                                           dest: GoogleDestination) -> None:
    old = (now() - timedelta(days=91)).strftime("%Y-%m-%dT%H:%M:%SZ")
    outcome = dest.send(TARGET, ACCOUNT, events(3, eventTimestamp=old), TOKEN)
    assert outcome.kind == "reject" and outcome.status == 400
    assert outcome.rejected is not None and list(outcome.rejected) == [2]
    assert "events[2].eventTimestamp" in outcome.rejected[2]
    assert google.unique == set()  # nothing of the request was recorded


def test_a_refusal_of_the_whole_request_names_no_event(google: FakeGoogleAds,
                                                       dest: GoogleDestination) -> None:
    outcome = dest.send("12345/1", ACCOUNT, events(2), TOKEN)  # not a 10-digit customer
    assert outcome.kind == "reject" and outcome.rejected is None
    assert "INVALID_DESTINATION" in outcome.message


def test_batches_of_2000_pass_and_2001_are_refused(google: FakeGoogleAds,
                                                  dest: GoogleDestination) -> None:
    one = events(1)[0]
    assert dest.send(TARGET, ACCOUNT, [one] * 2000, TOKEN).kind == "sent"
    too_many = dest.send(TARGET, ACCOUNT, [one] * 2001, TOKEN)
    assert too_many.kind == "reject" and "TOO_MANY_EVENTS" in too_many.message


@pytest.mark.parametrize(("fault", "kind", "reason"), [
    ("401", "pause", "token"), ("403", "pause", "permission")])
def test_auth_failures_pause(google: FakeGoogleAds, dest: GoogleDestination, fault: str,
                             kind: str, reason: str) -> None:
    google.fail_next(fault)
    outcome = dest.send(TARGET, ACCOUNT, events(1), TOKEN)
    assert (outcome.kind, outcome.pause_reason, outcome.status) == (kind, reason, int(fault))


def test_a_wrong_token_or_customer_pauses_and_the_token_is_never_shown(
        google: FakeGoogleAds, dest: GoogleDestination) -> None:
    wrong = dest.send(TARGET, ACCOUNT, events(1), "ya29.wrong-token")
    assert (wrong.kind, wrong.pause_reason, wrong.code) == ("pause", "token", "UNAUTHENTICATED")
    assert "ya29" not in wrong.message
    google.customers = {"9999999999"}
    denied = dest.send(TARGET, ACCOUNT, events(1), TOKEN)
    assert (denied.kind, denied.pause_reason) == ("pause", "permission")
    assert TOKEN not in repr(denied)


@pytest.mark.parametrize(("fault", "wait"), [("429", 7.0), ("503", 7.0), ("500", None)])
def test_overload_and_server_errors_retry_after_googles_hint(
        google: FakeGoogleAds, dest: GoogleDestination, fault: str, wait: float | None) -> None:
    google.fail_next(fault, retry_after=7 if wait else None)
    outcome = dest.send(TARGET, ACCOUNT, events(1), TOKEN)
    assert (outcome.kind, outcome.retry_after, outcome.status) == ("retry", wait, int(fault))
    assert dest.send(TARGET, ACCOUNT, events(1), TOKEN).kind == "sent"


def test_retry_info_alone_gives_the_wait() -> None:
    sender = GoogleDestination("http://127.0.0.1:9")
    body = orjson.dumps({"error": {"code": 503, "status": "UNAVAILABLE", "message": "busy",
                                   "details": [{"@type": "type.googleapis.com/google.rpc."
                                                "RetryInfo", "retryDelay": "2.5s"}]}})
    assert sender.outcome(503, body, None, 1).retry_after == 2.5
    assert sender.outcome(502, b"<html>bad gateway</html>", None, 1).kind == "retry"
    sender.close()


def test_dropped_connections_and_timeouts_retry(google: FakeGoogleAds) -> None:
    sender = GoogleDestination(google.base_url, timeout=0.3)
    try:
        google.fail_next("drop")
        dropped = sender.send(TARGET, ACCOUNT, events(1), TOKEN)
        google.fail_next("slow", delay=1.0)
        slow = sender.send(TARGET, ACCOUNT, events(1), TOKEN)
    finally:
        sender.close()
    assert dropped.kind == "retry" and "connection failed" in dropped.message
    assert slow.kind == "retry" and "timed out" in slow.message
