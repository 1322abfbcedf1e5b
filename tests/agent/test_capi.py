"""capi-contract.md: normalization table, hashing, payload shapes, event ids, checks, batches."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Any

import pytest
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
from hypothesis import given
from hypothesis import strategies as st

from reconciler.core import capi
from reconciler.core.normalize import hash_value, normalize, user_data


def sha(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


# --- the normalization table, row by row -----------------------------------------------------

@pytest.mark.parametrize(("key", "raw", "expected", "cc"), [
    ("em", " John@X.com ", "john@x.com", None),
    ("ph", "(650)555-1212", "16505551212", "1"),
    ("fn", "Valéry", "valéry", None),
    ("ln", "O'Brien", "obrien", None),
    ("ct", "St. Louis", "stlouis", None),
    ("st", "California", "ca", None),
    ("zp", "94035-1234", "94035", None),
    ("zp", "SW1A 1AA", "sw1a1aa", None),
    ("country", "United States", "us", None),
    ("db", "1997-02-16", "19970216", None),
    ("ge", "Female", "f", None),
])
def test_contract_table(key: str, raw: str, expected: str, cc: str | None) -> None:
    assert normalize(key, raw, default_country_code=cc) == expected
    assert hash_value(key, raw, default_country_code=cc) == sha(expected)


@pytest.mark.parametrize(("raw", "cc", "expected"), [
    ("(650)555-1212", "1", "16505551212"),
    ("650.555.1212", "1", "16505551212"),
    ("1 650 555 1212", "1", "16505551212"),
    ("+1 650-555-1212", "1", "16505551212"),
    ("+1 650-555-1212", "44", "16505551212"),
    ("020 7946 0958", "44", "442079460958"),
    ("+44 20 7946 0958", "44", "442079460958"),
    ("+44 (0)20 7946 0958", "1", "442079460958"),
    ("0044 20 7946 0958", "44", "442079460958"),
    ("+44 20 7946 0958", "1", "442079460958"),
    ("0650 555 1212", None, "6505551212"),  # no default country: digits, no leading zeros
    ("not a phone", "1", None),
])
def test_phone_with_and_without_country_code(raw: str, cc: str | None,
                                             expected: str | None) -> None:
    assert normalize("ph", raw, default_country_code=cc) == expected


@pytest.mark.parametrize(("key", "raw", "expected"), [
    ("st", "NY", "ny"), ("st", "new york", "ny"), ("st", "District of Columbia", "dc"),
    ("country", "US", "us"), ("country", "GBR", "gb"), ("country", "Germany", "de"),
    ("country", "UK", "gb"), ("country", "Narnia", None),
    ("zp", "94035", "94035"), ("zp", "940351234", "94035"), ("zp", "10115", "10115"),
    ("db", "19970216", "19970216"), ("db", "02/16/1997", "19970216"),
    ("db", "16.02.1997", "19970216"), ("db", "16/02/1997", "19970216"),
    ("db", "February 16, 1997", "19970216"), ("db", "1997-02-16T00:00:00Z", "19970216"),
    ("db", "1997-02-30", None), ("db", "someday", None),
    ("ge", "m", "m"), ("ge", "MALE", "m"), ("ge", "F", "f"), ("ge", "unknown", None),
    ("fn", "Jean-Luc", "jeanluc"), ("ln", "Müller", "müller"), ("fn", "  ", None),
    ("external_id", " CRM-42 ", "crm-42"),
])
def test_more_normalization(key: str, raw: str, expected: str | None) -> None:
    assert normalize(key, raw) == expected


def test_us_zip_rule_follows_country() -> None:
    assert normalize("zp", "940351234", country="us") == "94035"
    assert normalize("zp", "94035 1234", country="gb") == "940351234"


def test_known_hashes() -> None:
    assert hash_value("em", " John@X.com ") == (
        "ac5454f9906a6e0d79df3efdaa4b9f52c88ca7482adb1f69716e7a854df0caf5")
    # the digest Meta's own documentation shows for the phone 16505551212
    assert hash_value("ph", "(650)555-1212", default_country_code="1") == (
        "e323ec626319ca94ee8bff2e4c87cf613be6ea19919ed1364124e16807ab3176")
    assert hash_value("external_id", " ABC ") == sha("abc")
    assert hash_value("ge", "Female") == sha("f")


def test_64_hex_passes_through_unhashed() -> None:
    digest = sha("john@x.com")
    assert hash_value("em", digest) == digest
    assert hash_value("ph", digest) == digest
    assert user_data({"em": digest})["em"] == digest
    # issue 13 item 2: a digest in upper or mixed case is lowercased and passed through, for
    # every hashed key (db, ge and country included), as every Meta SDK does
    for key in ("em", "ph", "db", "ge", "country", "external_id"):
        assert hash_value(key, digest.upper()) == digest
        assert hash_value(key, digest[:32].upper() + digest[32:]) == digest


def test_unhashed_keys_untouched_and_unknown_keys_refused() -> None:
    raw = {"client_ip_address": "203.0.113.7", "client_user_agent": "Mozilla/5.0 X",
           "fbc": "fb.1.1554763741205.AbCdEf", "fbp": "fb.1.1558571054389.1098115397",
           "lead_id": LEAD_ID}
    assert user_data(raw) == {**raw, "lead_id": int(LEAD_ID)}
    with pytest.raises(ValueError, match="unknown user_data key"):
        user_data({"email": "x@y.z"})


def test_unusable_values_are_dropped() -> None:
    assert user_data({"em": "  ", "country": "Narnia", "ge": "x", "fn": None}) == {}


@given(st.text(max_size=40))
def test_em_and_ct_normalization_idempotent(value: str) -> None:
    for key in ("em", "ct", "fn", "st", "zp", "db", "ge"):
        once = normalize(key, value)
        if once is not None:
            assert normalize(key, once) == once


@given(st.dictionaries(st.sampled_from(["em", "ph", "fn", "ln", "ct", "st", "zp", "db", "ge",
                                        "external_id"]), st.text(min_size=1, max_size=30)))
def test_hashing_never_double_hashes(raw: dict[str, str]) -> None:
    once = user_data(raw, default_country_code="1")
    assert all(len(v) == 64 for v in once.values())
    assert user_data(once, default_country_code="1") == once


# --- payloads --------------------------------------------------------------------------------

def test_form_payload_shape() -> None:
    live = form_event(value={"amount": 40, "currency": "EUR"}, predictive=True)
    body = capi.build_payload(live, account_spec(), submission(), contact())
    assert body == {
        "event_name": "Lead",
        "event_time": int(LATER.timestamp()),
        "event_id": capi.event_id("ev-form", "form:sub-1"),
        "action_source": "website",
        "event_source_url": "https://acme.example/demo",
        "user_data": {
            "em": sha("john@x.com"), "ph": sha("16505551212"), "fn": sha("john"),
            "ln": sha("obrien"), "client_user_agent": "Mozilla/5.0 (X11; Linux x86_64)",
            "client_ip_address": "203.0.113.7"},
        "custom_data": {"value": 40, "currency": "eur", "predictive_lead_score": 87},
    }
    assert capi.validate_payload(body, LATER) is None


def test_form_payload_ip_removed_and_only_listed_properties() -> None:
    live = form_event(ip_address=False, properties=["email", {"property": "city", "as": "ct"}])
    body = capi.build_payload(live, account_spec(), submission(), contact())
    assert "client_ip_address" not in body["user_data"]
    assert set(body["user_data"]) == {"em", "ct", "client_user_agent"}
    assert body["user_data"]["ct"] == sha("stlouis")
    assert "custom_data" not in body


def test_form_payload_custom_event_and_click_ids() -> None:
    live = form_event(facebook_event="custom:DemoBooked")
    body = capi.build_payload(live, account_spec(), submission(),
                              contact(fbc="fb.1.1554763741205.AbCdEf"))
    assert body["event_name"] == "DemoBooked"
    assert body["user_data"]["fbc"] == "fb.1.1554763741205.AbCdEf"


def test_phone_uses_account_default_country() -> None:
    gb = account_spec(defaultCountryCode="44")
    c = contact(properties={"phone": "020 7946 0958"})
    body = capi.build_payload(form_event(properties=["phone"]), gb, submission(), c)
    assert body["user_data"]["ph"] == sha("442079460958")


def test_lifecycle_payload_shape() -> None:
    body = capi.build_payload(lifecycle_event(), account_spec(), stage_change("customer"),
                              contact())
    assert body == {
        "event_name": "Customer",
        "event_time": int(LATER.timestamp()),
        "event_id": capi.event_id("ev-funnel", stage_change("customer").source_id),
        "action_source": "system_generated",
        "user_data": {"lead_id": int(LEAD_ID)},  # an integer, as Meta's spec gives it
        "custom_data": {"event_source": "crm", "lead_event_source": "HubSpot"},
    }
    assert capi.validate_payload(body, LATER) is None


def test_lifecycle_custom_stage_and_legacy_naming() -> None:
    custom = capi.build_payload(lifecycle_event(), account_spec(), stage_change("1452450030"),
                                contact())
    assert custom["event_name"] == "Demo booked"
    mql = capi.build_payload(lifecycle_event(), account_spec(),
                             stage_change("marketingqualifiedlead"), contact())
    assert mql["event_name"] == "Marketing Qualified Lead"
    legacy = capi.build_payload(lifecycle_event(api="legacy"), account_spec(),
                                stage_change("customer"), contact())
    assert legacy["event_name"] == "Other"
    assert legacy["action_source"] == "system_generated"


def test_event_id_stable_and_distinct() -> None:
    a = capi.build_payload(form_event(id="a"), account_spec(), submission(), contact())
    a2 = capi.build_payload(form_event(id="a"), account_spec(), submission(), contact())
    b = capi.build_payload(form_event(id="b"), account_spec(), submission(), contact())
    assert a["event_id"] == a2["event_id"] != b["event_id"]
    other = capi.build_payload(form_event(id="a"), account_spec(),
                               submission(submission_id="sub-2"), contact())
    assert other["event_id"] != a["event_id"]


@given(st.text(max_size=20), st.text(max_size=20))
def test_event_id_deterministic(conversion: str, source: str) -> None:
    first = capi.event_id(conversion, source)
    assert first == capi.event_id(conversion, source)
    assert len(first) == 32 and int(first, 16) >= 0


# --- validate_payload ------------------------------------------------------------------------

def _form_body() -> dict[str, Any]:
    return capi.build_payload(form_event(), account_spec(), submission(), contact())


@pytest.mark.parametrize(("user", "ok"), [
    ({"ct": "a", "country": "b", "st": "c", "zp": "d", "ge": "e", "client_user_agent": "u"},
     False),
    ({"zp": "d"}, False),
    ({"db": "a", "client_user_agent": "u"}, False),
    ({"fn": "a", "ge": "b"}, False),
    ({"ln": "a", "ge": "b"}, False),
    ({}, False),
    ({"fn": "a", "ln": "b"}, True),
    ({"em": "a"}, True),
    ({"db": "a", "zp": "b", "client_user_agent": "u"}, True),
])
def test_minimum_customer_information(user: dict[str, str], ok: bool) -> None:
    assert capi.has_customer_info(user) is ok


def test_validate_reasons() -> None:
    now = LATER
    body = _form_body()
    assert capi.validate_payload(body, now) is None
    assert capi.validate_payload({**body, "user_data": {"zp": "x", "client_user_agent": "u"}},
                                 now) == "no_customer_info"
    assert capi.validate_payload(body, now + timedelta(days=7)) == "too_old"
    assert capi.validate_payload(body, now + timedelta(days=6, hours=23, minutes=30)) == "too_old"
    assert capi.validate_payload(body, now + timedelta(days=6, hours=22)) is None
    assert capi.validate_payload(body, now - timedelta(seconds=61)) == "future"
    assert capi.validate_payload(body, now - timedelta(seconds=60)) is None
    assert capi.validate_payload({**body, "event_source_url": None}, now) == \
        "missing_event_source_url"
    assert capi.validate_payload({**body, "event_source_url": "ftp://x"}, now) == \
        "missing_event_source_url"
    no_ua = {k: v for k, v in body["user_data"].items() if k != "client_user_agent"}
    assert capi.validate_payload({**body, "user_data": no_ua}, now) == "missing_user_agent"
    assert capi.validate_payload({**body, "action_source": "fax"}, now) == "bad_action_source"
    assert capi.validate_payload({**body, "event_time": "soon"}, now) == "missing_field"


def test_validate_lead_id() -> None:
    body = capi.build_payload(lifecycle_event(), account_spec(), stage_change(), contact())
    assert capi.validate_payload(body, LATER) is None
    bad = {**body, "user_data": {"lead_id": "12345"}}
    assert capi.validate_payload(bad, LATER) == "bad_lead_id"
    none = capi.build_payload(lifecycle_event(), account_spec(), stage_change(),
                              contact(meta_lead_id=None))
    assert capi.validate_payload(none, LATER) == "no_customer_info"
    no_lead = {**body, "user_data": {"em": sha("john@x.com")}}
    assert capi.validate_payload(no_lead, LATER) == "bad_lead_id"


def test_expires_before_seven_days() -> None:
    t = int(LATER.timestamp())
    assert capi.expires_at(t) == LATER + timedelta(days=7) - capi.SAFETY_MARGIN


def test_batches() -> None:
    events = [{"n": i} for i in range(2501)]
    sizes = [len(b) for b in capi.batches(events)]
    assert sizes == [1000, 1000, 501]
    assert [len(b) for b in capi.batches(events[:5], size=2)] == [2, 2, 1]
    assert list(capi.batches([])) == []
    with pytest.raises(ValueError):
        list(capi.batches(events, size=1001))


# --- the builder's user_data against the plain rule (R15) ------------------------------------

_SHARED = ["email", "phone", "mobilephone", "firstname", "lastname", "city", "zip", "country",
           {"property": "work_email", "as": "em"}, {"property": "lead", "as": "lead_id"}]
_VALUES = st.one_of(st.none(), st.sampled_from(["", "  ", " A@B.com ", "(650)555-1212",
                                                "+44 20 7946 0958", "Zoë", "94035-1234",
                                                "Germany", "x", "9" * 16, "a" * 64]),
                    st.text(max_size=12))


@given(st.lists(st.sampled_from(range(len(_SHARED))), unique=True, max_size=len(_SHARED)),
       st.fixed_dictionaries({name: _VALUES for name in (
           "email", "phone", "mobilephone", "firstname", "lastname", "city", "zip", "country",
           "work_email", "lead")}),
       st.sampled_from([None, "1", "44"]), st.sampled_from([None, "fb.1.1.abc"]))
def test_builder_user_data_is_the_plain_rule(order: list[int], values: dict[str, str | None],
                                             cc: str | None, fbc: str | None) -> None:
    """Each key from the first listed property with a non-blank value (that one, even when it
    normalizes to nothing), normalized and hashed as ``normalize.user_data`` does; the click id
    added; the account's calling code and the contact's country as context."""
    sharing = [_SHARED[i] for i in order]
    props = {k: v for k, v in values.items() if v is not None}
    person = contact(properties=props, fbc=fbc)
    spec = account_spec(defaultCountryCode=cc)
    live = form_event(properties=sharing)
    raw: dict[str, str] = {}
    for item in sharing:
        prop, key = ((item, capi.PROPERTY_KEYS[item]) if isinstance(item, str)
                     else (item["property"], item["as"]))
        value = props.get(prop)
        if key not in raw and value and value.strip():
            raw[key] = value
    country = normalize("country", props["country"]) if props.get("country") else (
        "us" if cc == "1" else None)
    expected = user_data(raw, default_country_code=cc, country=country)
    if fbc:
        expected["fbc"] = fbc
    assert capi.PayloadBuilder(live, spec).user_data(person) == expected


@given(st.dictionaries(st.sampled_from(sorted(capi.HASHED_KEYS | capi.UNHASHED_KEYS)),
                       st.sampled_from([None, "", [], "x", ["y"]]), max_size=8))
def test_customer_info_is_the_contract_rule(user: dict[str, Any]) -> None:
    """Enough customer information: some key with a value, and the keys with a value not all
    within one of the insufficient sets of capi-contract.md."""
    keys = {k for k, v in user.items() if v not in (None, "", [])}
    expected = bool(keys) and not any(keys <= bad for bad in capi.INSUFFICIENT_KEY_SETS)
    assert capi.has_customer_info(user) is expected
