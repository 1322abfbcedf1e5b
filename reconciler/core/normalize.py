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

The rules per key (``clean``, ``norm_*``, ``normalize``) are in ``normalize_rules.py``; this
module is the hashing on top of them, re-exporting them.

Hot path: ``digester`` gives, per key, a function of the raw value with the account's context
bound (``capi.PayloadBuilder`` makes one per shared key); what it sends for names, places,
gender and birth dates is remembered per raw value, and ASCII text skips the cleaning pass.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any, Final

from reconciler.core.birthdates import date_order_for_calling_code
from reconciler.core.normalize_rules import (
    HEX64,
    VALUE_ONLY,
    clean,
    is_hashed,
    norm_country,
    norm_ct,
    norm_db,
    norm_ge,
    norm_name,
    norm_ph,
    norm_st,
    norm_zp,
    normalize,
    sha256_hex,
)
from reconciler.core.vocabulary import UNHASHED_KEYS

__all__ = [  # the rules (normalize_rules) are re-exported with the hot path defined here
    "CACHE_SIZE", "HASHED_KEYS", "LEAD_ID", "UNHASHED_KEYS", "Digest", "clean", "clear_caches",
    "clear_value", "digester", "hash_value", "is_hashed", "norm_country", "norm_ct", "norm_db",
    "norm_ge", "norm_name", "norm_ph", "norm_st", "norm_zp", "normalize", "sha256_hex",
    "user_data",
]

HASHED_KEYS = frozenset(
    {"em", "ph", "fn", "ln", "db", "ge", "ct", "st", "zp", "country", "external_id"})
LEAD_ID = re.compile(r"[0-9]{15,17}")  # a Meta lead id; ASCII digits only: \d matches any script's

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
    if len(v) == 64 and HEX64.fullmatch(v) is not None:  # is_hashed, inlined
        return v.lower()
    normalized = rule(v, arg)
    return _sha256(normalized.encode()).hexdigest() if normalized else None


def _uncached(rule: _Rule2, arg: Any) -> Digest:
    def digest(value: str, _country: str | None) -> str | None:  # _sent, inlined: hot
        v = value.strip() if value.isascii() else clean(value).strip()
        if len(v) == 64 and HEX64.fullmatch(v) is not None:
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
    if len(v) == 64 and HEX64.fullmatch(v) is not None:
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
    rule = VALUE_ONLY.get(key)
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
