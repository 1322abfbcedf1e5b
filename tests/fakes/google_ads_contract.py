"""The Data Manager API's ``events:ingest`` contract as pure checks, for the fake in
``google_ads.py`` (docs/networks/google.md; the stricter reading where Google's docs leave room).
A ``Refusal`` becomes Google's ``google.rpc.Status`` envelope, never echoing a value."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

PATH = "/v1/events:ingest"
MAX_EVENTS = 2000
MAX_DESTINATIONS = 10
MAX_IDENTIFIERS = 10
MAX_AGE_S = 90 * 24 * 3600
MAX_FUTURE_S = 60
BODY_KEYS = {"destinations", "events", "consent", "validateOnly", "encoding"}
DESTINATION_KEYS = {"reference", "loginAccount", "linkedAccount", "operatingAccount",
                    "productDestinationId"}
ACCOUNT_KEYS = {"accountType", "accountId"}
EVENT_KEYS = {"destinationReferences", "transactionId", "eventTimestamp", "lastUpdatedTimestamp",
              "userData", "consent", "adIdentifiers", "currency", "conversionValue",
              "eventSource", "customVariables"}
AD_KEYS = {"gclid", "gbraid", "wbraid"}
CONSENT = {"CONSENT_GRANTED", "CONSENT_DENIED"}
SOURCES = {"WEB", "APP", "IN_STORE", "PHONE", "OTHER"}
HEX64 = re.compile(r"[0-9a-f]{64}")
DIGITS10 = re.compile(r"[0-9]{10}")
CLICK_ID = re.compile(r"[A-Za-z0-9_-]{10,512}")
RFC3339 = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?"
                     r"(Z|[+-][0-9]{2}:[0-9]{2})")
STATUS = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED",
          404: "NOT_FOUND", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE"}


class Refusal(Exception):
    """A refused request: HTTP status, ErrorInfo reason, and the violated field path."""

    def __init__(self, message: str, *, field: str | None = None,
                 reason: str = "INVALID_ARGUMENT", status: int = 400,
                 retry_delay: str | None = None) -> None:
        super().__init__(message)
        self.message, self.field, self.reason = message, field, reason
        self.status, self.retry_delay = status, retry_delay

    def envelope(self) -> dict[str, Any]:
        details: list[dict[str, Any]] = [{
            "@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": self.reason,
            "domain": "datamanager.googleapis.com"}]
        if self.field is not None:
            details.insert(0, {"@type": "type.googleapis.com/google.rpc.BadRequest",
                               "fieldViolations": [{"field": self.field,
                                                    "description": self.message}]})
        if self.retry_delay is not None:
            details.append({"@type": "type.googleapis.com/google.rpc.RetryInfo",
                            "retryDelay": self.retry_delay})
        return {"error": {"code": self.status, "message": self.message,
                          "status": STATUS[self.status], "details": details}}


# -- the contract, as pure checks ------------------------------------------------------------

def _unknown(path: str, value: dict[str, Any], known: set[str]) -> None:
    extra = sorted(set(value) - known)
    if extra:
        raise Refusal(f"Invalid JSON payload received. Unknown name \"{extra[0]}\" at "
                      f"'{path}': Cannot find field.", field=f"{path}.{extra[0]}".lstrip("."))


def _object(path: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise Refusal(f"{path} must be an object", field=path)
    return value


def check_destinations(value: Any) -> dict[str, dict[str, Any]]:
    """reference -> destination of a valid ``destinations`` list."""
    if not isinstance(value, list) or not value:
        raise Refusal("destinations is required", field="destinations",
                      reason="REQUIRED_FIELD_MISSING")
    if len(value) > MAX_DESTINATIONS:
        raise Refusal("at most 10 destinations", field="destinations",
                      reason="TOO_MANY_DESTINATIONS")
    refs: dict[str, dict[str, Any]] = {}
    for i, raw in enumerate(value):
        path = f"destinations[{i}]"
        dest = _object(path, raw)
        _unknown(path, dest, DESTINATION_KEYS)
        for key in ("operatingAccount", "loginAccount"):
            if key in dest or key == "operatingAccount":
                acc = _object(f"{path}.{key}", dest.get(key))
                _unknown(f"{path}.{key}", acc, ACCOUNT_KEYS)
                if acc.get("accountType") != "GOOGLE_ADS" or not isinstance(
                        acc.get("accountId"), str) or not DIGITS10.fullmatch(acc["accountId"]):
                    raise Refusal("the account must be GOOGLE_ADS with a 10-digit id",
                                  field=f"{path}.{key}", reason="INVALID_DESTINATION")
        pid = dest.get("productDestinationId")
        if not isinstance(pid, str) or not re.fullmatch(r"[0-9]{1,20}", pid):
            raise Refusal("productDestinationId must be a conversion action id",
                          field=f"{path}.productDestinationId",
                          reason="INVALID_CONVERSION_ACTION_ID")
        ref = dest.get("reference", "")
        if ref in refs:
            raise Refusal("duplicate destination reference", field=f"{path}.reference",
                          reason="DUPLICATE_DESTINATION_REFERENCE")
        refs[ref] = dest
    return refs


def check_event(i: int, raw: Any, refs: dict[str, Any], hex_ok: bool, now: float) -> None:
    path = f"events[{i}]"
    event = _object(path, raw)
    _unknown(path, event, EVENT_KEYS)
    for ref in event.get("destinationReferences", []):
        if ref not in refs:
            raise Refusal("unknown destination reference", field=f"{path}.destinationReferences",
                          reason="INVALID_DESTINATION")
    tid = event.get("transactionId")
    if tid is not None and (not isinstance(tid, str) or not 0 < len(tid) <= 256):
        raise Refusal("transactionId must be a string", field=f"{path}.transactionId")
    _check_time(path, event.get("eventTimestamp"), now)
    if "eventSource" in event and event["eventSource"] not in SOURCES:
        raise Refusal("invalid enum value", field=f"{path}.eventSource",
                      reason="INVALID_ENUM_VALUE")
    _check_value(path, event)
    denied = _check_consent(path, event.get("consent"))
    has_user = _check_user(path, event.get("userData"), hex_ok)
    if has_user and denied:
        raise Refusal("user data sent without adUserData consent", field=f"{path}.userData",
                      reason="INVALID_EVENT")
    has_click = _check_ads(path, event.get("adIdentifiers"))
    if not has_user and not has_click:
        raise Refusal("the event has no user identifier and no ad identifier", field=path,
                      reason="NO_IDENTIFIERS_PROVIDED")


def _check_time(path: str, value: Any, now: float) -> None:
    if not isinstance(value, str) or not RFC3339.fullmatch(value):
        raise Refusal("eventTimestamp must be an RFC 3339 timestamp",
                      field=f"{path}.eventTimestamp", reason="INVALID_FORMAT")
    try:
        at = datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:  # matches the shape but is no date (month 13, February 30)
        raise Refusal("eventTimestamp must be an RFC 3339 timestamp",
                      field=f"{path}.eventTimestamp", reason="INVALID_FORMAT") from None
    if at < now - MAX_AGE_S or at > now + MAX_FUTURE_S:
        raise Refusal("eventTimestamp is outside the accepted window (90 days)",
                      field=f"{path}.eventTimestamp", reason="INVALID_EVENT")


def _check_value(path: str, event: dict[str, Any]) -> None:
    if "conversionValue" in event:
        value = event["conversionValue"]
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise Refusal("conversionValue must be a non-negative number",
                          field=f"{path}.conversionValue", reason="INVALID_NUMBER_FORMAT")
        if not isinstance(event.get("currency"), str):
            raise Refusal("currency is required with conversionValue", field=f"{path}.currency",
                          reason="INVALID_CURRENCY_CODE")
    if "currency" in event and not (isinstance(event["currency"], str)
                                    and re.fullmatch(r"[A-Z]{3}", event["currency"])):
        raise Refusal("currency must be an ISO 4217 code", field=f"{path}.currency",
                      reason="INVALID_CURRENCY_CODE")


def _check_consent(path: str, value: Any) -> bool:
    """True when adUserData is denied."""
    if value is None:
        return False
    consent = _object(f"{path}.consent", value)
    _unknown(f"{path}.consent", consent, {"adUserData", "adPersonalization"})
    for key, status in consent.items():
        if status not in CONSENT:
            raise Refusal("invalid consent status", field=f"{path}.consent.{key}",
                          reason="INVALID_ENUM_VALUE")
    return consent.get("adUserData") == "CONSENT_DENIED"


def _hex(path: str, value: Any, hex_ok: bool) -> None:
    if not hex_ok:
        raise Refusal("encoding must be HEX for hashed user data", field="encoding",
                      reason="INVALID_HEX_ENCODING")
    if not isinstance(value, str) or not HEX64.fullmatch(value):
        raise Refusal("not a SHA-256 hex digest", field=path, reason="INVALID_SHA256_FORMAT")


def _check_user(path: str, value: Any, hex_ok: bool) -> bool:
    if value is None:
        return False
    user = _object(f"{path}.userData", value)
    _unknown(f"{path}.userData", user, {"userIdentifiers"})
    ids = user.get("userIdentifiers")
    if not isinstance(ids, list) or not ids or len(ids) > MAX_IDENTIFIERS:
        raise Refusal("1 to 10 userIdentifiers", field=f"{path}.userData.userIdentifiers",
                      reason="TOO_MANY_USER_IDENTIFIERS")
    for j, raw in enumerate(ids):
        where = f"{path}.userData.userIdentifiers[{j}]"
        item = _object(where, raw)
        _unknown(where, item, {"emailAddress", "phoneNumber", "address"})
        if len(item) != 1:
            raise Refusal("exactly one identifier", field=where)
        (kind, inner), = item.items()
        if kind != "address":
            _hex(f"{where}.{kind}", inner, hex_ok)
            continue
        addr = _object(f"{where}.address", inner)
        _unknown(f"{where}.address", addr, {"givenName", "familyName", "regionCode",
                                            "postalCode"})
        _hex(f"{where}.address.givenName", addr.get("givenName"), hex_ok)
        _hex(f"{where}.address.familyName", addr.get("familyName"), hex_ok)
        if not isinstance(addr.get("regionCode"), str) or not re.fullmatch(
                r"[A-Z]{2}", addr["regionCode"]):
            raise Refusal("regionCode", field=f"{where}.address.regionCode",
                          reason="INVALID_COUNTRY_CODE")
        if not isinstance(addr.get("postalCode"), str) or not addr["postalCode"].strip():
            raise Refusal("postalCode", field=f"{where}.address.postalCode",
                          reason="INVALID_POSTAL_CODE")
    return True


def _check_ads(path: str, value: Any) -> bool:
    if value is None:
        return False
    ads = _object(f"{path}.adIdentifiers", value)
    _unknown(f"{path}.adIdentifiers", ads, AD_KEYS)
    if len(ads) > 1:
        raise Refusal("at most one of gclid, gbraid, wbraid", field=f"{path}.adIdentifiers",
                      reason="INVALID_EVENT")
    for key, click in ads.items():
        if not isinstance(click, str) or not CLICK_ID.fullmatch(click):
            raise Refusal("malformed click id", field=f"{path}.adIdentifiers.{key}",
                          reason="INVALID_FORMAT")
    return bool(ads)


def check_request(body: dict[str, Any], now: float) -> tuple[dict[str, Any], list[Any]]:
    """(destinations by reference, events) of a valid request, or ``Refusal``."""
    _unknown("", body, BODY_KEYS)
    refs = check_destinations(body.get("destinations"))
    if "validateOnly" in body and not isinstance(body["validateOnly"], bool):
        raise Refusal("validateOnly must be a boolean", field="validateOnly")
    if body.get("encoding", "HEX") not in ("HEX", "BASE64"):
        raise Refusal("invalid encoding", field="encoding", reason="INVALID_ENUM_VALUE")
    events = body.get("events")
    if not isinstance(events, list) or not events:
        raise Refusal("events is required", field="events", reason="REQUIRED_FIELD_MISSING")
    if len(events) > MAX_EVENTS:
        raise Refusal(f"at most {MAX_EVENTS} events per request", field="events",
                      reason="TOO_MANY_EVENTS")
    hex_ok = body.get("encoding") == "HEX"
    for i, event in enumerate(events):
        check_event(i, event, refs, hex_ok, now)
    return refs, events
