"""Issue 13, items 1-7: the normalization corpus and properties of every normalizer.

``tests/data/normalization/cases.json`` holds input/expected pairs, each naming the public source
it was taken from or decided by (Meta's documentation, Meta's capi-param-builder and SDK test
suites, the cases issue 13 lists); where Meta's documentation decides, the expected value follows
it. ``expected`` is the value before hashing (its SHA-256 is sent), or the digest itself when the
input already is one (passed through, lowercased).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reconciler.core.normalize import (
    HASHED_KEYS,
    clean,
    hash_value,
    is_hashed,
    normalize,
    user_data,
)

CASES = json.loads((Path(__file__).parent.parent / "data" / "normalization" / "cases.json")
                   .read_text(encoding="utf-8"))["cases"]
HEX64 = re.compile(r"[0-9a-f]{64}")


def _id(case: dict[str, Any]) -> str:
    return f"{case['key']}:{case['input']!r}"[:60]


@pytest.mark.parametrize("case", CASES, ids=[_id(c) for c in CASES])
def test_corpus_case(case: dict[str, Any]) -> None:
    key, raw, expected = case["key"], case["input"], case["expected"]
    ctx = case.get("context", {})
    sent = hash_value(key, raw, **ctx)
    if isinstance(raw, str) and is_hashed(clean(raw).strip()):  # any case: passed through
        assert sent == expected, case["source"]
        return
    assert normalize(key, raw, **ctx) == expected, case["source"]
    assert sent == (None if expected is None
                    else hashlib.sha256(expected.encode()).hexdigest()), case["source"]


def test_corpus_covers_every_item_of_the_issue() -> None:
    keys = Counter(c["key"] for c in CASES)
    assert keys["country"] >= 60 and keys["db"] >= 40 and keys["st"] >= 25
    assert {c["key"] for c in CASES} == HASHED_KEYS
    assert all(c["source"] for c in CASES)


def test_wrong_types_are_counted_not_raised() -> None:
    dropped: Counter[tuple[str, str]] = Counter()
    out = user_data({"em": 42, "fn": None, "ln": ["Doe"], "ct": "Paris", "country": "Narnia",
                     "zp": 94035.0}, dropped=dropped)
    assert out == {"ct": hashlib.sha256(b"paris").hexdigest()}
    assert dropped == {("em", "not_a_string"): 1, ("ln", "not_a_string"): 1,
                       ("zp", "not_a_string"): 1, ("country", "unusable"): 1}


def test_a_lead_id_given_as_a_number_stays_one() -> None:
    assert user_data({"lead_id": 1234567890123456}) == {"lead_id": 1234567890123456}
    assert user_data({"lead_id": " 1234567890123456 "}) == {"lead_id": 1234567890123456}
    assert user_data({"lead_id": True}) == {}  # a bool is not a lead id


def test_a_country_table_is_built_once_not_per_event() -> None:
    from reconciler.core import places

    places.country_code("Deutschland")
    before = places._countries.cache_info()
    for name in ("España", "México", "Brasil", "Holland", "Россия"):
        assert places.country_code(name + " ")  # a new string each time
    after = places._countries.cache_info()
    assert after.misses == before.misses and after.currsize == 1


_ANY = st.one_of(st.text(max_size=40), st.none(), st.integers(), st.floats(),
                 st.lists(st.text(max_size=5), max_size=3), st.booleans(),
                 st.from_regex(r"[0-9a-fA-F]{64}", fullmatch=True))


@given(st.sampled_from(sorted(HASHED_KEYS)), _ANY,
       st.sampled_from([None, "1", "44", "49", "86"]), st.sampled_from([None, "mdy", "dmy"]))
def test_normalizers_never_raise_and_are_idempotent(key: str, value: object, cc: str | None,
                                                    order: str | None) -> None:
    once = normalize(key, value, date_order=order)
    assert once is None or isinstance(once, str)
    if once is not None and key != "ph":  # a phone's output is E.164: see the next test
        assert normalize(key, once, date_order=order) == once
    sent = hash_value(key, value, default_country_code=cc, date_order=order)
    assert sent is None or HEX64.fullmatch(sent)
    if sent is not None:
        assert hash_value(key, sent, default_country_code=cc) == sent  # never hashed twice


@given(st.text(max_size=25))
def test_phone_output_is_stable(value: str) -> None:
    once = normalize("ph", value)
    assert once is None or (once.isdigit() and not once.startswith("0"))
    if once is not None:
        assert normalize("ph", once) == once


@pytest.mark.parametrize(("spec", "expected"), [
    ({"defaultCountryCode": "1"}, "19900203"),  # US: month first
    ({"defaultCountryCode": "44"}, "19900302"),  # GB: day first (CLDR)
    ({"defaultCountryCode": "1", "dateOrder": "dmy"}, "19900302"),  # the account decides
    ({"defaultCountryCode": "44", "dateOrder": "mdy"}, "19900203"),
])
def test_an_ambiguous_birth_date_follows_the_account(spec: dict[str, str],
                                                    expected: str) -> None:
    from agentkit import account_spec, contact, form_event

    from reconciler.core.capi import PayloadBuilder

    builder = PayloadBuilder(form_event(properties=["date_of_birth"]), account_spec(**spec))
    sent = builder.user_data(contact(properties={"date_of_birth": "02/03/1990"}))
    assert sent["db"] == hashlib.sha256(expected.encode()).hexdigest()


def test_month_names_and_date_orders_are_looked_up_once() -> None:
    from reconciler.core import birthdates

    birthdates.birth_date("16 Feb 1997")
    before = birthdates._months.cache_info()
    for value in ("3 März 1990", "1er janvier 1990", "February 16, 1997"):
        assert birthdates.birth_date(value)
    assert birthdates._months.cache_info().misses == before.misses
