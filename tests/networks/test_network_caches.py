"""The per-value caches and fast paths of LinkedIn's and Google's rules (issue 16 item 7) answer
exactly what the uncached rules answer: whatever the value, the first call and a repeated call
(from the cache) give the uncached result, and the builders' payloads do not change."""

from __future__ import annotations

import re
import unicodedata
from typing import Any

import phonenumbers
from googlekit import account_spec, contact, lifecycle_event, now, recent, stage_change
from hypothesis import given
from hypothesis import strategies as st

from reconciler.core.networks import google, google_checks, linkedin
from reconciler.core.networks import google_normalize as gn
from reconciler.core.normalize import clean

ACCOUNT = account_spec()
# digits and the separators people type, with the prefixes the NANP fast path looks at
PHONES = st.builds(lambda head, body, tail: head + body + tail,
                   st.sampled_from(["", "+1", "+1 ", "+", " +1", "1 ", "+44 ", "(", "0"]),
                   st.text(alphabet="0123456789 -()", min_size=0, max_size=16),
                   st.sampled_from(["", " ", ")", "x1", "٣"]))
TEXTS = st.text(max_size=24) | st.sampled_from(["Ann@Example.com", " a.b+c@gmail.com ",
                                                "O'Brien", "Zoë", "A" * 64, "ab" * 32])
REGIONS = st.sampled_from(["US", "GB", "DE", "CA", None])


def library_phone(value: str, region: str | None) -> str | None:
    """Google's phone normalization by phonenumbers alone (what ``norm_phone`` was)."""
    try:
        parsed = phonenumbers.parse(clean(value).strip(), region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


@given(PHONES, REGIONS)
def test_the_north_american_fast_path_answers_what_phonenumbers_answers(
        raw: str, region: str | None) -> None:
    assert gn._norm_phone(raw, region) == library_phone(raw, region)


def test_the_fast_path_takes_the_usual_north_american_numbers() -> None:
    assert gn._nanp("(800) 555-0100", "US") == "+18005550100"
    assert gn._nanp("+1 212 555 0100", "GB") == "+12125550100"
    assert gn._nanp("(800) 555-0100", "GB") is None  # a national number elsewhere: library
    assert gn._nanp("(100) 555-0100", "US") is None  # no area code starts with 1


@given(st.sampled_from(["em", "ph", "fn", "ln"]), TEXTS | PHONES, REGIONS)
def test_google_digests_cached_equal_uncached(key: str, raw: str, region: str | None) -> None:
    gn.clear_caches()
    digest = gn.digester(key, region)
    expected = gn.digest_uncached(key, raw, region)
    assert digest(raw) == expected  # worked out
    assert digest(raw) == expected  # remembered


def test_phone_digests_are_remembered_per_region() -> None:
    gn.clear_caches()
    national = "020 7946 0958"
    assert gn.digester("ph", "GB")(national) == gn.sha256_hex("+442079460958")
    assert gn.digester("ph", "US")(national) != gn.digester("ph", "GB")(national)


@given(TEXTS)
def test_linkedin_email_cached_equals_uncached(raw: str) -> None:
    linkedin.clear_caches()
    expected = linkedin.norm_email_uncached(raw)
    assert linkedin.norm_email(raw) == expected
    assert linkedin.norm_email(raw) == expected


@given(st.text(alphabet="0123456789-T:.Z ", max_size=24)
       | st.datetimes().map(lambda d: d.strftime("%Y-%m-%dT%H:%M:%SZ")))
def test_google_timestamps_cached_equal_uncached(raw: str) -> None:
    google_checks.clear_caches()
    expected = google_checks.parse_timestamp_uncached(raw)
    assert google_checks.parse_timestamp(raw) == expected
    assert google_checks.parse_timestamp(raw) == expected


values = st.none() | st.integers() | TEXTS | PHONES
props = st.dictionaries(st.sampled_from(["email", "phone", "firstname", "lastname", "zip",
                                         "country", "hs_google_click_id"]), values)


@given(props)
def test_skip_reasons_with_the_remembered_builder_equal_a_fresh_builders(
        raw: dict[str, Any]) -> None:
    live = lifecycle_event(properties=["email", "phone", "firstname", "lastname", "zip"])
    crm_event, who = stage_change(recent()), contact(raw)
    fresh = google.GoogleBuilder(live, ACCOUNT)
    expected = None if fresh.has_identifier(who, crm_event) else google.SKIP_NO_IDENTIFIER
    for _ in range(2):
        assert google.RULES.skip_reason(live, ACCOUNT, crm_event, who) == expected
    gn.clear_caches()
    payload = google.RULES.builder(live, ACCOUNT).build(crm_event, who)
    assert payload == google.GoogleBuilder(live, ACCOUNT).build(crm_event, who)  # cached
    assert (google.RULES.validate(payload, now()) is None) == (expected is None)


def test_a_changed_event_gets_its_own_skip_builder() -> None:
    """The skip rule's builder is remembered per live event object: another object (a changed
    event after apply) is read with its own shared properties."""
    crm_event = stage_change(recent())
    who = contact({"email": "a@b.co"})
    shares_email = lifecycle_event(properties=["email"])
    shares_zip = lifecycle_event(properties=["zip"])
    assert google.RULES.skip_reason(shares_email, ACCOUNT, crm_event, who) is None
    assert google.RULES.skip_reason(shares_zip, ACCOUNT, crm_event, who) == (
        google.SKIP_NO_IDENTIFIER)


def char_by_char_name(value: str) -> str | None:
    """Google's name normalization one character at a time (what ``norm_name`` was)."""
    text = "".join(c for c in clean(value).lower()
                   if c.isspace() or unicodedata.category(c)[0] in "LMN")
    return re.sub(r"\s+", " ", text).strip() or None


@given(st.text(max_size=24) | st.text(alphabet=st.characters(max_codepoint=127), max_size=24))
def test_the_ascii_name_path_answers_what_the_character_rule_answers(raw: str) -> None:
    assert gn.norm_name(raw) == char_by_char_name(raw)


@given(st.text(max_size=20) | st.text(alphabet="AZaz09 -_.\t", max_size=20))
def test_the_ascii_postal_code_path_answers_what_the_character_rule_answers(raw: str) -> None:
    text = re.sub(r"\s+", " ", raw).strip()
    ok = 0 < len(text) <= 16 and all(c.isalnum() or c in " -" for c in text)
    assert google_checks.postal_code(raw) == (text if ok else None)
