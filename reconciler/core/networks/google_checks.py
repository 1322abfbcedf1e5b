"""The checks a Google Ads event passes before it is queued and again before a retry.

``validate`` answers None or a stable reason (docs/networks/google.md): ``missing_field``,
``bad_timestamp``, ``too_old`` (90 days, given up ``SAFETY_MARGIN`` early), ``in_future``
(more than 60 s ahead), ``bad_consent`` (also: user data while ``adUserData`` is denied),
``bad_value``, ``bad_identifier``, ``bad_click_id`` and ``no_click_id_or_identifier``. It never
raises, whatever the payload holds.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Final, TypeGuard

CLICK_IDS: Final = ("gclid", "gbraid", "wbraid")
# Google's click ids are URL-safe base64 text; the stricter reading: 10 to 512 such characters.
CLICK_ID: Final = re.compile(r"[A-Za-z0-9_-]{10,512}")
CURRENCY: Final = re.compile(r"[A-Z]{3}")
HEX64: Final = re.compile(r"[0-9a-f]{64}")
TIMESTAMP: Final = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?Z")
MAX_AGE: Final = timedelta(days=90)
SAFETY_MARGIN: Final = timedelta(hours=1)  # expire locally before Google's limit
MAX_FUTURE: Final = timedelta(seconds=60)
MAX_IDENTIFIERS: Final = 10
_MAX_AGE_S: Final = int((MAX_AGE - SAFETY_MARGIN).total_seconds())
_MAX_FUTURE_S: Final = int(MAX_FUTURE.total_seconds())
GRANTED: Final = "CONSENT_GRANTED"
DENIED: Final = "CONSENT_DENIED"
CONSENT_VALUES: Final = frozenset({GRANTED, DENIED})
SKIP_NO_IDENTIFIER: Final = "no_click_id_or_identifier"
REGION: Final = re.compile(r"[A-Z]{2}")
_ASCII_POSTAL: Final = re.compile(r"[A-Za-z0-9 -]+")
_SPACE = re.compile(r"\s+")
# parse_timestamp per text: ``validate`` and ``event_time`` read the same payload's timestamp.
CACHE_SIZE: Final = 16384
_TIMESTAMPS: Final[dict[str, int | None]] = {}


def postal_code(value: str) -> str | None:
    """A postal code as Google takes it in clear: trimmed, single spaces, letters, digits,
    spaces and dashes, at most 16 characters."""
    text = _SPACE.sub(" ", value).strip()
    if not 0 < len(text) <= 16:
        return None
    if text.isascii():  # the same, by one regex: ASCII letters and digits are alnum
        return text if _ASCII_POSTAL.fullmatch(text) else None
    return text if all(c.isalnum() or c in " -" for c in text) else None


def is_map(value: object) -> TypeGuard[Mapping[str, Any]]:
    """A JSON object (``dict`` first: ``isinstance`` of an ABC costs more)."""
    return type(value) is dict or isinstance(value, Mapping)


def _is_hex(value: object) -> bool:
    return type(value) is str and HEX64.fullmatch(value) is not None


def parse_timestamp(value: object) -> int | None:
    """Epoch seconds of an RFC 3339 UTC timestamp as we write it; None otherwise (remembered
    per text)."""
    if type(value) is not str:
        return None
    if value in _TIMESTAMPS:
        return _TIMESTAMPS[value]
    if len(_TIMESTAMPS) >= CACHE_SIZE:
        _TIMESTAMPS.clear()
    found = _TIMESTAMPS[value] = parse_timestamp_uncached(value)
    return found


def clear_caches() -> None:
    """Forget every remembered timestamp (a cold start, for benchmarks and tests)."""
    _TIMESTAMPS.clear()


def parse_timestamp_uncached(value: str) -> int | None:
    """``parse_timestamp`` worked out (no cache)."""
    if TIMESTAMP.fullmatch(value) is None:
        return None
    try:
        moment = datetime.fromisoformat(value[:19]).replace(tzinfo=UTC)
    except ValueError:
        return None
    return int(moment.timestamp())


def _identifier_reason(item: object) -> str | None:
    if not is_map(item) or len(item) != 1:
        return "bad_identifier"
    (field, value), = item.items()
    if field in ("emailAddress", "phoneNumber"):
        return None if _is_hex(value) else "bad_identifier"
    if field != "address" or not is_map(value):
        return "bad_identifier"
    if not (_is_hex(value.get("givenName")) and _is_hex(value.get("familyName"))):
        return "bad_identifier"
    region, postal = value.get("regionCode"), value.get("postalCode")
    if type(region) is not str or not REGION.fullmatch(region):
        return "bad_identifier"
    return None if type(postal) is str and postal_code(postal) == postal else "bad_identifier"


def _user_reason(payload: Mapping[str, Any]) -> tuple[str | None, bool]:
    """(reason, has identifiers) of ``userData``."""
    user = payload.get("userData")
    if user is None:
        return None, False
    ids = user.get("userIdentifiers") if is_map(user) else None
    if not isinstance(ids, list) or not ids or len(ids) > MAX_IDENTIFIERS:
        return "bad_identifier", False
    for item in ids:
        reason = _identifier_reason(item)
        if reason:
            return reason, False
    return None, True


def _click_reason(payload: Mapping[str, Any]) -> tuple[str | None, bool]:
    ads = payload.get("adIdentifiers")
    if ads is None:
        return None, False
    if not isinstance(ads, Mapping) or len(ads) != 1:
        return "bad_click_id", False
    (name, value), = ads.items()
    ok = name in CLICK_IDS and type(value) is str and CLICK_ID.fullmatch(value) is not None
    return (None, True) if ok else ("bad_click_id", False)


def _consent_reason(payload: Mapping[str, Any]) -> str | None:
    consent = payload.get("consent")
    if (not is_map(consent) or len(consent) != 2 or "adUserData" not in consent
            or "adPersonalization" not in consent):
        return "bad_consent"
    if not all(v in CONSENT_VALUES for v in consent.values()):
        return "bad_consent"
    if consent["adUserData"] == DENIED and "userData" in payload:
        return "bad_consent"  # never send user data the user did not consent to share
    return None


def _value_reason(payload: Mapping[str, Any]) -> str | None:
    has_value, has_currency = "conversionValue" in payload, "currency" in payload
    if has_value != has_currency:
        return "bad_value"
    if not has_value:
        return None
    value, currency = payload["conversionValue"], payload["currency"]
    if type(value) not in (int, float) or not 0 <= value < 10**13:
        return "bad_value"
    return None if type(currency) is str and CURRENCY.fullmatch(currency) else "bad_value"


def validate(payload: Mapping[str, Any], now: datetime, *,
             safety_margin: timedelta = SAFETY_MARGIN) -> str | None:
    """Why Google would refuse this event (None: fine); never raises, whatever the payload."""
    if not is_map(payload):
        return "missing_field"
    tid = payload.get("transactionId")
    if type(tid) is not str or not tid:
        return "missing_field"
    at = parse_timestamp(payload.get("eventTimestamp"))
    if at is None:
        return "bad_timestamp"
    now_s = int((now if now.tzinfo else now.replace(tzinfo=UTC)).timestamp())
    max_age_s = (_MAX_AGE_S if safety_margin is SAFETY_MARGIN
                 else int((MAX_AGE - safety_margin).total_seconds()))
    if at < now_s - max_age_s:
        return "too_old"
    if at > now_s + _MAX_FUTURE_S:
        return "in_future"
    reason = _consent_reason(payload) or _value_reason(payload)
    if reason:
        return reason
    user_reason, has_user = _user_reason(payload)
    click_reason, has_click = _click_reason(payload)
    if user_reason or click_reason:
        return user_reason or click_reason
    return None if has_user or has_click else SKIP_NO_IDENTIFIER
