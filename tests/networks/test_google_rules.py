"""Google Ads rules (core/networks/google.py): payloads as the Data Manager API documents them,
Google's normalization, consent, the skip reason, the checks, and never a crash on bad input."""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta
from typing import Any

import pytest
from fakes.google_ads import Refusal, check_request
from googlekit import (
    ACTION,
    CUSTOMER,
    GCLID,
    account_spec,
    contact,
    form_event,
    google_block,
    lifecycle_event,
    now,
    recent,
    stage_change,
    submission,
)
from hypothesis import given
from hypothesis import strategies as st

from reconciler.core.capi import event_id
from reconciler.core.networks import rules_for
from reconciler.core.networks.google import RULES, norm_email, norm_name, norm_phone

ACCOUNT = account_spec()
REASONS = {"missing_field", "bad_timestamp", "too_old", "in_future", "bad_consent", "bad_value",
           "bad_identifier", "bad_click_id", "no_click_id_or_identifier"}


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def request(events: list[dict[str, Any]]) -> dict[str, Any]:
    return {"destinations": [{"reference": ACTION, "productDestinationId": ACTION,
                              "operatingAccount": {"accountType": "GOOGLE_ADS",
                                                   "accountId": CUSTOMER}}],
            "events": events, "encoding": "HEX"}


def test_rules_are_found_by_name_with_googles_limits() -> None:
    rules = rules_for("google")
    assert rules is RULES
    assert (rules.name, rules.label, rules.batch_limit) == ("google", "Google Ads", 2000)
    assert rules.max_age == timedelta(days=90)


def test_target_token_and_click_id_properties_come_from_the_account() -> None:
    live = form_event()
    assert RULES.target(live, ACCOUNT) == f"{CUSTOMER}/{ACTION}"
    assert RULES.token_ref(ACCOUNT).env == "GOOGLE_TOKEN"
    custom = account_spec(google_block(clickIdProperties={"gclid": "my_gclid"}))
    assert RULES.properties(live, custom) == {"my_gclid", "gbraid", "wbraid"}


@pytest.mark.parametrize(("raw", "normal"), [
    (" John.Doe+ads@GMail.com ", "johndoe@gmail.com"),
    ("j.o.h.n@googlemail.com", "john@googlemail.com"),
    ("User.Name+NYC@Example.com", "user.name+nyc@example.com"),  # other domains keep both
    ("jane doe@example.com", "janedoe@example.com"),  # inner whitespace goes too
    ("no-at-sign.example.com", None),
    ("a@b@c.com", None),
    ("+only@gmail.com", None),
])
def test_emails_follow_googles_normalization(raw: str, normal: str | None) -> None:
    assert norm_email(raw) == normal


def test_phones_are_e164_with_the_accounts_calling_code_and_names_are_lowercased() -> None:
    assert norm_phone("(800) 555-0100", "1") == "+18005550100"
    assert norm_phone("+44 20 7946 0958", "1") == "+442079460958"
    assert norm_phone("12", "1") is None
    assert norm_name("  O'Brien ") == "obrien"
    assert norm_name("Mary   Ann") == "mary ann"


def test_a_form_event_is_one_data_manager_event_with_hashed_identifiers() -> None:
    at = recent()
    live = form_event(value={"amount": 49.5, "currency": "EUR"})
    payload = RULES.builder(live, ACCOUNT).build(submission(at), contact())
    assert payload == {
        "destinationReferences": [ACTION],
        "transactionId": event_id(live.id, "form:sub-1"),
        "eventTimestamp": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "eventSource": "WEB",
        "consent": {"adUserData": "CONSENT_GRANTED", "adPersonalization": "CONSENT_DENIED"},
        "adIdentifiers": {"gclid": GCLID},
        "userData": {"userIdentifiers": [
            {"emailAddress": sha("johndoe@gmail.com")},
            {"phoneNumber": sha("+16505551212")},
            {"address": {"givenName": sha("john"), "familyName": sha("obrien"),
                         "regionCode": "US", "postalCode": "94035"}}]},
        "conversionValue": 49.5, "currency": "EUR",
    }
    assert RULES.validate(payload, now()) is None
    assert RULES.event_time(payload) == int(at.timestamp())
    assert RULES.event_name(payload) == f"conversion action {ACTION}"
    assert RULES.match_keys(payload) == ("em", "ph", "fn", "ln", "zp", "country")
    check_request(request([payload]), now().timestamp())  # the strict fake takes it


def test_only_shared_properties_are_sent_r15() -> None:
    live = form_event(properties=["email"])
    payload = RULES.builder(live, ACCOUNT).build(submission(recent()), contact())
    assert payload["userData"] == {"userIdentifiers": [{"emailAddress": sha("johndoe@gmail.com")}]}


def test_lifecycle_consent_follows_the_account_and_denied_sends_no_user_data() -> None:
    denied = account_spec(google_block(consent={"adUserData": "denied",
                                                "adPersonalization": "granted"}))
    builder = RULES.builder(lifecycle_event(), denied)
    payload = builder.build(stage_change(recent()), contact())
    assert payload["consent"] == {"adUserData": "CONSENT_DENIED",
                                  "adPersonalization": "CONSENT_GRANTED"}
    assert "userData" not in payload
    assert builder.dropped[("userData", "ad_user_data_denied")] == 1
    assert payload["adIdentifiers"] == {"gclid": GCLID}
    assert RULES.validate(payload, now()) is None
    # a form fired only with the visitor's consent (R14): adUserData granted all the same
    form = RULES.builder(form_event(), denied).build(submission(recent()), contact())
    assert form["consent"]["adUserData"] == "CONSENT_GRANTED"
    assert "userData" in form


def test_lifecycle_events_without_click_id_or_email_phone_are_skipped() -> None:
    live, change = lifecycle_event(), stage_change(recent())
    bare = contact({"firstname": "Ann"})
    assert RULES.skip_reason(live, ACCOUNT, change, bare) == "no_click_id_or_identifier"
    assert RULES.skip_reason(live, ACCOUNT, change, contact({"email": "a@b.co"})) is None
    assert RULES.skip_reason(live, ACCOUNT, change,
                             contact({"wbraid": "WBRAID_abcdefghij"})) is None
    assert RULES.skip_reason(live, ACCOUNT, change, contact({"email": "broken"})) == (
        "no_click_id_or_identifier")
    denied = account_spec(google_block(consent={"adUserData": "denied"}))
    assert RULES.skip_reason(live, denied, change, contact({"email": "a@b.co"})) == (
        "no_click_id_or_identifier")


def test_one_click_id_is_sent_and_malformed_ones_are_dropped() -> None:
    builder = RULES.builder(lifecycle_event(properties=[]), ACCOUNT)
    payload = builder.build(stage_change(recent()), contact(
        {"hs_google_click_id": "bad id!", "gbraid": "GBRAID-abcdefghij", "wbraid": "W" * 20}))
    assert payload["adIdentifiers"] == {"gbraid": "GBRAID-abcdefghij"}
    assert builder.dropped[("gclid", "unusable")] == 1


@pytest.mark.parametrize(("change", "reason"), [
    ({"eventTimestamp": "yesterday"}, "bad_timestamp"),
    ({"transactionId": 7}, "missing_field"),
    ({"consent": {"adUserData": "YES", "adPersonalization": "CONSENT_DENIED"}}, "bad_consent"),
    ({"consent": {"adUserData": "CONSENT_DENIED", "adPersonalization": "CONSENT_DENIED"}},
     "bad_consent"),  # user data without consent to share it
    ({"conversionValue": 3}, "bad_value"),
    ({"userData": {"userIdentifiers": [{"emailAddress": "x@y.z"}]}}, "bad_identifier"),
    ({"adIdentifiers": {"gclid": "a", "gbraid": "b"}}, "bad_click_id"),
])
def test_validate_names_what_google_would_refuse(change: dict[str, Any], reason: str) -> None:
    payload = RULES.builder(form_event(), ACCOUNT).build(submission(recent()), contact())
    assert RULES.validate({**payload, **change}, now()) == reason


def test_the_90_day_window_is_checked_with_a_margin() -> None:
    builder = RULES.builder(form_event(), ACCOUNT)
    old = builder.build(submission(now() - timedelta(days=90) + timedelta(minutes=30)), contact())
    future = builder.build(submission(now() + timedelta(minutes=5)), contact())
    assert RULES.validate(old, now()) == "too_old"
    assert RULES.validate(future, now()) == "in_future"
    ok = builder.build(submission(now() - timedelta(days=89)), contact())
    assert RULES.validate(ok, now()) is None


def test_no_identifier_at_all_is_refused_before_queueing() -> None:
    builder = RULES.builder(form_event(properties=[]), ACCOUNT)
    payload = builder.build(submission(recent()), contact({"ads_consent": "yes"}))
    assert RULES.validate(payload, now()) == "no_click_id_or_identifier"
    with pytest.raises(Refusal, match="no user identifier"):
        check_request(request([payload]), now().timestamp())


values = st.one_of(st.none(), st.text(max_size=40), st.integers(), st.floats(),
                   st.lists(st.text(max_size=5), max_size=2))
props = st.dictionaries(st.sampled_from(["email", "phone", "firstname", "lastname", "zip",
                                         "country", "hs_google_click_id", "gbraid", "wbraid"]),
                        values)


DENIED_ACCOUNT = account_spec(google_block(consent={"adUserData": "denied"}))


@given(props, st.sampled_from(["form", "lifecycle"]), st.sampled_from([ACCOUNT, DENIED_ACCOUNT]))
def test_any_contact_builds_a_payload_validate_and_the_fake_agree_on(
        raw: dict[str, Any], trigger: str, account: Any) -> None:
    if trigger == "form":
        builder, crm_event = RULES.builder(form_event(), account), submission(recent())
    else:
        live = lifecycle_event(properties=["email", "phone", "firstname", "lastname", "zip"])
        builder, crm_event = RULES.builder(live, account), stage_change(recent())
    payload = builder.build(crm_event, contact(raw))
    reason = RULES.validate(payload, now())
    if trigger == "lifecycle":  # what passes the skip is never refused for lack of identifiers
        skip = RULES.skip_reason(builder.live, account, crm_event, contact(raw))
        assert (skip is None) == (reason is None), (skip, reason)
    try:
        check_request(request([payload]), now().timestamp())
    except Refusal:
        assert reason is not None
    else:
        assert reason is None


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                           lambda kids: st.lists(kids, max_size=3)
                           | st.dictionaries(st.text(max_size=8), kids, max_size=3),
                           max_leaves=10)


@given(st.dictionaries(st.sampled_from(["transactionId", "eventTimestamp", "consent",
                                        "userData", "adIdentifiers", "conversionValue",
                                        "currency", "destinationReferences"]), json_values))
def test_validate_and_reads_never_crash_on_any_json(payload: dict[str, Any]) -> None:
    assert RULES.validate(payload, now()) in {None, *REASONS}
    RULES.event_time(payload)
    RULES.event_name(payload)
    RULES.match_keys(payload)


@given(st.text(max_size=40))
def test_email_normalization_is_idempotent_and_never_keeps_spaces_or_capitals(raw: str) -> None:
    normal = norm_email(raw)
    if normal is not None:
        assert norm_email(normal) == normal
        assert normal == normal.lower() and not any(c.isspace() for c in normal)
        assert normal.count("@") == 1


@given(st.text(alphabet="0123456789 +()-.", max_size=20))
def test_phones_are_e164_or_dropped(raw: str) -> None:
    normal = norm_phone(raw, "44")
    assert normal is None or re.fullmatch(r"\+[1-9][0-9]{1,14}", normal)
