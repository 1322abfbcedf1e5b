"""A strict fake of LinkedIn's Conversions API (``conversionEvents``), served on loopback.

``POST /rest/conversionEvents`` with ``X-RestLi-Method: BATCH_CREATE`` and a JSON body
``{"elements": [...]}`` (batch create only: this fake serves no single create). Every request
needs ``Authorization: Bearer <token>``, ``X-Restli-Protocol-Version: 2.0.0`` and a
``Linkedin-Version: YYYYMM`` that is active: LinkedIn serves a version for a year after its
month, never before it; an older (sunset) or later month is ``426 NONEXISTENT_VERSION``, a
missing one ``400 VERSION_MISSING``. A missing token is ``401`` (65604), a wrong one ``401``
(65600, ``INVALID_ACCESS_TOKEN``), a token in ``read_only`` ``403 ACCESS_DENIED``. Refusals of the
whole request use LinkedIn's envelope ``{"status", "serviceErrorCode", "code", "message"}``
(service error codes other than 65600/65604 are this fake's choice; clients classify by status).

The request is refused whole (400) when the body is not a JSON object, ``elements`` is not a
non-empty array, or holds more than 5,000 elements. Otherwise each element is answered on its
own, in order, in ``200 {"elements": [{"status": 201} | {"status": 400, "error": envelope}]}``;
an element is refused when it breaks the documented contract (the stricter reading where the
docs leave room): unknown fields; ``conversion`` not ``urn:lla:llaPartnerConversion:<digits>``
(or not one of ``rules`` when that is set); ``conversionHappenedAt`` not an integer of epoch
milliseconds, older than 90 days or in the future; ``eventId`` not a string of 1-64 characters;
``user`` without ``userIds`` (an array, possibly empty), an id type outside LinkedIn's four, an
empty id value, a ``SHA256_EMAIL`` that is not 64 lowercase hex; ``userInfo`` with unknown
fields, empty values, without both ``firstName`` and ``lastName``, or a ``countryCode`` that is
not two upper-case letters; neither a user id nor a ``userInfo``; ``conversionValue`` without a
three-letter upper-case ``currencyCode`` or with an ``amount`` that is not a decimal string.

Accepted elements are recorded raw (``receipts``) and deduplicated as LinkedIn does
(``unique``: (conversion, eventId) counted once). ``fail_next`` injects faults for the next
requests: ``500``, ``429`` (with ``Retry-After`` when given), ``401``, ``403``, ``426`` (the
version sent was sunset meanwhile: ``NONEXISTENT_VERSION``), ``slow`` (answer
after ``delay`` seconds, the elements still accepted) and ``drop`` (close the connection
without an answer, nothing accepted).
"""

from __future__ import annotations

import json
import re
import secrets
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from typing import Any

from fakes.loopback import JsonHandler, Loopback

PATH = "/rest/conversionEvents"
MAX_ELEMENTS = 5000
MAX_AGE_MS = 90 * 24 * 3600 * 1000
MIN_MS = 10**12  # 2001-09-09 in milliseconds; a seconds timestamp is far below it
ACTIVE_MONTHS = 12
VERSION = re.compile(r"(20[0-9]{2})(0[1-9]|1[0-2])")
RULE = re.compile(r"urn:lla:llaPartnerConversion:[0-9]{1,20}")
HEX64 = re.compile(r"[0-9a-f]{64}")
CURRENCY = re.compile(r"[A-Z]{3}")
AMOUNT = re.compile(r"[0-9]+(\.[0-9]+)?")
COUNTRY = re.compile(r"[A-Z]{2}")
ID_TYPES = {"SHA256_EMAIL", "LINKEDIN_FIRST_PARTY_ADS_TRACKING_UUID", "ACXIOM_ID",
            "ORACLE_MOAT_ID"}
ELEMENT_KEYS = {"conversion", "conversionHappenedAt", "conversionValue", "eventId", "user"}
USER_KEYS = {"userIds", "userInfo"}
INFO_KEYS = {"firstName", "lastName", "companyName", "title", "countryCode"}


class Refusal(Exception):
    """A refusal in LinkedIn's error envelope."""

    def __init__(self, message: str, *, status: int = 400, code: str = "INVALID_VALUE",
                 service_code: int = 100) -> None:
        super().__init__(message)
        self.message, self.status, self.code, self.service_code = (message, status, code,
                                                                    service_code)

    def envelope(self) -> dict[str, Any]:
        return {"status": self.status, "serviceErrorCode": self.service_code,
                "code": self.code, "message": self.message}


# -- the contract, as pure checks ------------------------------------------------------------

def check_version(version: str | None, now: float) -> None:
    if not version:
        raise Refusal("A version must be present. Please specify a version by adding the "
                      "LinkedIn-Version header.", code="VERSION_MISSING", service_code=2)
    match = VERSION.fullmatch(version)
    today = datetime.fromtimestamp(now, tz=UTC)
    current = today.year * 12 + today.month - 1
    month = int(match.group(1)) * 12 + int(match.group(2)) - 1 if match else None
    if month is None or not current - ACTIVE_MONTHS < month <= current:
        raise Refusal(f"Requested version {version[:20]} is not active", status=426,
                      code="NONEXISTENT_VERSION", service_code=3)


def check_elements(body: Any) -> list[Any]:
    if not isinstance(body, dict):
        raise Refusal("the body must be a JSON object")
    unknown = sorted(set(body) - {"elements"})
    if unknown:
        raise Refusal(f"unknown field {unknown[0][:40]} in the body")
    elements = body.get("elements")
    if not isinstance(elements, list) or not elements:
        raise Refusal("elements must be a non-empty array")
    if len(elements) > MAX_ELEMENTS:
        raise Refusal(f"elements holds {len(elements)} items; at most {MAX_ELEMENTS} per "
                      "batch", code="TOO_MANY_ELEMENTS")
    return elements


def check_element(element: Any, now_ms: int, rules: set[str] | None) -> None:
    """``Refusal`` when LinkedIn would refuse this element (messages name fields, not values)."""
    if not isinstance(element, dict):
        raise Refusal("an element must be an object")
    _no_unknown(element, ELEMENT_KEYS, "")
    conversion = element.get("conversion")
    if not isinstance(conversion, str) or not RULE.fullmatch(conversion):
        raise Refusal("conversion must be urn:lla:llaPartnerConversion:<id>")
    if rules is not None and conversion not in rules:
        raise Refusal("the conversion rule does not exist", status=404, code="NOT_FOUND")
    _check_time(element.get("conversionHappenedAt"), now_ms)
    event = element.get("eventId")
    if "eventId" in element and not (isinstance(event, str) and 1 <= len(event) <= 64):
        raise Refusal("eventId must be a string of 1 to 64 characters")
    _check_user(element.get("user"))
    if "conversionValue" in element:
        _check_value(element["conversionValue"])


def _no_unknown(obj: dict[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(obj) - allowed)
    if unknown:
        raise Refusal(f"unknown field {where}{unknown[0][:40]}", code="UNKNOWN_FIELD")


def _check_time(value: Any, now_ms: int) -> None:
    if type(value) is not int:
        raise Refusal("conversionHappenedAt must be an integer (epoch milliseconds)")
    if value < MIN_MS:
        raise Refusal("conversionHappenedAt must be in epoch milliseconds")
    if value < now_ms - MAX_AGE_MS:
        raise Refusal("conversionHappenedAt is more than 90 days in the past")
    if value > now_ms:
        raise Refusal("conversionHappenedAt is in the future")


def _check_user(user: Any) -> None:
    if not isinstance(user, dict):
        raise Refusal("user is required")
    _no_unknown(user, USER_KEYS, "user.")
    ids = user.get("userIds")
    if not isinstance(ids, list):
        raise Refusal("user.userIds is required (an array)")
    for item in ids:
        if not isinstance(item, dict) or set(item) != {"idType", "idValue"}:
            raise Refusal("user.userIds items must be {idType, idValue}")
        if item["idType"] not in ID_TYPES:
            raise Refusal("user.userIds idType must be one of " + ", ".join(sorted(ID_TYPES)))
        value = item["idValue"]
        if not isinstance(value, str) or not value:
            raise Refusal("user.userIds idValue must be a non-empty string")
        if item["idType"] == "SHA256_EMAIL" and not HEX64.fullmatch(value):
            raise Refusal("SHA256_EMAIL must be a SHA-256 hash (64 lowercase hex)")
    info = user.get("userInfo")
    if info is not None:
        _check_info(info)
    if not ids and info is None:
        raise Refusal("user needs at least one of userIds or userInfo")


def _check_info(info: Any) -> None:
    if not isinstance(info, dict):
        raise Refusal("user.userInfo must be an object")
    _no_unknown(info, INFO_KEYS, "user.userInfo.")
    for key, value in info.items():
        if not isinstance(value, str) or not value.strip():
            raise Refusal(f"user.userInfo.{key} must be a non-empty string")
    if "firstName" not in info or "lastName" not in info:
        raise Refusal("user.userInfo needs firstName and lastName")
    if "countryCode" in info and not COUNTRY.fullmatch(info["countryCode"]):
        raise Refusal("user.userInfo.countryCode must be an ISO 3166-1 alpha-2 code")


def _check_value(value: Any) -> None:
    if not isinstance(value, dict) or set(value) != {"currencyCode", "amount"}:
        raise Refusal("conversionValue must be {currencyCode, amount}")
    if not isinstance(value["currencyCode"], str) or not CURRENCY.fullmatch(
            value["currencyCode"]):
        raise Refusal("conversionValue.currencyCode must be an ISO 4217 code")
    if not isinstance(value["amount"], str) or not AMOUNT.fullmatch(value["amount"]):
        raise Refusal("conversionValue.amount must be a decimal number as a string")


# -- the server ------------------------------------------------------------------------------

@dataclass
class Fault:
    kind: str  # 500 | 429 | 401 | 403 | slow | drop
    retry_after: float | None = None
    delay: float = 0.0


@dataclass
class RequestLog:
    version: str | None
    elements: int
    status: int
    statuses: list[int] = field(default_factory=list)


@dataclass
class FakeLinkedIn(Loopback):
    """Run with ``with FakeLinkedIn(token="t") as li:``; point clients at ``li.base_url``."""

    token: str = "test-token"
    read_only: set[str] = field(default_factory=set)  # tokens without rw_conversions: 403
    rules: set[str] | None = None  # the conversion rules that exist (None: any)
    clock: Callable[[], float] = time.time
    receipts: Counter[tuple[str, str]] = field(default_factory=Counter)
    payloads: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    requests: list[RequestLog] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)

    def handler(self) -> type[BaseHTTPRequestHandler]:
        return _handler(self)

    def fail_next(self, kind: str, times: int = 1, *, retry_after: float | None = None,
                  delay: float = 0.0) -> None:
        if kind not in {"500", "429", "401", "403", "426", "slow", "drop"}:
            raise ValueError(f"unknown fault {kind}")
        with self._mutex:
            self.faults.extend(Fault(kind, retry_after, delay) for _ in range(times))

    @property
    def unique(self) -> set[tuple[str, str]]:
        """(conversion, eventId) as LinkedIn counts them: once each."""
        with self._mutex:
            return set(self.receipts)

    @property
    def duplicates(self) -> int:
        with self._mutex:
            return sum(n - 1 for n in self.receipts.values())

    def next_fault(self) -> Fault | None:
        with self._mutex:
            return self.faults.pop(0) if self.faults else None

    def handle(self, path: str, headers: dict[str, str], body: bytes
               ) -> tuple[int, dict[str, Any], dict[str, str]]:
        """One request -> (status, JSON answer, extra headers)."""
        version = headers.get("linkedin-version")
        with self._mutex:
            self.headers.append(dict(headers))
        try:
            elements = self._check_request(path, headers, body)
        except Refusal as refusal:
            self._log(RequestLog(version, 0, refusal.status))
            return refusal.status, refusal.envelope(), {}
        now_ms = int(self.clock() * 1000)
        answers: list[dict[str, Any]] = []
        for element in elements:
            try:
                check_element(element, now_ms, self.rules)
            except Refusal as refusal:
                answers.append({"status": refusal.status, "error": refusal.envelope()})
                continue
            self._accept(element)
            answers.append({"status": 201})
        self._log(RequestLog(version, len(elements), 200, [a["status"] for a in answers]))
        return 200, {"elements": answers}, {}

    def _check_request(self, path: str, headers: dict[str, str], body: bytes) -> list[Any]:
        if path.split("?", 1)[0] != PATH:
            raise Refusal(f"No virtual resource found for {path[:60]}", status=404,
                          code="RESOURCE_NOT_FOUND", service_code=0)
        self._check_token(headers.get("authorization"))
        check_version(headers.get("linkedin-version"), self.clock())
        if headers.get("x-restli-protocol-version") != "2.0.0":
            raise Refusal("X-Restli-Protocol-Version must be 2.0.0", code="ILLEGAL_ARGUMENT")
        if headers.get("x-restli-method", "").upper() != "BATCH_CREATE":
            raise Refusal("this fake serves batch create only (X-RestLi-Method: BATCH_CREATE)",
                          code="ILLEGAL_ARGUMENT")
        if not headers.get("content-type", "").startswith("application/json"):
            raise Refusal("the body must be application/json", status=415,
                          code="UNSUPPORTED_MEDIA_TYPE")
        try:
            parsed = json.loads(body or b"null")
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise Refusal("the body is not valid JSON") from None
        return check_elements(parsed)

    def _check_token(self, authorization: str | None) -> None:
        scheme, _, given = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not given:
            raise Refusal("Empty oauth2 access token", status=401, code="EMPTY_ACCESS_TOKEN",
                          service_code=65604)
        if any(secrets.compare_digest(given, t) for t in self.read_only):
            raise Refusal("Not enough permissions to access: conversionEvents.BATCH_CREATE",
                          status=403, code="ACCESS_DENIED", service_code=100)
        if not secrets.compare_digest(given, self.token):
            raise Refusal("Invalid access token", status=401, code="INVALID_ACCESS_TOKEN",
                          service_code=65600)

    def _accept(self, element: dict[str, Any]) -> None:
        key = (element["conversion"], str(element.get("eventId", "")))
        with self._mutex:
            self.receipts[key] += 1
            self.payloads[key] = element


def fault_answer(fault: Fault) -> tuple[int, dict[str, Any], dict[str, str]]:
    if fault.kind == "500":
        return 500, Refusal("Internal Server Error", status=500, code="INTERNAL_SERVER_ERROR",
                            service_code=0).envelope(), {}
    if fault.kind == "429":
        headers = {"Retry-After": f"{fault.retry_after:g}"} if fault.retry_after else {}
        return 429, Refusal("Resource level throttle APPLICATION DAY limit for calls to this "
                            "resource is reached.", status=429, code="TOO_MANY_REQUESTS",
                            service_code=101).envelope(), headers
    if fault.kind == "401":
        return 401, Refusal("The token used in the request has expired", status=401,
                            code="EXPIRED_ACCESS_TOKEN", service_code=65602).envelope(), {}
    if fault.kind == "426":  # the version sent is sunset meanwhile (as check_version answers)
        return 426, Refusal("Requested version is not active", status=426,
                            code="NONEXISTENT_VERSION", service_code=3).envelope(), {}
    return 403, Refusal("Not enough permissions to access: conversionEvents.BATCH_CREATE",
                        status=403, code="ACCESS_DENIED", service_code=100).envelope(), {}


def _handler(fake: FakeLinkedIn) -> type[BaseHTTPRequestHandler]:
    class Handler(JsonHandler):
        def do_POST(self) -> None:
            body = self.body()
            dropped, fault = self.transport_fault(fake.next_fault())
            if dropped:
                return
            if fault is not None:
                status, answer, headers = fault_answer(fault)
                fake._log(RequestLog(self.headers.get("linkedin-version"), 0, status))
            else:
                lowered = {k.lower(): v for k, v in self.headers.items()}
                status, answer, headers = fake.handle(self.path, lowered, body)
            self.send_json(status, answer, headers)

    return Handler
