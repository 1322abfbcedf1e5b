"""Normalize and hash customer information for Meta (capi-contract.md, the documented rules).

| key | rule |
|---|---|
| em | trim, lowercase |
| ph | digits only, no leading zeros, with country code (E.164 without ``+``; the account's default
  calling code completes national numbers; unparsable input falls back to digits only) |
| fn, ln | lowercase, keep only letters (any script, NFC), drop punctuation and spaces |
| ct | lowercase, keep only letters and digits (no punctuation, no spaces) |
| st | 2-letter code, lowercase; US state names mapped via pycountry; other values lowercased
  without punctuation or spaces |
| zp | lowercase, no spaces or dashes; US (country ``us``, or a ``NNNNN-NNNN`` shape when the
  country is unknown): first 5 digits |
| country | ISO 3166-1 alpha-2, lowercase; names and alpha-3 codes mapped via pycountry;
  unknown values are dropped (their hash could never match) |
| db | YYYYMMDD from ISO ``YYYY-MM-DD``/``YYYY/MM/DD``/``YYYYMMDD`` (a time part is ignored),
  ``DD.MM.YYYY``, ``MM/DD/YYYY`` (``DD/MM/YYYY`` when the first number is over 12) and month
  names (``16 Feb 1997``, ``February 16, 1997``); anything else is dropped |
| ge | ``f``/``m`` from female/male/woman/man/f/m/w; anything else is dropped |
| external_id | trim, lowercase, then hashed like the others (our one rule, applied everywhere) |

Hashed keys get lowercase hex SHA-256 of the UTF-8 normalized value. A raw value that already is a
64-char lowercase hex digest passes through untouched, so hashing never hashes twice. Keys that
Meta wants in clear (``client_ip_address``, ``client_user_agent``, ``fbc``, ``fbp``, ``lead_id``,
``subscription_id``, ``fb_login_id``) are passed through as given (trimmed).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Callable, Mapping
from datetime import date
from functools import lru_cache

import phonenumbers
import pycountry

HASHED_KEYS = frozenset(
    {"em", "ph", "fn", "ln", "db", "ge", "ct", "st", "zp", "country", "external_id"})
UNHASHED_KEYS = frozenset({"client_ip_address", "client_user_agent", "fbc", "fbp", "lead_id",
                           "subscription_id", "fb_login_id"})

_HEX64 = re.compile(r"[0-9a-f]{64}")
_US_ZIP = re.compile(r"\d{5}(-?\d{4})?")
_PLAIN_PHONE = re.compile(r"\+?[0-9\s().\-/]+", re.ASCII)
_NON_DIGIT = re.compile(r"[^0-9]")
_ASCII_NOT_ALPHA = re.compile(r"[^a-z]")
_ASCII_NOT_ALNUM = re.compile(r"[^a-z0-9]")
_COUNTRY_ALIASES = {"uk": "gb", "england": "gb", "scotland": "gb", "wales": "gb",
                    "usa": "us", "america": "us"}
_GENDER = {"f": "f", "female": "f", "w": "f", "woman": "f",
           "m": "m", "male": "m", "man": "m"}
_MONTHS = {m: i for i, m in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1)}


def is_hashed(value: str) -> bool:
    """A 64-char lowercase hex digest (already hashed: never hash it again)."""
    return len(value) == 64 and _HEX64.fullmatch(value) is not None


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def _keep(value: str, categories: tuple[str, ...]) -> str:
    """Lowercase ``value`` keeping only characters of the Unicode ``categories`` (L, M, N)."""
    if value.isascii():
        drop = _ASCII_NOT_ALNUM if "N" in categories else _ASCII_NOT_ALPHA
        return drop.sub("", value.lower())
    text = unicodedata.normalize("NFC", value).lower()
    if text.isalpha():  # every character is a letter (category L*): all are kept
        return text
    return "".join(c for c in text if unicodedata.category(c)[0] in categories)


def norm_em(value: str) -> str | None:
    return value.strip().lower() or None


def norm_name(value: str) -> str | None:
    """fn/ln: lowercase letters only (``O'Brien`` -> ``obrien``, ``Valéry`` -> ``valéry``)."""
    return _keep(value, ("L", "M")) or None


def norm_ct(value: str) -> str | None:
    """ct: lowercase, no punctuation, no spaces (``St. Louis`` -> ``stlouis``)."""
    return _keep(value, ("L", "M", "N")) or None


def norm_ph(value: str, default_country_code: str | None = None) -> str | None:
    """ph: digits with country code, no leading zeros (``(650)555-1212`` + ``1`` ->
    ``16505551212``). Fast paths for ``+`` numbers and NANP; phonenumbers otherwise."""
    v = value.strip()
    if not v:
        return None
    if _PLAIN_PHONE.fullmatch(v):
        digits = _NON_DIGIT.sub("", v)
        if v.startswith("+") and "(0" not in v:
            return digits.lstrip("0") or None
        if default_country_code == "1" and not v.startswith("0"):
            if len(digits) == 10:
                return "1" + digits
            if len(digits) == 11 and digits[0] == "1":
                return digits
    return _ph_with_library(v, default_country_code)


def _ph_with_library(value: str, default_country_code: str | None) -> str | None:
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


@lru_cache(maxsize=1)
def _us_states() -> dict[str, str]:
    table: dict[str, str] = {}
    for sub in pycountry.subdivisions:
        if sub.country_code != "US":
            continue
        table[_keep(sub.name, ("L", "M", "N"))] = sub.code.split("-", 1)[1].lower()
    return table


@lru_cache(maxsize=4096)
def norm_st(value: str) -> str | None:
    """st: 2-letter lowercase code; US state names mapped (``California`` -> ``ca``)."""
    compact = _keep(value, ("L", "M", "N"))
    if len(compact) == 2:
        return compact
    return _us_states().get(compact, compact) or None


@lru_cache(maxsize=4096)
def norm_country(value: str) -> str | None:
    """country: ISO alpha-2 lowercase (``United States`` -> ``us``); unknown -> None."""
    v = value.strip()
    if not v:
        return None
    alias = _COUNTRY_ALIASES.get(_keep(v, ("L",)))
    if alias:
        return alias
    try:
        return str(pycountry.countries.lookup(v).alpha_2).lower()
    except LookupError:
        return None


def norm_zp(value: str, country: str | None = None) -> str | None:
    """zp: lowercase, no spaces/dashes; US: first 5 digits (``94035-1234`` -> ``94035``)."""
    raw = value.strip().lower()
    compact = raw.replace(" ", "").replace("-", "")
    if not compact:
        return None
    us = country == "us" or (country is None and _US_ZIP.fullmatch(raw) is not None)
    if us and compact[:5].isdigit():
        return compact[:5]
    return compact


def norm_db(value: str) -> str | None:
    """db: YYYYMMDD (``1997-02-16`` -> ``19970216``); unparsable -> None."""
    ymd = _parse_date(value.strip().lower())
    if ymd is None:
        return None
    try:
        return date(*ymd).strftime("%Y%m%d")
    except ValueError:
        return None


def _parse_date(v: str) -> tuple[int, int, int] | None:
    if m := re.match(r"(\d{4})([-/.]?)(\d{1,2})\2(\d{1,2})(?:$|[t\s])", v):
        if m.group(2) or len(v.split("t")[0].split()[0]) == 8:
            return int(m.group(1)), int(m.group(3)), int(m.group(4))
        return None
    if m := re.fullmatch(r"(\d{1,2})([./-])(\d{1,2})\2(\d{4})", v):
        a, b, year = int(m.group(1)), int(m.group(3)), int(m.group(4))
        day_first = m.group(2) == "." or a > 12
        return (year, b, a) if day_first else (year, a, b)
    if m := re.fullmatch(r"(\d{1,2})\s+([a-z]{3})[a-z]*\.?,?\s+(\d{4})", v):
        month = _MONTHS.get(m.group(2))
        return (int(m.group(3)), month, int(m.group(1))) if month else None
    if m := re.fullmatch(r"([a-z]{3})[a-z]*\.?\s+(\d{1,2}),?\s+(\d{4})", v):
        month = _MONTHS.get(m.group(1))
        return (int(m.group(3)), month, int(m.group(2))) if month else None
    return None


def norm_ge(value: str) -> str | None:
    """ge: ``f`` or ``m`` (``Female`` -> ``f``); anything else -> None."""
    return _GENDER.get(value.strip().lower())


def norm_external_id(value: str) -> str | None:
    return value.strip().lower() or None


_SIMPLE: dict[str, Callable[[str], str | None]] = {
    "em": norm_em, "fn": norm_name, "ln": norm_name, "ct": norm_ct, "st": norm_st,
    "country": norm_country, "db": norm_db, "ge": norm_ge, "external_id": norm_external_id,
}


def normalize(key: str, value: str, *, default_country_code: str | None = None,
              country: str | None = None) -> str | None:
    """The normalized value of one user_data key (None: nothing usable). ``country`` is the
    contact's normalized country, used by the US ZIP rule."""
    if key == "ph":
        return norm_ph(value, default_country_code)
    if key == "zp":
        return norm_zp(value, country)
    fn = _SIMPLE.get(key)
    if fn is None:
        raise ValueError(f"no normalization rule for user_data key {key!r}")
    return fn(value)


# Keys whose values repeat across contacts (names, places, gender, birth dates): their hashes
# are remembered (a pure function of the arguments, so the answer is the same either way).
# Email, phone and external_id are nearly unique per contact and are not cached.
_REPEATING_KEYS = frozenset({"fn", "ln", "ct", "st", "zp", "country", "db", "ge"})


def hash_value(key: str, value: str, *, default_country_code: str | None = None,
               country: str | None = None) -> str | None:
    """Normalize then SHA-256 a hashed key; a 64-hex digest passes through as it is."""
    if key in _REPEATING_KEYS:
        return _hash_repeating(key, value, default_country_code, country)
    return _hash(key, value, default_country_code, country)


# ``normalize`` per key as a positional function (value, default country code, country): the
# hashing path calls it for every key of every event.
_Positional = Callable[[str, str | None, str | None], str | None]


def _value_only(fn: Callable[[str], str | None]) -> _Positional:
    return lambda value, _code, _country: fn(value)


_POSITIONAL: dict[str, _Positional] = {
    "ph": lambda value, code, _country: norm_ph(value, code),
    "zp": lambda value, _code, country: norm_zp(value, country),
    **{key: _value_only(fn) for key, fn in _SIMPLE.items()},
}


def _hash(key: str, value: str, default_country_code: str | None,
          country: str | None) -> str | None:
    stripped = value.strip()
    if len(stripped) == 64 and _HEX64.fullmatch(stripped):  # is_hashed, inlined
        return stripped
    normalized = _POSITIONAL[key](stripped, default_country_code, country)
    return hashlib.sha256(normalized.encode()).hexdigest() if normalized else None


_hash_repeating = lru_cache(maxsize=32768)(_hash)

Hasher = Callable[[str, str, str | None, str | None], str | None]


def hasher(key: str) -> Hasher:
    """``hash_value`` for ``key`` as a positional function ``(key, value, default country code,
    country)``, for callers that hash the same keys many times (``capi.PayloadBuilder``)."""
    if key not in HASHED_KEYS:
        raise ValueError(f"unknown user_data key {key!r}")
    return _hash_repeating if key in _REPEATING_KEYS else _hash


def user_data(raw: Mapping[str, str | None], *, default_country_code: str | None = None,
              country: str | None = None) -> dict[str, str]:
    """Meta ``user_data`` from raw values: hashed keys normalized and hashed, clear keys trimmed,
    empty or unusable values dropped. Unknown keys raise ``ValueError`` (a bug, not input)."""
    out: dict[str, str] = {}
    for key, value in raw.items():
        if value is None:
            continue
        if key in UNHASHED_KEYS:
            clear = value.strip()
            if clear:
                out[key] = clear
            continue
        if key not in HASHED_KEYS:
            raise ValueError(f"unknown user_data key {key!r}")
        hashed = hash_value(key, value, default_country_code=default_country_code,
                            country=country)
        if hashed:
            out[key] = hashed
    return out
