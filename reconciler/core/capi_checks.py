"""Checks of a built Meta server event against the Conversions API's rules (capi-contract.md):
why Meta would refuse it (``validate_payload``: required fields, the action source, the
minimum customer information, the lead id, the 7-day window), and when it expires locally.

``too_old`` fires ``SAFETY_MARGIN`` before Meta's 7-day limit, so an event is given up here
rather than sinking a whole batch there.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal

MAX_AGE: Final = timedelta(days=7)
SAFETY_MARGIN: Final = timedelta(hours=1)
MAX_FUTURE: Final = timedelta(seconds=60)
ACTION_SOURCES: Final = frozenset({"email", "website", "app", "phone_call", "chat",
                                   "physical_store", "system_generated", "business_messaging",
                                   "other"})

InvalidReason = Literal["missing_field", "bad_action_source", "no_customer_info", "too_old",
                        "future", "missing_event_source_url", "missing_user_agent",
                        "bad_lead_id"]

# capi-contract.md, minimum customer information: user_data holding only a subset of one of
# these is refused by Meta (code 100, subcode 2804050).
INSUFFICIENT_KEY_SETS: Final = (
    frozenset({"ct", "country", "st", "zp", "ge", "client_user_agent"}),
    frozenset({"db", "client_user_agent"}),
    frozenset({"fn", "ge"}),
    frozenset({"ln", "ge"}),
)


def epoch_seconds(moment: datetime) -> int:
    """Unix seconds of ``moment`` (a naive time is taken as UTC), as Meta's ``event_time``."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp())


_WEAK_KEYS: Final = frozenset().union(*INSUFFICIENT_KEY_SETS)


_EMPTY: Final[tuple[object, ...]] = (None, "", [])


def has_customer_info(ud: Mapping[str, Any]) -> bool:
    """capi-contract.md minimum customer information (2804050 otherwise)."""
    for key, value in ud.items():  # a key outside every insufficient set is enough on its own
        if key not in _WEAK_KEYS and (value or value not in _EMPTY):
            return True
    keys = {k for k, v in ud.items() if v or v not in _EMPTY}
    return bool(keys) and not any(keys <= bad for bad in INSUFFICIENT_KEY_SETS)


def validate_payload(event: Mapping[str, Any], now: datetime, *,
                     safety_margin: timedelta = SAFETY_MARGIN) -> InvalidReason | None:
    """Why Meta would refuse this event (None: it is fine). ``too_old`` fires ``safety_margin``
    before the 7-day limit so the event can expire locally instead of sinking a batch."""
    if not event.get("event_name") or not isinstance(event.get("event_time"), int):
        return "missing_field"
    ud = event.get("user_data")
    if not isinstance(ud, dict | Mapping) or not ud:  # dict first: the usual, fast check
        return "no_customer_info" if isinstance(ud, Mapping) else "missing_field"
    source = event.get("action_source")
    if source not in ACTION_SOURCES:
        return "bad_action_source" if source else "missing_field"
    age_reason = _time_reason(event["event_time"], now, safety_margin)
    if age_reason:
        return age_reason
    if source == "website":
        url = event.get("event_source_url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            return "missing_event_source_url"
        if not ud.get("client_user_agent"):
            return "missing_user_agent"
    if "lead_id" in ud and not _is_lead_id(ud["lead_id"]):
        return "bad_lead_id"
    if source == "system_generated" and "lead_id" not in ud:
        return "bad_lead_id"
    return None if has_customer_info(ud) else "no_customer_info"


def _is_lead_id(value: object) -> bool:
    """Meta's payload spec: an integer of 15-17 digits (a bool is not one)."""
    return type(value) is int and 10**14 <= value < 10**17


_DEFAULT_MAX_AGE_S: Final = int((MAX_AGE - SAFETY_MARGIN).total_seconds())


def _time_reason(event_time: int, now: datetime, margin: timedelta) -> InvalidReason | None:
    now_s = epoch_seconds(now)
    max_age = (_DEFAULT_MAX_AGE_S if margin == SAFETY_MARGIN
               else int((MAX_AGE - margin).total_seconds()))
    if event_time < now_s - max_age:
        return "too_old"
    if event_time > now_s + int(MAX_FUTURE.total_seconds()):
        return "future"
    return None


def is_expired(event_time: int, now: datetime, *,
               safety_margin: timedelta = SAFETY_MARGIN) -> bool:
    """``validate_payload``'s ``too_old`` alone: all that can change for a payload that passed
    the other checks when it was queued (they do not depend on the time, and ``future`` only
    gets better)."""
    return _time_reason(event_time, now, safety_margin) == "too_old"


def expires_at(event_time: int, *, safety_margin: timedelta = SAFETY_MARGIN) -> datetime:
    """When an event must be given up locally (before Meta's 7-day limit)."""
    return datetime.fromtimestamp(event_time, tz=UTC) + MAX_AGE - safety_margin
