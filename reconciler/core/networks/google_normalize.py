"""Google's normalization of user identifiers (pure, never raises), and the digests of them
the builder sends: e-mails lower-cased and trimmed, with dots and ``+suffix`` removed from the
local part of gmail.com and googlemail.com addresses; phones E.164 (the account's calling code
for national numbers; usual North American numbers without phonenumbers); names lower-cased,
trimmed, without punctuation; SHA-256 hex. ``digester(key, region)`` caches per raw value
(``CACHE_SIZE`` values per key and region, started over when full). docs/networks/google.md.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Callable
from datetime import UTC, datetime
from functools import lru_cache
from typing import Final

import phonenumbers

from reconciler.core.networks.google_checks import clear_caches as clear_timestamps
from reconciler.core.normalize import clean, is_hashed
from reconciler.core.places import country_code

GMAIL_DOMAINS: Final = frozenset({"gmail.com", "googlemail.com"})
_SPACE = re.compile(r"\s+")
_SEPARATORS: Final = str.maketrans("", "", " -()")
_ASCII_NOT_NAME: Final = re.compile(r"[^a-z0-9\s]")  # \s: what str.isspace() finds


# -- normalization (pure, never raises) ------------------------------------------------------

def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def norm_email(value: str) -> str | None:
    """Google's email form: no whitespace, lower-cased; gmail.com/googlemail.com without dots
    or ``+suffix`` in the local part. None when it is not ``local@domain``."""
    text = _SPACE.sub("", clean(value)).lower()
    local, at, domain = text.partition("@")
    if not at or not local or not domain or "@" in domain:
        return None
    if domain in GMAIL_DOMAINS:
        local = local.split("+", 1)[0].replace(".", "")
        if not local:
            return None
    return f"{local}@{domain}"


def norm_phone(value: str, default_country_code: str | None) -> str | None:
    """E.164 with ``+`` (``(800) 555-0100`` + ``1`` -> ``+18005550100``); None when
    phonenumbers does not find it a possible number."""
    return _norm_phone(value, _phone_region(default_country_code))


@lru_cache(maxsize=64)
def _phone_region(default_country_code: str | None) -> str | None:
    """phonenumbers' region of the account's calling code (``1`` -> ``US``), None unknown."""
    if default_country_code and default_country_code.isdigit():
        code = phonenumbers.region_code_for_country_code(int(default_country_code))
        return None if code == "ZZ" else code
    return None


def _norm_phone(value: str, region: str | None) -> str | None:
    fast = _nanp(value, region)
    if fast is not None:
        return fast
    try:
        parsed = phonenumbers.parse(clean(value).strip(), region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def norm_name(value: str) -> str | None:
    """Lower-case letters, marks, digits and single spaces (``  O'Brien `` -> ``obrien``)."""
    text = clean(value).lower()
    if text.isascii():  # the same, by one regex: ASCII letters and digits are L and N
        text = _ASCII_NOT_NAME.sub("", text)
    else:
        text = "".join(c for c in text if c.isspace() or unicodedata.category(c)[0] in "LMN")
    return _SPACE.sub(" ", text).strip() or None


def _nanp(value: str, region: str | None) -> str | None:
    """The usual North American number without phonenumbers (what it answers, tested): ASCII
    ``+1`` (any region) or a US account's national number, ten digits from 2-9 on, separated by
    spaces, dashes and parentheses only. None: ask phonenumbers."""
    text = value.strip()
    if not text.isascii():
        return None
    if text.startswith("+1"):
        text = text[2:]
    elif region != "US":
        return None
    digits = text.translate(_SEPARATORS)
    if len(digits) == 10 and digits.isdigit() and digits[0] in "23456789":
        return "+1" + digits
    return None


# What is sent per raw value, remembered per key (and per phone region): the digests of
# ``has_identifier`` (skip_reason) and of the payload come from the same values, and names repeat
# across contacts. Pure functions of the raw value (and region), so the answer is the same either
# way; a full cache starts over.
CACHE_SIZE: Final = 16384
_DIGESTS: Final[dict[tuple[str, str | None], dict[str, str | None]]] = {}


def clear_caches() -> None:
    """Forget every remembered value (a cold start, for benchmarks and tests)."""
    for cache in _DIGESTS.values():
        cache.clear()
    clear_timestamps()


def digest_uncached(key: str, value: str, region: str | None = None) -> str | None:
    """What is sent for a raw ``em``, ``ph``, ``fn`` or ``ln`` value: a digest passed through
    lower-cased, else SHA-256 of the normalized value; None when nothing usable is left."""
    hashed = _as_hash(value)
    if hashed:
        return hashed
    if key == "em":
        return _hashed(norm_email(value))
    if key == "ph":
        return _hashed(_norm_phone(value, region))
    return _hashed(norm_name(value))


def digester(key: str, region: str | None = None) -> Callable[[str], str | None]:
    """``digest_uncached`` of ``key`` (and phone ``region``), remembered per raw value."""
    cache = _DIGESTS.setdefault((key, region if key == "ph" else None), {})
    get = cache.get

    def digest(value: str) -> str | None:
        found = get(value, "")  # "" is never sent: it marks a value not seen yet
        if found != "":
            return found
        if len(cache) >= CACHE_SIZE:
            cache.clear()
        found = cache[value] = digest_uncached(key, value, region)
        return found
    return digest


def _hashed(normalized: str | None) -> str | None:
    return sha256_hex(normalized) if normalized else None


def _as_hash(value: str) -> str | None:
    """A value that already is a SHA-256 hex digest, lower-cased (never hashed again)."""
    stripped = value.strip()
    return stripped.lower() if is_hashed(stripped) else None


def _region(value: str) -> str | None:
    code = country_code(value)
    return code.upper() if code else None


def rfc3339(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
