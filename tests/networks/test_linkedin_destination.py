"""LinkedInDestination against the strict fake: every answer becomes the right Outcome."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import orjson
import pytest
from fakes.linkedin import FakeLinkedIn
from linkedinkit import (
    NOW,
    RULE,
    TOKEN,
    Clock,
    account_spec,
    contact,
    form_event,
    submission,
)

from reconciler.adapters.networks.linkedin import LinkedInDestination
from reconciler.core.models import DEFAULT_LINKEDIN_VERSION
from reconciler.core.networks import rules_for

RULES = rules_for("linkedin")
ACCOUNT = account_spec()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def fake(clock: Clock) -> Iterator[FakeLinkedIn]:
    with FakeLinkedIn(token=TOKEN, rules={RULE}, read_only={"read-only-token"},
                      clock=clock.epoch) as server:
        yield server


@pytest.fixture
def dest(fake: FakeLinkedIn, clock: Clock) -> Iterator[LinkedInDestination]:
    destination = LinkedInDestination(fake.base_url, timeout=2.0, clock=clock)
    yield destination
    destination.close()


def events(n: int = 3, **at: Any) -> list[bytes]:
    builder = RULES.builder(form_event(value={"amount": 42.5, "currency": "EUR"}), ACCOUNT)
    return [orjson.dumps(builder.build(submission(submission_id=f"sub-{i}", **at), contact()))
            for i in range(n)]


def test_a_batch_is_sent_with_linkedins_headers(fake: FakeLinkedIn,
                                                dest: LinkedInDestination) -> None:
    batch = events(3)
    outcome = dest.send(RULE, ACCOUNT, batch, TOKEN)
    assert (outcome.kind, outcome.status, outcome.received) == ("sent", 200, 3)
    assert len(fake.unique) == 3
    assert sorted(orjson.dumps(p) for p in fake.payloads.values()) == sorted(batch)
    headers = fake.headers[0]
    assert headers["authorization"] == f"Bearer {TOKEN}"
    assert headers["linkedin-version"] == "202611"
    assert headers["x-restli-protocol-version"] == "2.0.0"
    assert headers["x-restli-method"] == "BATCH_CREATE"


def test_the_pinned_version_is_the_accounts(fake: FakeLinkedIn, dest: LinkedInDestination,
                                            ) -> None:
    assert dest.send(RULE, account_spec(version="202606"), events(1), TOKEN).kind == "sent"
    assert fake.headers[0]["linkedin-version"] == "202606"


def test_a_resent_batch_counts_once(fake: FakeLinkedIn, dest: LinkedInDestination) -> None:
    batch = events(2)
    dest.send(RULE, ACCOUNT, batch, TOKEN)
    assert dest.send(RULE, ACCOUNT, batch, TOKEN).kind == "sent"
    assert (len(fake.unique), fake.duplicates) == (2, 2)


def test_refused_elements_are_rejected_by_index(fake: FakeLinkedIn,
                                                dest: LinkedInDestination) -> None:
    old = events(1, submitted_at=NOW - timedelta(days=91))[0]
    good = events(2)
    outcome = dest.send(RULE, ACCOUNT, [good[0], old, good[1]], TOKEN)
    assert outcome.kind == "reject" and outcome.received == 2
    assert outcome.rejected is not None and set(outcome.rejected) == {1}
    assert "90 days" in outcome.rejected[1]
    assert len(fake.unique) == 2  # the other two were taken


def test_an_unknown_conversion_rule_is_rejected(fake: FakeLinkedIn,
                                                dest: LinkedInDestination) -> None:
    fake.rules = {"urn:lla:llaPartnerConversion:1"}
    outcome = dest.send(RULE, ACCOUNT, events(2), TOKEN)
    assert outcome.kind == "reject" and outcome.rejected is not None
    assert set(outcome.rejected) == {0, 1} and outcome.received == 0


def test_more_than_5000_is_refused_whole(fake: FakeLinkedIn, dest: LinkedInDestination) -> None:
    outcome = dest.send(RULE, ACCOUNT, events(1) * 5001, TOKEN)
    assert (outcome.kind, outcome.status, outcome.rejected) == ("reject", 400, None)
    assert "5000" in outcome.message and not fake.unique


@pytest.mark.parametrize(("fault", "kind", "reason"), [
    ("500", "retry", None), ("401", "pause", "token"), ("403", "pause", "permission"),
])
def test_faults(fake: FakeLinkedIn, dest: LinkedInDestination, fault: str, kind: str,
                reason: str | None) -> None:
    fake.fail_next(fault)
    outcome = dest.send(RULE, ACCOUNT, events(1), TOKEN)
    assert (outcome.kind, outcome.status, outcome.pause_reason) == (kind, int(fault), reason)
    assert not fake.unique
    assert dest.send(RULE, ACCOUNT, events(1), TOKEN).kind == "sent"  # the next one goes


def test_rate_limit_retries_after_linkedins_delay(fake: FakeLinkedIn,
                                                  dest: LinkedInDestination) -> None:
    fake.fail_next("429", retry_after=7)
    outcome = dest.send(RULE, ACCOUNT, events(1), TOKEN)
    assert (outcome.kind, outcome.status, outcome.retry_after) == ("retry", 429, 7.0)
    assert outcome.code == "101" and "TOO_MANY_REQUESTS" in outcome.message


def test_a_wrong_token_pauses_and_is_never_echoed(fake: FakeLinkedIn,
                                                  dest: LinkedInDestination) -> None:
    outcome = dest.send(RULE, ACCOUNT, events(1), "wrong-token-SECRET")
    assert (outcome.kind, outcome.pause_reason, outcome.code) == ("pause", "token", "65600")
    assert "SECRET" not in repr(outcome)


def test_a_token_without_permission_pauses(dest: LinkedInDestination) -> None:
    outcome = dest.send(RULE, ACCOUNT, events(1), "read-only-token")
    assert (outcome.kind, outcome.status, outcome.pause_reason) == ("pause", 403, "permission")


def test_a_sunset_pinned_version_pauses_for_its_version(fake: FakeLinkedIn,
                                                         dest: LinkedInDestination) -> None:
    """Not a permission problem (the token is fine): its own reason, and the pin is the fix."""
    outcome = dest.send(RULE, account_spec(version="202501"), events(1), TOKEN)
    assert (outcome.kind, outcome.status, outcome.pause_reason) == ("pause", 426, "version")
    assert outcome.message == (
        "the LinkedIn API version 202501 is no longer served (NONEXISTENT_VERSION: Requested "
        "version 202501 is not active): pin a served version in spec.linkedin.version, or "
        "remove the pin and upgrade convctl")
    assert not fake.unique


def test_the_built_in_version_sunset_says_upgrade_convctl(fake: FakeLinkedIn,
                                                         dest: LinkedInDestination) -> None:
    """LinkedIn stops serving the version this convctl is built for (fault injection: the
    fake answers 426 for the default version): pause (version), nothing given up."""
    fake.fail_next("426")
    outcome = dest.send(RULE, ACCOUNT, events(1), TOKEN)
    assert (outcome.kind, outcome.status, outcome.pause_reason) == ("pause", 426, "version")
    assert outcome.message == (
        f"the LinkedIn API version {DEFAULT_LINKEDIN_VERSION} is no longer served "
        "(NONEXISTENT_VERSION: Requested version is not active): upgrade convctl")
    assert not fake.unique


def test_slow_answers_time_out_and_retry(fake: FakeLinkedIn, clock: Clock) -> None:
    fake.fail_next("slow", delay=0.5)
    dest = LinkedInDestination(fake.base_url, timeout=0.1, clock=clock)
    try:
        outcome = dest.send(RULE, ACCOUNT, events(1), TOKEN)
    finally:
        dest.close()
    assert outcome.kind == "retry" and "timed out" in outcome.message


def test_a_dropped_connection_retries(fake: FakeLinkedIn, dest: LinkedInDestination) -> None:
    fake.fail_next("drop")
    outcome = dest.send(RULE, ACCOUNT, events(1), TOKEN)
    assert (outcome.kind, outcome.status) == ("retry", None)
    assert "connection failed" in outcome.message


# -- answers the fake does not give: httpx.MockTransport ------------------------------------

def answering(status: int, body: Any, headers: dict[str, str] | None = None
              ) -> LinkedInDestination:
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    transport = httpx.MockTransport(lambda request: httpx.Response(status, content=raw,
                                                                   headers=headers))
    return LinkedInDestination("https://li.test", transport=transport, clock=Clock())


def test_an_element_linkedin_could_not_take_now_retries_the_batch() -> None:
    dest = answering(200, {"elements": [{"status": 201}, {"status": 503, "error": {
        "status": 503, "serviceErrorCode": 0, "code": "UNAVAILABLE", "message": "try later"}}]})
    outcome = dest.send(RULE, ACCOUNT, events(2), TOKEN)
    assert outcome.kind == "retry" and "1 of 2" in outcome.message


def test_an_answer_without_one_status_per_element_retries() -> None:
    outcome = answering(200, {"elements": [{"status": 201}]}).send(RULE, ACCOUNT, events(2),
                                                                  TOKEN)
    assert outcome.kind == "retry"


@pytest.mark.parametrize("status", [400, 422])
def test_validation_errors_reject_with_linkedins_message_without_pii(status: int) -> None:
    message = (f"Invalid email john@x.com for token {TOKEN} with hash "
               f"{'ab' * 32} in /elements/0/user")
    dest = answering(status, {"status": status, "serviceErrorCode": 100,
                              "code": "INVALID_VALUE", "message": message})
    outcome = dest.send(RULE, ACCOUNT, events(1), TOKEN)
    assert (outcome.kind, outcome.status, outcome.code) == ("reject", status, "100")
    assert outcome.rejected is None and "INVALID_VALUE: Invalid email" in outcome.message
    for leak in ("john@x.com", TOKEN, "ab" * 32):
        assert leak not in outcome.message


def test_an_unexpected_body_is_summarized() -> None:
    outcome = answering(502, b"<html>bad gateway</html>").send(RULE, ACCOUNT, events(1), TOKEN)
    assert (outcome.kind, outcome.status) == ("retry", 502)
    assert outcome.message.startswith("unexpected body")
