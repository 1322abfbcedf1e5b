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
import secrets
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from fakes.google_ads_contract import PATH, Refusal, check_request
from fakes.loopback import JsonHandler, Loopback

__all__ = ["FakeGoogleAds", "Refusal", "check_request"]


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
class FakeGoogleAds(Loopback):
    """Run with ``with FakeGoogleAds(token="t") as google:``; point clients at ``base_url``."""

    token: str = "google-test-token"
    customers: set[str] | None = None  # customers the token may write to (None: any)
    actions: set[str] | None = None  # conversion actions that exist (None: any)
    clock: Callable[[], float] = time.time
    receipts: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    payloads: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)
    requests: list[RequestLog] = field(default_factory=list)
    bodies: list[dict[str, Any]] = field(default_factory=list)  # every accepted body
    validated: list[dict[str, Any]] = field(default_factory=list)  # valid validateOnly bodies
    faults: list[Fault] = field(default_factory=list)

    def handler(self) -> type[BaseHTTPRequestHandler]:
        return _handler(self)

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
            with self._mutex:
                self.validated.append(parsed)
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
    class Handler(JsonHandler):
        content_type = "application/json; charset=UTF-8"

        def do_POST(self) -> None:
            body = self.body()
            dropped, fault = self.transport_fault(google._next_fault())
            if dropped:
                return
            if fault is not None:
                status, answer, headers = fault_answer(fault)
                google._log(RequestLog("", 0, status, False, None))
            else:
                status, answer, headers = google.handle(self.path, self.headers, body)
            self.send_json(status, answer, headers)

    return Handler
