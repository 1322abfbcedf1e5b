"""Issue 13 (Benchmarks) / issue 17 item 3: the payload builder's fast paths and caches send
exactly what the plain normalizers give, and no locale data is read per event.

``PayloadBuilder`` hashes through ``normalize.digester`` (values remembered per key, keyed by the
raw value; zp with the contact's country; db per date order) and a regex-free path for phones
written with digits and the usual separators. These tests compare both with the plain rules
(``normalize.normalize`` + SHA-256, ``normalize_rules._ph_general``) on generated contacts whose
values repeat, so cache hits, misses and every context are exercised.
"""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from agentkit import account_spec, contact, form_event
from hypothesis import example, given, settings
from hypothesis import strategies as st

from reconciler.core import normalize, normalize_rules, places
from reconciler.core.capi import PayloadBuilder
from reconciler.core.normalize import clean, is_hashed

SHARED: list[Any] = ["email", "phone", "mobilephone", "firstname", "lastname", "city", "state",
                     "zip", "country", "date_of_birth", "gender",
                     {"property": "crm_id", "as": "external_id"}]
KEY_OF = {"email": "em", "phone": "ph", "mobilephone": "ph", "firstname": "fn",
          "lastname": "ln", "city": "ct", "state": "st", "zip": "zp", "country": "country",
          "date_of_birth": "db", "gender": "ge", "crm_id": "external_id"}
# Values that repeat across contacts, in the shapes a CRM export has them.
POOL = ["John", " JOHN ", "Zoë", "O'Brien", "St. Louis", "Paris \u2764\ufe0f", "94035-1234",
        "94035", "SW1A 1AA", "10115", "US", "United States", "Deutschland", "U.K.", "Narnia",
        "12/31/1990", "02/03/1990", "Born: 31.12.1990", "1990-02-03", "Female", "m", "Calif.",
        "(650) 555-1212", "+44 20 7946 0000", "+1 650 555 1212", "(+1) 650 555 1212",
        "0650 555 1212", "650.555.1212", "\ufeffjohn@x.com", " Ann@Example.COM ",
        "A1B2C3D4" * 8, "", "   "]
VALUES = st.one_of(st.sampled_from(POOL), st.text(max_size=12))
CONTACT = st.dictionaries(st.sampled_from(sorted(KEY_OF)), VALUES, max_size=len(KEY_OF))


def expected_user_data(props: dict[str, str], dcc: str, order: str | None) -> dict[str, str]:
    """What the plain normalizers give, property by property (the first with a value wins)."""
    raw_country = props.get("country")
    country = places.country_code(raw_country) if raw_country else (
        "us" if dcc == "1" else None)
    out: dict[str, str] = {}
    taken: set[str] = set()
    for prop in ("email", "phone", "mobilephone", "firstname", "lastname", "city", "state",
                 "zip", "country", "date_of_birth", "gender", "crm_id"):
        key, value = KEY_OF[prop], props.get(prop)
        if key in taken or not value or not value.strip():
            continue
        taken.add(key)
        cleaned = clean(value).strip()
        if is_hashed(cleaned):
            out[key] = cleaned.lower()
            continue
        plain = normalize.normalize(key, value, default_country_code=dcc, country=country,
                                    date_order=order)
        if plain:
            out[key] = hashlib.sha256(plain.encode()).hexdigest()
    return out


@given(st.lists(CONTACT, min_size=1, max_size=12), st.sampled_from(["1", "44", "49"]),
       st.sampled_from([None, "mdy", "dmy"]))
def test_the_builder_sends_what_the_plain_normalizers_give(
        contacts: list[dict[str, str]], dcc: str, order: str | None) -> None:
    spec = account_spec(defaultCountryCode=dcc, **({"dateOrder": order} if order else {}))
    builder = PayloadBuilder(form_event(properties=SHARED), spec)
    for props in contacts + contacts:  # the second time round, from the caches
        sent = builder.user_data(contact(properties=props))
        assert sent == expected_user_data(props, dcc, order), props


@settings(max_examples=400)  # cheap: one regex-free path against the general rule
@given(st.text(alphabet="+0123456789 -()./_|\tx\u0663", max_size=20),
       st.sampled_from([None, "1", "44", "49"]))
@example("(+1) 650 555 1212", "1")
@example("+\u0663", "1")
@example("+44 (0)20 7946 0000", "44")
@example("00 44 20 7946 0000", "1")
@example("+-1", None)
def test_a_phone_fast_path_gives_what_the_general_rule_gives(value: str,
                                                              dcc: str | None) -> None:
    assert normalize.norm_ph(value, dcc) == normalize_rules._ph_general(value.strip(), dcc)


def test_a_zip_is_remembered_per_contact_country() -> None:
    """The same raw zip is 5 digits for a US contact and kept whole for a Canadian one."""
    builder = PayloadBuilder(form_event(properties=["zip", "country"]), account_spec())
    us = builder.user_data(contact(properties={"zip": "94035-1234", "country": "US"}))
    ca = builder.user_data(contact(properties={"zip": "94035-1234", "country": "Canada"}))
    assert us["zp"] == hashlib.sha256(b"94035").hexdigest()
    assert ca["zp"] == hashlib.sha256(b"940351234").hexdigest()


def test_a_full_cache_starts_over_and_stays_right() -> None:
    digest = normalize.digester("ct")
    for i in range(normalize.CACHE_SIZE + 10):
        digest(f"Town {i}", None)
    assert 0 < len(normalize._CACHES[("ct", None)]) <= normalize.CACHE_SIZE
    assert digest("St. Louis", None) == hashlib.sha256(b"stlouis").hexdigest()


def test_no_locale_data_is_read_per_event(monkeypatch: pytest.MonkeyPatch) -> None:
    """Country names, month names and the date order come from tables built once: building
    payloads for contacts with countries and birth dates never seen before reads no locale."""
    spec = account_spec(defaultCountryCode="44")
    shared = ["email", "country", "date_of_birth", "zip"]
    warm = PayloadBuilder(form_event(properties=shared), spec)
    warm.user_data(contact(properties={"country": "France", "date_of_birth": "3 mars 1990"}))
    parsed = _count_locale_parses(monkeypatch)
    names = ["España", "México", "Brasil", "Holland", "Россия", "Deutschland", "Côte d'Ivoire",
             "The Netherlands", "Türkiye", "日本"]
    sent = 0
    for i in range(200):
        builder = PayloadBuilder(form_event(properties=shared), spec)  # one per inbox chunk
        props = {"email": f"p{i}@x.com", "country": f" {names[i % len(names)]}{'.' * (i % 3)}",
                 "date_of_birth": f"{1 + i % 28} {('Feb', 'März', 'juin')[i % 3]} 19{50 + i % 40}",
                 "zip": f"{10000 + i}"}
        sent += len(builder.user_data(contact(properties=props)))
    assert parsed == []
    assert sent == 200 * 4  # every key was usable: the tables answered


def test_codes_and_english_names_load_no_locale(monkeypatch: pytest.MonkeyPatch) -> None:
    """A process whose contacts carry ISO codes or English names never loads CLDR's names (about
    0.15 s of every ``agent run --once``); a name only CLDR knows still resolves."""
    parsed = _count_locale_parses(monkeypatch)
    for cached in (places.country_code, places._countries, places._standard_countries):
        cached.cache_clear()
    try:
        assert [places.country_code(v) for v in ("DE", "fra", "Germany", "U.S.", "UAE")] == [
            "de", "fr", "de", "us", "ae"]
        assert parsed == []
        assert places.country_code("Deutschland") == "de"
        assert places.country_code("Republic of Deutschland") == "de"
        assert places.country_code("The Netherlands") == "nl"
        assert parsed  # CLDR was read for it
    finally:
        for cached in (places.country_code, places._countries, places._standard_countries):
            cached.cache_clear()


def test_the_standard_table_agrees_with_the_full_one() -> None:
    """Earlier sources win a clash, so answering from pycountry and the aliases first gives
    what the full table gives for every name it knows."""
    full = places._countries()
    standard = places._standard_countries()
    assert standard and all(full[key] == code for key, code in standard.items())
    assert len(full) > len(standard)


def _count_locale_parses(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """The arguments of every ``babel.Locale.parse`` call from now on (each loads a locale)."""
    import babel

    parsed: list[object] = []
    real_parse = babel.Locale.parse

    def counting_parse(*args: Any, **kwargs: Any) -> Any:
        parsed.append(args)
        return real_parse(*args, **kwargs)

    monkeypatch.setattr(babel.Locale, "parse", counting_parse)
    return parsed
