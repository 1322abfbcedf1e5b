"""Normalize and hash customer information for Meta (capi-contract.md, the documented rules).

Every value is first cleaned: Unicode format characters (BOM, zero-width space and joiners, soft
hyphen: category Cf), variation selectors (``Paris ❤️``) and combining marks attached to no
letter are removed, and the text is NFC. Then, per key:

| key | rule |
|---|---|
| em | trim, lowercase |
| ph | digits only (symbols and letters removed), no leading zeros, with country code (E.164
  without ``+``; the account's default calling code completes national numbers; unparsable
  input falls back to digits only) |
| fn, ln | lowercase, keep letters and digits (any script), drop punctuation and spaces: digits
  are not punctuation (``John2`` -> ``john2``) |
| ct | lowercase, keep letters and digits (no punctuation, no spaces) |
| st | 2-letter code, lowercase (``places.state_code``: names, ``Calif.``, ``D.C.``); other values
  lowercased without punctuation or spaces |
| zp | lowercase, letters and digits only; US (country ``us``, or 5 or 9 digits with only spaces
  or dashes between when the country is unknown): first 5 digits |
| country | ISO 3166-1 alpha-2, lowercase (``places.country_code``: names, aliases, names in
  other languages); unknown values are dropped (their hash could never match) |
| db | ``YYYYMMDD`` (``birthdates.birth_date``: many orders and separators, 1900 to today;
  an ambiguous day/month follows the account's ``dateOrder`` or its calling code's region) |
| ge | ``f``/``m`` from female/male/woman/man/f/m/w; anything else is dropped |
| external_id | trim, lowercase, then hashed like the others (our one rule, applied everywhere) |

Hashed keys get lowercase hex SHA-256 of the UTF-8 normalized value. A value that already is a
64-char hex digest, in any case, is lowercased and passed through for every hashed key, as
Meta's SDKs do. Keys that Meta wants in clear (``client_ip_address``, ``client_user_agent``,
``fbc``, ``fbp``, ``lead_id``, ``subscription_id``, ``fb_login_id``) are passed through trimmed.
A value that is not a string (a number, None, a list from a CRM export) is dropped, never an
error; ``user_data`` counts why each value was dropped: ``not_a_string``, or ``unusable``
(nothing left once normalized, e.g. an unknown country).

Hot path: ``digester`` gives, per key, a function of the raw value with the account's context
bound (``capi.PayloadBuilder`` makes one per shared key); what it sends for names, places,
gender and birth dates is remembered per raw value, and ASCII text skips the cleaning pass.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any, Final

from reconciler.core.birthdates import birth_date, date_order_for_calling_code
from reconciler.core.places import country_code, state_code

HASHED_KEYS = frozenset(
    {"em", "ph", "fn", "ln", "db", "ge", "ct", "st", "zp", "country", "external_id"})
UNHASHED_KEYS = frozenset({"client_ip_address", "client_user_agent", "fbc", "fbp", "lead_id",
                           "subscription_id", "fb_login_id"})
LEAD_ID = re.compile(r"[0-9]{15,17}")  # a Meta lead id; ASCII digits only: \d matches any script's

_HEX64 = re.compile(r"[0-9a-fA-F]{64}")
_US_ZIP = re.compile(r"[0-9]{5}([0-9]{4})?")  # on the compact form: 94035, 94035-1234
_LETTERS = re.compile(r"[^\W\d_]+")
_PLAIN_PHONE = re.compile(r"\+?[0-9\s().\-/_|]+", re.ASCII)
_NON_DIGIT = re.compile(r"[^0-9]")
_ASCII_NOT_ALNUM = re.compile(r"[^a-z0-9]")
_GENDER = {"f": "f", "female": "f", "w": "f", "woman": "f",
           "m": "m", "male": "m", "man": "m"}


def _is_variation_selector(c: str) -> bool:
    return "\ufe00" <= c <= "\ufe0f" or "\U000e0100" <= c <= "\U000e01ef"


def clean(value: str) -> str:
    """``value`` without format characters, variation selectors or marks attached to no letter
    (NFC); ASCII text is returned as it is."""
    if value.isascii():
        return value
    out: list[str] = []
    after_letter = False
    for c in unicodedata.normalize("NFC", value):
        category = unicodedata.category(c)
        if category == "Cf" or _is_variation_selector(c):
            continue
        if category[0] == "M":
            if after_letter:
                out.append(c)
            continue
        after_letter = category[0] == "L"
        out.append(c)
    return "".join(out)


def is_hashed(value: str) -> bool:
    """A 64-char hex digest (already hashed: lowercased, never hashed again)."""
    return len(value) == 64 and _HEX64.fullmatch(value) is not None


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def _alnum(value: str) -> str:
    """Lowercase letters, their marks and digits of a cleaned ``value`` (any script)."""
    if value.isascii():
        return _ASCII_NOT_ALNUM.sub("", value.lower())
    text = value.lower()
    if text.isalpha():
        return text
    return "".join(c for c in text if unicodedata.category(c)[0] in "LMN")


def norm_name(value: str) -> str | None:
    """fn/ln: lowercase letters and digits (``O'Brien`` -> ``obrien``, ``Valéry`` -> ``valéry``,
    ``John 2nd`` -> ``john2nd``)."""
    return _alnum(value) or None


def norm_ct(value: str) -> str | None:
    """ct: lowercase, no punctuation, no spaces (``St. Louis`` -> ``stlouis``)."""
    return _alnum(value) or None


def norm_ph(value: str, default_country_code: str | None = None) -> str | None:
    """ph: digits with country code, no leading zeros (``(650)555-1212`` + ``1`` ->
    ``16505551212``). Fast paths for ``+`` numbers and NANP; phonenumbers otherwise."""
    v = value.strip()
    digits = v.replace(" ", "").replace("-", "").replace("(", "").replace(")", "")
    if digits[:1] == "+" and v[0] == "+":
        digits = digits[1:]
    if digits.isdigit() and digits.isascii():  # the usual: digits, spaces, - ( ) and a +
        return _ph_digits(v, digits, default_country_code)
    return _ph_general(v, default_country_code)


def _ph_general(v: str, default_country_code: str | None) -> str | None:
    """``norm_ph`` of any trimmed value (Meta: remove symbols, letters and leading zeros)."""
    if not v:
        return None
    plain = _PLAIN_PHONE.fullmatch(v)
    if plain is None:
        v = _LETTERS.sub("", v).strip()
        plain = _PLAIN_PHONE.fullmatch(v)
    if plain is None:
        return _ph_with_library(v, default_country_code)
    return _ph_digits(v, _NON_DIGIT.sub("", v), default_country_code)


def _ph_digits(v: str, digits: str, default_country_code: str | None) -> str | None:
    """A number written with digits and separators only (``digits``: its digits)."""
    if v.startswith("+") and "(0" not in v:
        return digits.lstrip("0") or None
    if default_country_code == "1" and not v.startswith("0"):
        if len(digits) == 10:
            return "1" + digits
        if len(digits) == 11 and digits[0] == "1":
            return digits
    return _ph_with_library(v, default_country_code)


def _ph_with_library(value: str, default_country_code: str | None) -> str | None:
    import phonenumbers  # here, not at the top: plan and validate never need it (~9 ms)

    region = None
    if default_country_code and default_country_code.isdigit():
        code = phonenumbers.region_code_for_country_code(int(default_country_code))
        region = None if code == "ZZ" else code
    try:
        parsed = phonenumbers.parse(value, region)
        if phonenumbers.is_possible_number(parsed):
            e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
            return e164.lstrip("+") or None
    except phonenumbers.NumberParseException:
        pass
    return _NON_DIGIT.sub("", value).lstrip("0") or None


def norm_st(value: str) -> str | None:
    """st: 2-letter lowercase code (``California``, ``Calif.``, ``CaliforniaState`` -> ``ca``)."""
    return state_code(_alnum(value))


def norm_country(value: str) -> str | None:
    """country: ISO alpha-2 lowercase (``United States``, ``U.S.``, ``Deutschland``); unknown ->
    None."""
    return country_code(value)


def norm_zp(value: str, country: str | None = None) -> str | None:
    """zp: lowercase letters and digits; US: first 5 digits (``94035-1234`` -> ``94035``).
    ``country`` only tells the US (``us``), unknown (None) or another country apart."""
    raw = value.strip().lower()
    compact = raw.replace(" ", "").replace("-", "")
    plain = compact.isascii() and compact.isalnum()  # only spaces or dashes were removed
    if not plain:
        compact = _alnum(compact)
    if not compact:
        return None
    us = country == "us" or (country is None and plain
                             and _US_ZIP.fullmatch(compact) is not None)
    if us and compact[:5].isdigit():
        return compact[:5]
    return compact


def norm_db(value: str, date_order: str | None = None) -> str | None:
    """db: YYYYMMDD (``1997-02-16``, ``Born: 16.02.1997`` -> ``19970216``); unusable -> None."""
    return birth_date(value, date_order or "mdy")


def norm_ge(value: str) -> str | None:
    """ge: ``f`` or ``m`` (``Female`` -> ``f``); anything else -> None."""
    return _GENDER.get(_alnum(value))


# Every normalizer as (cleaned value, default calling code, contact country, date order).
_Rule = Callable[[str, str | None, str | None, str | None], str | None]


def _value_only(fn: Callable[[str], str | None]) -> _Rule:
    return lambda value, _code, _country, _order: fn(value)


_VALUE_ONLY: dict[str, Callable[[str], str | None]] = {
    "fn": norm_name, "ln": norm_name, "ct": norm_ct, "st": norm_st, "country": norm_country,
    "ge": norm_ge}
_RULES: dict[str, _Rule] = {
    **{key: _value_only(fn) for key, fn in _VALUE_ONLY.items()},
    # em and external_id: trim (the value is trimmed already), lowercase
    "em": lambda value, _code, _country, _order: value.lower() or None,
    "external_id": lambda value, _code, _country, _order: value.lower() or None,
    "ph": lambda value, code, _country, _order: norm_ph(value, code),
    "zp": lambda value, _code, country, _order: norm_zp(value, country),
    "db": lambda value, code, _country, order: norm_db(
        value, order or date_order_for_calling_code(code)),
}


def normalize(key: str, value: object, *, default_country_code: str | None = None,
              country: str | None = None, date_order: str | None = None) -> str | None:
    """The normalized value of one user_data key (None: nothing usable, or not a string).
    ``country`` is the contact's normalized country (US ZIP rule); ``date_order`` the
    account's (``mdy``/``dmy``/``ymd``) for ambiguous dates of birth."""
    rule = _RULES.get(key)
    if rule is None:
        raise ValueError(f"no normalization rule for user_data key {key!r}")
    if type(value) is not str:
        return None
    return rule(clean(value).strip(), default_country_code, country, date_order)


# What is sent for one key: (raw value, the contact's normalized country) -> lowercase hex
# SHA-256, the lowercased digest when the value already is one, or None (nothing usable). The
# account's context (default calling code, date order) is bound when the function is made.
Digest = Callable[[str, str | None], str | None]

_sha256 = hashlib.sha256
# Keys whose values repeat across contacts (names, places, gender, birth dates): what is sent
# for a raw value is remembered per key, keyed by the raw value itself (db: per date order; zp:
# per US / unknown / other contact country). A pure function of those, so the answer is the
# same either way. Email, phone and external_id are nearly unique per contact: not cached.
# Raw values remembered per cache (about 2 MiB when full, besides the raw strings themselves);
# a full cache starts over.
CACHE_SIZE: Final = 16384
_CACHES: dict[tuple[str, str | None], dict[Any, str | None]] = {}


def clear_caches() -> None:
    """Forget every remembered value (a cold start, for benchmarks)."""
    for cache in _CACHES.values():
        cache.clear()


# A normalizer given a cleaned, trimmed value and one more argument (the default calling code,
# the contact's country or the date order, as the key needs).
_Rule2 = Callable[[str, Any], str | None]


def _sent(rule: _Rule2, value: str, arg: Any) -> str | None:
    """Clean and trim ``value``; pass a digest through lowercased, else normalize + SHA-256."""
    v = value.strip() if value.isascii() else clean(value).strip()
    if len(v) == 64 and _HEX64.fullmatch(v) is not None:  # is_hashed, inlined
        return v.lower()
    normalized = rule(v, arg)
    return _sha256(normalized.encode()).hexdigest() if normalized else None


def _uncached(rule: _Rule2, arg: Any) -> Digest:
    def digest(value: str, _country: str | None) -> str | None:  # _sent, inlined: hot
        v = value.strip() if value.isascii() else clean(value).strip()
        if len(v) == 64 and _HEX64.fullmatch(v) is not None:
            return v.lower()
        normalized = rule(v, arg)
        return _sha256(normalized.encode()).hexdigest() if normalized else None
    return digest


def _cached(rule: _Rule2, arg: Any, cache: dict[Any, str | None]) -> Digest:
    get = cache.get

    def digest(value: str, _country: str | None) -> str | None:
        found = get(value, "")  # "" is never sent: it marks a value not seen yet
        if found != "":
            return found
        if len(cache) >= CACHE_SIZE:
            cache.clear()
        found = cache[value] = _sent(rule, value, arg)
        return found
    return digest


def _cached_zp() -> Digest:
    """zp, remembered per raw value and what the contact's country means to ``norm_zp``: the
    US, unknown, or another country."""
    us, unknown, other = _cache("zp", "us"), _cache("zp", None), _cache("zp", "*")

    def digest(value: str, country: str | None) -> str | None:
        cache = us if country == "us" else unknown if country is None else other
        found = cache.get(value, "")
        if found != "":
            return found
        if len(cache) >= CACHE_SIZE:
            cache.clear()
        found = cache[value] = _sent(norm_zp, value, country)
        return found
    return digest


def _em(value: str, _country: str | None) -> str | None:
    """em and external_id: trim, lowercase (``_uncached`` with the rule inlined: hot)."""
    v = value.strip() if value.isascii() else clean(value).strip()
    if len(v) == 64 and _HEX64.fullmatch(v) is not None:
        return v.lower()
    v = v.lower()
    return _sha256(v.encode()).hexdigest() if v else None


def _one_arg(fn: Callable[[str], str | None]) -> _Rule2:
    return lambda value, _arg: fn(value)


def _cache(key: str, variant: str | None = None) -> dict[Any, str | None]:
    return _CACHES.setdefault((key, variant), {})


def digester(key: str, default_country_code: str | None = None,
             date_order: str | None = None) -> Digest:
    """``hash_value`` for one hashed key with the account's context bound, as a function of
    (raw string value, the contact's normalized country): for callers that hash the same keys
    many times (``capi.PayloadBuilder`` makes one per shared key)."""
    if key in ("em", "external_id"):
        return _em
    if key == "ph":
        return _uncached(norm_ph, default_country_code)
    if key == "zp":
        return _cached_zp()
    if key == "db":
        order = date_order or date_order_for_calling_code(default_country_code)
        return _cached(norm_db, order, _cache(key, order))
    rule = _VALUE_ONLY.get(key)
    if rule is None:
        raise ValueError(f"unknown user_data key {key!r}")
    return _cached(_one_arg(rule), None, _cache(key))


def hash_value(key: str, value: object, *, default_country_code: str | None = None,
               country: str | None = None, date_order: str | None = None) -> str | None:
    """Normalize then SHA-256 a hashed key; a 64-hex digest passes through lowercased; a value
    that is not a string gives None."""
    if type(value) is not str:
        return None
    return digester(key, default_country_code, date_order)(value, country)


def clear_value(key: str, value: str) -> str | int | None:
    """A key Meta wants in clear, cleaned and trimmed; ``lead_id`` of 15-17 ASCII digits as the
    integer Meta's payload specification gives (other lead ids stay strings: refused later)."""
    text = (value if value.isascii() else clean(value)).strip()
    if key == "lead_id" and LEAD_ID.fullmatch(text):
        return int(text)
    return text or None


def user_data(raw: Mapping[str, object], *, default_country_code: str | None = None,
              country: str | None = None, date_order: str | None = None,
              dropped: Counter[tuple[str, str]] | None = None) -> dict[str, str | int]:
    """Meta ``user_data`` from raw values: hashed keys normalized and hashed, clear keys trimmed.
    Values that are None or empty are skipped; values that are not strings or normalize to
    nothing are dropped and counted in ``dropped`` as ``(key, reason)``. Unknown keys raise
    ``ValueError`` (a bug, not input)."""
    out: dict[str, str | int] = {}
    for key, value in raw.items():
        if key not in UNHASHED_KEYS and key not in HASHED_KEYS:
            raise ValueError(f"unknown user_data key {key!r}")
        if value is None or value == "":
            continue
        if key == "lead_id" and type(value) is int:  # already Meta's type
            value = str(value)
        if type(value) is not str:
            if dropped is not None:
                dropped[(key, "not_a_string")] += 1
            continue
        usable = (clear_value(key, value) if key in UNHASHED_KEYS else digester(
            key, default_country_code, date_order)(value, country))
        if usable:
            out[key] = usable
        elif dropped is not None:
            dropped[(key, "unusable")] += 1
    return out
