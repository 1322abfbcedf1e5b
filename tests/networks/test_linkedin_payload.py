"""LinkedIn rules (core/networks/linkedin.py): targets, skips, payloads, checks, normalizers."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from decimal import Decimal
from typing import Any

import orjson
import pytest
from fakes.linkedin import check_element
from hypothesis import given
from hypothesis import strategies as st
from linkedinkit import (
    LATER,
    NOW,
    RULE,
    account_spec,
    contact,
    form_event,
    lifecycle_event,
    stage_change,
    submission,
)

from reconciler.core.capi import event_id
from reconciler.core.crm import to_epoch_ms
from reconciler.core.live import LiveAccount
from reconciler.core.matching import match
from reconciler.core.networks import NetworkRules, rules_for
from reconciler.core.networks import linkedin as li

RULES: NetworkRules = rules_for("linkedin")
ACCOUNT = account_spec()


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def build(live: Any = None, crm: Any = None, who: Any = None, account: Any = ACCOUNT
          ) -> dict[str, Any]:
    live = live or form_event()
    return RULES.builder(live, account).build(crm or submission(), who or contact())


# -- the network's identity ------------------------------------------------------------------

def test_rules_are_linkedins() -> None:
    assert RULES is li.RULES
    assert (RULES.name, RULES.label, RULES.batch_limit) == ("linkedin", "LinkedIn", 5000)
    assert RULES.max_age == timedelta(days=90)
    assert RULES.target(form_event(), ACCOUNT) == RULE
    assert RULES.token_ref(ACCOUNT).env == "ACME_LI_TOKEN"
    assert RULES.properties(form_event(), account_spec(firstPartyIdProperty="li_click")) == {
        "li_click"}


# -- payloads --------------------------------------------------------------------------------

def test_form_payload_is_linkedins_conversion_event() -> None:
    live = form_event(value={"amount": 1500, "currency": "EUR"})
    payload = build(live)
    assert payload == {
        "conversion": RULE,
        "conversionHappenedAt": to_epoch_ms(LATER),
        "eventId": event_id(live.id, submission().source_id),
        "user": {
            "userIds": [{"idType": "SHA256_EMAIL", "idValue": sha("john@x.com")},
                        {"idType": "LINKEDIN_FIRST_PARTY_ADS_TRACKING_UUID",
                         "idValue": "df5gf5-gh6t7-ph4j7h-fgf6n1"}],
            "userInfo": {"firstName": "John", "lastName": "O'Brien", "companyName": "Acme Corp",
                         "title": "CTO", "countryCode": "US"}},
        "conversionValue": {"currencyCode": "EUR", "amount": "1500.0"},
    }
    assert payload["conversionHappenedAt"] > 10**12  # milliseconds, not Meta's seconds
    assert RULES.validate(payload, NOW) is None
    check_element(payload, to_epoch_ms(NOW), {RULE})  # the strict fake takes it


def test_lifecycle_payload_has_the_change_time_and_no_value() -> None:
    live = lifecycle_event()
    change = stage_change(at=LATER + timedelta(minutes=5))
    payload = RULES.builder(live, ACCOUNT).build(change, contact())
    assert payload["conversionHappenedAt"] == to_epoch_ms(change.occurred_at)
    assert payload["eventId"] == event_id(live.id, change.source_id)
    assert "conversionValue" not in payload
    assert payload["user"] == {"userIds": [
        {"idType": "SHA256_EMAIL", "idValue": sha("john@x.com")},
        {"idType": "LINKEDIN_FIRST_PARTY_ADS_TRACKING_UUID",
         "idValue": "df5gf5-gh6t7-ph4j7h-fgf6n1"}]}


def test_same_event_same_id_on_every_rebuild_different_per_conversion_event() -> None:
    first, again = build(), build()
    other = build(form_event(id="li-other"))
    assert first["eventId"] == again["eventId"] != other["eventId"]


def test_only_shared_properties_leave_r15() -> None:
    payload = build(form_event(properties=["email"]))
    assert "userInfo" not in payload["user"]  # names not shared
    raw = orjson.dumps(payload)
    for secret in (b"John", b"Brien", b"Acme", b"650", b"john@x.com"):
        assert secret not in raw


def test_ip_and_user_agent_never_go_to_linkedin() -> None:
    raw = orjson.dumps(build(form_event(ip_address=True)))
    assert b"203.0.113.7" not in raw and b"Mozilla" not in raw


def test_explicit_mapping_shares_a_custom_property() -> None:
    live = form_event(properties=[{"property": "work_email", "as": "em"}, "firstname",
                                  {"property": "surname", "as": "lastName"}])
    who = contact(email="private@home.example", work_email="Jane@Work.Example",
                  surname="Doe")
    user = build(live, who=who)["user"]
    assert user["userIds"][0] == {"idType": "SHA256_EMAIL", "idValue": sha("jane@work.example")}
    assert user["userInfo"] == {"firstName": "John", "lastName": "Doe"}


def test_first_party_id_comes_from_the_accounts_property() -> None:
    account = account_spec(firstPartyIdProperty="li_click")
    user = build(account=account, who=contact(li_fat_id=None, li_click="abc-123"))["user"]
    assert user["userIds"][1] == {"idType": "LINKEDIN_FIRST_PARTY_ADS_TRACKING_UUID",
                                  "idValue": "abc-123"}


def test_user_info_needs_both_names() -> None:
    builder = li.LinkedInBuilder(form_event(), ACCOUNT)
    user = builder.build(submission(), contact(lastname=None))["user"]
    assert "userInfo" not in user
    assert builder.dropped[("userInfo", "needs_first_and_last_name")] == 1


def test_wrong_types_are_dropped_and_counted_never_raised() -> None:
    builder = li.LinkedInBuilder(form_event(), ACCOUNT)
    who = contact(email=12, firstname=["x"], lastname={"a": 1}, company=3.5, country="Atlantis",
                  li_fat_id="has space")
    payload = builder.build(submission(), who)
    assert payload["user"] == {"userIds": []}
    assert builder.dropped == {("email", "not_a_string"): 1, ("firstName", "not_a_string"): 1,
                               ("lastName", "not_a_string"): 1,
                               ("companyName", "not_a_string"): 1,
                               ("countryCode", "unusable"): 1,
                               ("firstPartyId", "unusable"): 1,
                               ("userInfo", "needs_first_and_last_name"): 1}  # title alone
    assert RULES.validate(payload, NOW) == "no_user_id"


def test_a_trigger_that_does_not_fit_is_an_error() -> None:
    with pytest.raises(ValueError, match="lifecycleStageChange"):
        RULES.builder(form_event(), ACCOUNT).build(stage_change(), contact())


# -- skips -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("live", "who", "reason"), [
    (form_event(), contact(), None),
    (form_event(), contact(email=None), None),  # li_fat_id alone is a user id
    (form_event(), contact(li_fat_id=None), None),  # a shared e-mail alone too
    (form_event(), contact(email=None, li_fat_id=None), "no_user_id"),
    (form_event(), contact(email="not an e-mail", li_fat_id=" "), "no_user_id"),
    (form_event(properties=["firstname"]), contact(li_fat_id=None), "no_user_id"),  # R15
    (lifecycle_event(contacts="adInteractions"), contact(li_fat_id=None), "no_ad_interaction"),
    (lifecycle_event(contacts="adInteractions"), contact(), None),
])
def test_skip_reasons(live: Any, who: Any, reason: str | None) -> None:
    crm = submission() if live.spec.trigger.form_submission else stage_change()
    assert RULES.skip_reason(live, ACCOUNT, crm, who) == reason


def test_consent_is_the_shared_rule_r14() -> None:
    account = LiveAccount(name="acme", spec=ACCOUNT, updated_at=LATER)
    live = form_event()
    refused = match(submission(), contact(li_consent="no"), [live], account)
    assert [s.reason for s in refused.skips] == ["no_consent"]
    assert match(submission(), contact(), [live], account).fired


# -- checks ----------------------------------------------------------------------------------

LIMIT = timedelta(days=90) - timedelta(hours=1)  # an hour before LinkedIn's 90 days


def _with(**changes: Any) -> dict[str, Any]:
    payload = build(form_event(value={"amount": 10, "currency": "USD"}))
    payload.update(changes)
    return payload


@pytest.mark.parametrize(("payload", "reason"), [
    (_with(), None),
    (_with(conversionHappenedAt=to_epoch_ms(NOW - LIMIT + timedelta(seconds=1))), None),
    (_with(conversionHappenedAt=to_epoch_ms(NOW - LIMIT - timedelta(seconds=1))), "too_old"),
    (_with(conversionHappenedAt=to_epoch_ms(NOW) + 1), "in_future"),
    (_with(conversionHappenedAt=to_epoch_ms(NOW)), None),
    (_with(conversionHappenedAt=str(to_epoch_ms(NOW))), "missing_field"),
    (_with(eventId=""), "missing_field"),
    (_with(user=None), "missing_field"),
    (_with(conversion="urn:li:conversion:1"), "bad_conversion_rule"),
    (_with(user={"userIds": []}), "no_user_id"),
    (_with(user={"userIds": [{"idType": "SHA256_EMAIL", "idValue": "John@X.com"}]}),
     "no_user_id"),
    (_with(user={"userIds": [{"idType": "EMAIL", "idValue": "x"}]}), "no_user_id"),
    (_with(conversionValue={"currencyCode": "USD", "amount": 10}), "bad_value"),
    (_with(conversionValue={"currencyCode": "usd", "amount": "10"}), "bad_value"),
])
def test_validate(payload: dict[str, Any], reason: str | None) -> None:
    assert RULES.validate(payload, NOW) == reason


def test_time_name_and_match_keys() -> None:
    payload = build()
    assert RULES.event_time(payload) == int(LATER.timestamp())
    assert RULES.event_name(payload) == RULE
    assert RULES.match_keys(payload) == ("em", "fn", "ln", "country")
    assert RULES.match_keys(build(who=contact(email=None, firstname=None))) == ()


# -- normalizers: never crash, idempotent ----------------------------------------------------

ANYTHING = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(),
                     st.binary(), st.lists(st.text(), max_size=3),
                     st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))
NORMALIZERS = [li.norm_email, li.norm_text, li.norm_country, li.norm_first_party_id]


@pytest.mark.parametrize("norm", NORMALIZERS)
@given(value=ANYTHING)
def test_normalizers_never_crash_and_are_idempotent(norm: Any, value: object) -> None:
    once = norm(value)
    assert once is None or isinstance(once, str)
    if once is not None:
        assert norm(once) == once


@given(email=st.emails())
def test_email_is_trimmed_lower_cased_then_hashed(email: str) -> None:
    assert li.norm_email(f"  {email.upper()} ") == sha(email.lower())


@given(amount=st.floats(min_value=0.01, max_value=10**12, allow_nan=False))
def test_amount_is_a_plain_decimal_string(amount: float) -> None:
    text = li.amount_text(amount)
    assert text is not None and li.AMOUNT.fullmatch(text)
    assert Decimal(text) == Decimal(repr(amount))


@given(props=st.dictionaries(
    st.sampled_from(["email", "firstname", "lastname", "company", "jobtitle", "country",
                     "li_fat_id"]), ANYTHING))
def test_what_validate_passes_the_strict_fake_takes(props: dict[str, Any]) -> None:
    who = contact(**{k: None for k in ("email", "firstname", "lastname", "company",
                                       "jobtitle", "country", "li_fat_id")})
    who.properties.update(props)
    payload = build(form_event(value={"amount": 99.5, "currency": "USD"}), who=who)
    if RULES.validate(payload, NOW) is None:
        check_element(payload, to_epoch_ms(NOW), {RULE})
    else:
        assert RULES.skip_reason(form_event(), ACCOUNT, submission(), who) == "no_user_id"
