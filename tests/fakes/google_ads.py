"""A strict fake of Google's Data Manager API ``events:ingest``, served on loopback.

``POST /v1/events:ingest`` with ``Authorization: Bearer <token>`` and a JSON body
``{"destinations": [...], "events": [...], "encoding"?, "validateOnly"?, "consent"?}``. Every
request that breaks the documented contract (docs/networks/google.md; the stricter reading
where the docs leave room) is refused whole with a ``google.rpc.Status`` envelope
(``{"error": {"code", "message", "status", "details": [BadRequest fieldViolations naming
events[i].field, ErrorInfo reason]}}``), never echoing a value: unknown fields anywhere, a
destination that is not ``GOOGLE_ADS`` with a 10-digit ``accountId`` and a numeric
``productDestinationId``, more than 2,000 events, identifiers that are not 64 lowercase hex
(``encoding`` must be ``HEX`` when user data is sent), ``address`` without all four parts,
timestamps that are not RFC 3339 or are older than 90 days / more than 60 s ahead, consent
outside ``CONSENT_GRANTED``/``CONSENT_DENIED`` (user data with ``adUserData`` denied is refused),
``conversionValue`` without a 3-letter ``currency``, several click ids or a malformed one, events
with no identifier at all (``NO_IDENTIFIERS_PROVIDED``), a ``login-customer-id`` header that does
not match the destination's ``loginAccount``.

A wrong or missing token is 401 ``UNAUTHENTICATED``; a customer outside ``customers`` (when set)
403 ``PERMISSION_DENIED``; a conversion action outside ``actions`` (when set) 400
``INVALID_CONVERSION_ACTION_ID``. ``validateOnly: true`` validates and records nothing
(answer ``{}``).
Accepted events are kept in ``receipts`` (every arrival) and deduplicated by ``transactionId``
as Google does in ``unique``. ``fail_next`` injects: ``500``, ``503`` (``RetryInfo``), ``429``
(``Retry-After`` header), ``401``, ``403``, ``slow`` (answer after ``delay``, events accepted),
``drop`` (close the connection, nothing accepted).
"""

from __future__ import annotations

import json
import re
import secrets
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler
from typing import Any

from fakes.graph import QuietServer

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
    if not has_user and not _check_ads(path, event.get("adIdentifiers")):
        raise Refusal("the event has no user identifier and no ad identifier", field=path,
                      reason="NO_IDENTIFIERS_PROVIDED")


def _check_time(path: str, value: Any, now: float) -> None:
    if not isinstance(value, str) or not RFC3339.fullmatch(value):
        raise Refusal("eventTimestamp must be an RFC 3339 timestamp",
                      field=f"{path}.eventTimestamp", reason="INVALID_FORMAT")
    at = datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
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


# -- the server --------------------------------------------------------------------------------

@dataclass
class Fault:
    kind: str  # 500 | 503 | 429 | 401 | 403 | slow | drop
    retry_after: float | None = None
    delay: float = 0.0


@dataclass
class RequestLog:
    customer: str
    events: int
    status: int
    validate_only: bool
    login_customer_id: str | None


def fault_answer(fault: Fault) -> tuple[int, dict[str, Any], dict[str, str]]:
    delay = f"{fault.retry_after:g}s" if fault.retry_after else None
    headers = {"Retry-After": f"{fault.retry_after:g}"} if fault.retry_after else {}
    answers = {
        "500": Refusal("Internal error encountered.", status=500, reason="INTERNAL_ERROR"),
        "503": Refusal("The service is currently unavailable.", status=503,
                       reason="INTERNAL_ERROR", retry_delay=delay),
        "429": Refusal("Quota exceeded.", status=429, reason="RESOURCE_EXHAUSTED",
                       retry_delay=delay),
        "401": Refusal("Request had invalid authentication credentials.", status=401,
                       reason="ACCESS_TOKEN_EXPIRED"),
        "403": Refusal("The caller does not have permission.", status=403,
                       reason="PERMISSION_DENIED"),
    }
    if fault.kind not in answers:
        raise ValueError(f"unknown fault {fault.kind}")
    refusal = answers[fault.kind]
    return refusal.status, refusal.envelope(), headers if fault.kind in ("429", "503") else {}


@dataclass
class FakeGoogleAds:
    """Run with ``with FakeGoogleAds(token="t") as google:``; point clients at ``base_url``."""

    token: str = "google-test-token"
    customers: set[str] | None = None  # customers the token may write to (None: any)
    actions: set[str] | None = None  # conversion actions that exist (None: any)
    clock: Callable[[], float] = time.time
    receipts: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    payloads: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)
    requests: list[RequestLog] = field(default_factory=list)
    bodies: list[dict[str, Any]] = field(default_factory=list)  # every valid body, as sent
    faults: list[Fault] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._mutex = threading.Lock()
        self._server: QuietServer | None = None

    def __enter__(self) -> FakeGoogleAds:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        server = QuietServer(("127.0.0.1", 0), _handler(self))
        self._server = server
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def base_url(self) -> str:
        assert self._server is not None, "start the fake first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def fail_next(self, kind: str, times: int = 1, *, retry_after: float | None = None,
                  delay: float = 0.0) -> None:
        with self._mutex:
            self.faults.extend(Fault(kind, retry_after, delay) for _ in range(times))

    @property
    def unique(self) -> set[tuple[str, str, str]]:
        """(customer, conversion action, transactionId), counted once as Google does."""
        with self._mutex:
            return set(self.receipts)

    def transaction_ids(self) -> set[str]:
        return {key[2] for key in self.unique}

    def _next_fault(self) -> Fault | None:
        with self._mutex:
            return self.faults.pop(0) if self.faults else None

    def _log(self, entry: RequestLog) -> None:
        with self._mutex:
            self.requests.append(entry)

    def handle(self, path: str, headers: Any, body: bytes
               ) -> tuple[int, dict[str, Any], dict[str, str]]:
        login = headers.get("login-customer-id")
        try:
            if path != PATH:
                raise Refusal(f"The requested URL {path[:60]} was not found.", status=404,
                              reason="NOT_FOUND")
            self._check_auth(headers.get("authorization"))
            if not headers.get("content-type", "").startswith("application/json"):
                raise Refusal("the body must be application/json")
            try:
                parsed = json.loads(body or b"null")
            except (json.JSONDecodeError, UnicodeDecodeError):
                raise Refusal("Invalid JSON payload received.") from None
            if not isinstance(parsed, dict):
                raise Refusal("Invalid JSON payload received.")
            refs, events = check_request(parsed, self.clock())
            self._check_access(refs, login)
        except Refusal as refusal:
            self._log(RequestLog("", 0, refusal.status, False, login))
            return refusal.status, refusal.envelope(), {}
        validate_only = bool(parsed.get("validateOnly"))
        customer = next(iter(refs.values()))["operatingAccount"]["accountId"]
        self._log(RequestLog(customer, len(events), 200, validate_only, login))
        if validate_only:
            return 200, {}, {}
        self._accept(refs, events, parsed)
        return 200, {"requestId": secrets.token_hex(16)}, {}

    def _check_auth(self, authorization: str | None) -> None:
        scheme, _, given = (authorization or "").partition(" ")
        if scheme != "Bearer" or not secrets.compare_digest(given, self.token):
            raise Refusal("Request had invalid authentication credentials. Expected OAuth 2 "
                          "access token.", status=401, reason="ACCESS_TOKEN_TYPE_UNSUPPORTED")

    def _check_access(self, refs: dict[str, dict[str, Any]], login: str | None) -> None:
        for dest in refs.values():
            wanted = dest.get("loginAccount", {}).get("accountId")
            if wanted != login and (wanted is not None or login is not None):
                raise Refusal("the login-customer-id header does not match loginAccount",
                              field="destinations.loginAccount", reason="INVALID_DESTINATION")
            customer = dest["operatingAccount"]["accountId"]
            if self.customers is not None and customer not in self.customers:
                raise Refusal("The caller does not have permission.", status=403,
                              reason="PERMISSION_DENIED")
            if self.actions is not None and dest["productDestinationId"] not in self.actions:
                raise Refusal("The conversion action does not exist in the customer.",
                              field="destinations[0].productDestinationId",
                              reason="INVALID_CONVERSION_ACTION_ID")

    def _accept(self, refs: dict[str, dict[str, Any]], events: list[Any],
                body: dict[str, Any]) -> None:
        with self._mutex:
            self.bodies.append(body)
            for event in events:
                for ref in event.get("destinationReferences") or list(refs):
                    dest = refs[ref]
                    key = (dest["operatingAccount"]["accountId"],
                           dest["productDestinationId"], str(event.get("transactionId", "")))
                    self.receipts[key] += 1
                    self.payloads[key] = event


def _handler(google: FakeGoogleAds) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            fault = google._next_fault()
            if fault is not None and fault.kind == "drop":
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            if fault is not None and fault.kind == "slow":
                time.sleep(fault.delay)
                fault = None
            if fault is not None:
                status, answer, headers = fault_answer(fault)
                google._log(RequestLog("", 0, status, False, None))
            else:
                status, answer, headers = google.handle(self.path, self.headers, body)
            raw = json.dumps(answer).encode()
            try:
                self.send_response(status)
                self.send_header("content-type", "application/json; charset=UTF-8")
                self.send_header("content-length", str(len(raw)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(raw)
            except OSError:
                self.close_connection = True

        def log_message(self, format: str, *args: Any) -> None:
            return

    return Handler
