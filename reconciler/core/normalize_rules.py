"""The normalization rule of each Meta ``user_data`` key (the table in ``normalize.py``'s
docstring): ``clean`` first, then ``norm_<key>``; ``normalize(key, value)`` applies the key's
rule. Pure functions of the value and the account's or contact's context; ``normalize.py``
hashes what they give and remembers it.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Callable

from reconciler.core.birthdates import birth_date, date_order_for_calling_code
from reconciler.core.places import country_code, state_code

HEX64 = re.compile(r"[0-9a-fA-F]{64}")
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
    return len(value) == 64 and HEX64.fullmatch(value) is not None


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


VALUE_ONLY: dict[str, Callable[[str], str | None]] = {
    "fn": norm_name, "ln": norm_name, "ct": norm_ct, "st": norm_st, "country": norm_country,
    "ge": norm_ge}
_RULES: dict[str, _Rule] = {
    **{key: _value_only(fn) for key, fn in VALUE_ONLY.items()},
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
