"""A strict fake of the Graph API's Conversions API edge, served on loopback (capi-contract.md).

``POST /{version}/{pixel_id}/events`` accepts a JSON body ``{"data": [...], "access_token"?,
"test_event_code"?, "partner_agent"?}`` or a form-encoded body whose ``data`` is a JSON array of
JSON-encoded events (the official SDK's shape); the token may also travel in the query.

It refuses, with Meta's error envelope (code 100 and a subcode, ``error_user_msg`` naming the
offending event index and field, never its value), every request that breaks the contract:
missing or mistyped required fields, an ``action_source`` outside the enum, website events
without ``event_source_url`` or ``client_user_agent``, hashed keys that are not 64 lowercase hex,
a ``lead_id`` that is not 15-17 digits, too little customer information (2804050), more than
1,000 events, unknown fields. One bad event rejects the whole request; so does any event older
than 7 days (2804003) or more than 60 s ahead. A wrong token is code 190, a missing one 104.

Accepted events are recorded raw (``receipts``: every arrival) and deduplicated as Meta does
(``unique``: (pixel, event_name, event_id) counted once). ``fail_next`` injects faults for the
next requests: ``500``, ``613`` (rate limit, ``is_transient``, ``Retry-After``), ``190``,
``slow`` (answer after ``delay`` seconds, the events still accepted, as a real slow server
would), ``drop`` (close the connection without an answer, nothing accepted) and ``short``
(a valid request of which only the first ``received`` events are accepted, answered
``200 {"events_received": received}``: Meta's answer when it lost events).

Subcodes other than 2804050 are this fake's choice; clients must classify by ``code``.

``GET /{version}/dataset_quality`` (Meta's Dataset Quality API) serves ``quality`` (pixel ->
its ``web`` entries) as ``graph_quality`` describes, strict about the token, the dataset id and
the ``fields`` parameter; ``fail_next`` applies to it too.
"""

from __future__ import annotations

import ipaddress
import json
import re
import secrets
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from fakes import graph_quality
from fakes.loopback import JsonHandler, Loopback

MAX_EVENTS = 1000
MAX_AGE_S = 7 * 24 * 3600
MAX_FUTURE_S = 60
ACTION_SOURCES = {"email", "website", "app", "phone_call", "chat", "physical_store",
                  "system_generated", "business_messaging", "other"}
HASHED = {"em", "ph", "fn", "ln", "db", "ge", "ct", "st", "zp", "country"}
CLEAR = {"client_ip_address", "client_user_agent", "fbc", "fbp", "lead_id", "subscription_id",
         "fb_login_id", "anon_id", "madid", "page_id", "page_scoped_user_id", "ctwa_clid",
         "ig_account_id", "ig_sid"}
USER_KEYS = HASHED | CLEAR | {"external_id"}
EVENT_KEYS = {"event_name", "event_time", "user_data", "custom_data", "event_source_url",
              "opt_out", "event_id", "action_source", "data_processing_options",
              "data_processing_options_country", "data_processing_options_state",
              "referrer_url", "app_data", "original_event_data", "attribution_data",
              "customer_segmentation", "messaging_channel"}
BODY_KEYS = {"data", "access_token", "appsecret_proof", "test_event_code", "partner_agent",
             "namespace_id", "upload_id", "upload_tag", "upload_source"}
INSUFFICIENT = (frozenset({"ct", "country", "st", "zp", "ge", "client_user_agent"}),
                frozenset({"db", "client_user_agent"}), frozenset({"fn", "ge"}),
                frozenset({"ln", "ge"}))
HEX64 = re.compile(r"[0-9a-f]{64}")
LEAD_ID = re.compile(r"[0-9]{15,17}")  # ASCII digits only (\d matches any script)
PATH = re.compile(r"/(v\d+\.\d+)/(\d+)/events")


class Reject(Exception):
    """A refusal: HTTP status, Graph code and subcode, title and message."""

    def __init__(self, message: str, *, subcode: int = 2804001, code: int = 100,
                 status: int = 400, title: str = "Invalid parameter",
                 transient: bool = False) -> None:
        super().__init__(message)
        self.message, self.code, self.subcode = message, code, subcode
        self.status, self.title, self.transient = status, title, transient

    def envelope(self) -> dict[str, Any]:
        return {"error": {"message": f"(#{self.code}) {self.title}", "type": "OAuthException",
                          "code": self.code, "error_subcode": self.subcode,
                          "is_transient": self.transient, "error_user_title": self.title,
                          "error_user_msg": self.message, "fbtrace_id": secrets.token_hex(8)}}


# -- the contract, as pure checks ------------------------------------------------------------

def check_request(data: Any, now: float) -> list[dict[str, Any]]:
    """The events of a valid ``data`` value, or ``Reject`` for the whole request."""
    if not isinstance(data, list) or not data:
        raise Reject("data must be a non-empty array of events")
    if len(data) > MAX_EVENTS:
        raise Reject(f"data holds {len(data)} events; at most {MAX_EVENTS} per request",
                     subcode=2804019)
    for index, event in enumerate(data):
        check_event(index, event, now)
    return data


def check_event(i: int, event: Any, now: float) -> None:
    if not isinstance(event, dict):
        raise Reject(f"event {i}: must be an object")
    unknown = sorted(set(event) - EVENT_KEYS)
    if unknown:
        raise Reject(f"event {i}: unknown field {unknown[0]}")
    if not isinstance(event.get("event_name"), str) or not event["event_name"].strip():
        raise Reject(f"event {i}: event_name is required")
    _check_time(i, event.get("event_time"), now)
    source = event.get("action_source")
    if source not in ACTION_SOURCES:
        raise Reject(f"event {i}: action_source must be one of {', '.join(sorted(ACTION_SOURCES))}")
    if "event_id" in event and not isinstance(event["event_id"], str):
        raise Reject(f"event {i}: event_id must be a string")
    _check_data_processing(i, event)
    ud = event.get("user_data")
    if not isinstance(ud, dict) or not ud:
        raise Reject(f"event {i}: user_data is required and needs at least one key")
    for key, value in ud.items():
        _check_user_key(i, key, value)
    if source == "website":
        url = event.get("event_source_url")
        if not isinstance(url, str) or urllib.parse.urlsplit(url).scheme not in ("http", "https"):
            raise Reject(f"event {i}: event_source_url (http/https) is required for website "
                         "events")
        if not ud.get("client_user_agent"):
            raise Reject(f"event {i}: user_data.client_user_agent is required for website events")
    _check_customer_info(i, ud)
    _check_custom_data(i, event.get("custom_data"))


def _check_time(i: int, value: Any, now: float) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise Reject(f"event {i}: event_time must be an integer (unix seconds)")
    if value < now - MAX_AGE_S:
        raise Reject(f"event {i}: event_time is more than 7 days in the past", subcode=2804003,
                     title="Event Timestamp Too Old")
    if value > now + MAX_FUTURE_S:
        raise Reject(f"event {i}: event_time is in the future", subcode=2804004)


def _check_data_processing(i: int, event: dict[str, Any]) -> None:
    """Meta's Limited Data Use fields: [] or ["LDU"]; country 0/1 and state 0/1000 as integers."""
    options = event.get("data_processing_options")
    if "data_processing_options" in event and options not in ([], ["LDU"]):
        raise Reject(f"event {i}: data_processing_options must be [] or [\"LDU\"]")
    for key, allowed in (("data_processing_options_country", (0, 1)),
                         ("data_processing_options_state", (0, 1000))):
        if key in event and (options != ["LDU"] or type(event[key]) is not int
                             or event[key] not in allowed):
            raise Reject(f"event {i}: {key} must be one of {allowed} with [\"LDU\"]")


def _check_user_key(i: int, key: str, value: Any) -> None:
    if key not in USER_KEYS:
        raise Reject(f"event {i}: unknown user_data key {key}")
    values = value if isinstance(value, list) and key in HASHED | {"external_id"} else [value]
    for v in values:
        if not isinstance(v, str | int) or isinstance(v, bool) or str(v) == "":
            raise Reject(f"event {i}: user_data.{key} must be a non-empty string")
        if key in HASHED and not HEX64.fullmatch(str(v)):
            raise Reject(f"event {i}: user_data.{key} must be a SHA-256 hash (64 lowercase hex)",
                         subcode=2804008)
    if key == "lead_id" and (type(value) is not int or not LEAD_ID.fullmatch(str(value))):
        # Meta's payload specification: lead_id is an integer of 15-17 digits (issue 13 item 8)
        raise Reject(f"event {i}: user_data.lead_id must be an integer of 15-17 digits, "
                     "not hashed", subcode=2804008)
    if key == "client_ip_address":
        try:
            ipaddress.ip_address(str(value))
        except ValueError:
            raise Reject(f"event {i}: user_data.client_ip_address is not an IP address") from None


def _check_customer_info(i: int, ud: dict[str, Any]) -> None:
    keys = frozenset(ud)
    if any(keys <= bad for bad in INSUFFICIENT):
        raise Reject(f"event {i}: the user_data does not hold enough customer information",
                     subcode=2804050, title="Not enough customer information")


def _check_custom_data(i: int, custom: Any) -> None:
    if custom is None:
        return
    if not isinstance(custom, dict):
        raise Reject(f"event {i}: custom_data must be an object")
    value = custom.get("value")
    if value is not None and (not isinstance(value, int | float) or isinstance(value, bool)):
        raise Reject(f"event {i}: custom_data.value must be a number")
    currency = custom.get("currency")
    if currency is not None and not (isinstance(currency, str)
                                     and re.fullmatch(r"[A-Za-z]{3}", currency)):
        raise Reject(f"event {i}: custom_data.currency must be an ISO 4217 code")


# -- the server ------------------------------------------------------------------------------

@dataclass
class Fault:
    kind: str  # 500 | 613 | 190 | slow | drop | short
    retry_after: float | None = None
    delay: float = 0.0
    received: int = 0  # short: how many events of the request are accepted


@dataclass
class RequestLog:
    pixel_id: str
    events: int
    status: int
    test_event_code: str | None
    form_encoded: bool


@dataclass
class FakeGraph(Loopback):
    """Run with ``with FakeGraph(token="t") as graph:``; point clients at ``graph.base_url``."""

    token: str = "test-token"
    tokens: dict[str, str] = field(default_factory=dict)  # per pixel, overrides ``token``
    clock: Callable[[], float] = time.time
    latency: float = 0.0  # seconds every answer takes (after the events are accepted)
    receipts: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    payloads: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)
    requests: list[RequestLog] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    quality: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    quality_requests: list[dict[str, str]] = field(default_factory=list)

    # -- control ------------------------------------------------------------------------------

    def handler(self) -> type[BaseHTTPRequestHandler]:
        return _handler(self)

    def fail_next(self, kind: str, times: int = 1, *, retry_after: float | None = None,
                  delay: float = 0.0, received: int = 0) -> None:
        with self._mutex:
            self.faults.extend(Fault(kind, retry_after, delay, received)
                               for _ in range(times))

    # -- what arrived -------------------------------------------------------------------------

    @property
    def unique(self) -> set[tuple[str, str, str]]:
        """(pixel, event_name, event_id) as Meta counts them (deduplicated within 48 h)."""
        with self._mutex:
            return set(self.receipts)

    @property
    def duplicates(self) -> int:
        """Raw arrivals beyond the first per key (Meta drops them)."""
        with self._mutex:
            return sum(n - 1 for n in self.receipts.values())

    def event_ids(self) -> set[str]:
        return {key[2] for key in self.unique}

    # -- handling -----------------------------------------------------------------------------

    def _next_fault(self) -> Fault | None:
        with self._mutex:
            return self.faults.pop(0) if self.faults else None

    def handle(self, path: str, body: bytes, content_type: str, accept: int | None = None
               ) -> tuple[int, dict[str, Any], dict[str, str]]:
        """One request -> (status, JSON answer, extra headers); ``accept``: only that many of
        a valid request's events are accepted (and counted in ``events_received``)."""
        url = urllib.parse.urlsplit(path)
        match = PATH.fullmatch(url.path)
        if match is None:
            return 400, Reject("Unsupported post request", subcode=33).envelope(), {}
        pixel = match.group(2)
        try:
            fields, form = _parse_body(body, content_type, url.query)
            self._check_token(pixel, fields.get("access_token"))
            unknown = sorted(set(fields) - BODY_KEYS)
            if unknown:
                raise Reject(f"unknown parameter {unknown[0]}")
            events = check_request(fields.get("data"), self.clock())
        except Reject as rej:
            self._log(RequestLog(pixel, 0, rej.status, None, False))
            return rej.status, rej.envelope(), {}
        events = events if accept is None else events[:accept]
        self._accept(pixel, events)
        self._log(RequestLog(pixel, len(events), 200, fields.get("test_event_code"), form))
        return 200, {"events_received": len(events), "messages": [],
                     "fbtrace_id": secrets.token_hex(8)}, {}

    def handle_quality(self, path: str, authorization: str | None
                       ) -> tuple[int, dict[str, Any], dict[str, str]]:
        """``GET /{version}/dataset_quality``: the asked fields of the dataset's web events."""
        route, query = graph_quality.parse_query(path)
        if graph_quality.PATH.fullmatch(route) is None:
            return 400, Reject("Unsupported get request", subcode=33).envelope(), {}
        dataset = query.get("dataset_id", "")
        with self._mutex:
            self.quality_requests.append(query)
        try:
            if not dataset:
                raise Reject("(#100) The parameter dataset_id is required", subcode=0)
            self._check_token(dataset, graph_quality.token_of(query, authorization))
            if not re.fullmatch(r"[0-9]{1,20}", dataset) or dataset not in self.quality:
                raise Reject(f"Unsupported get request. Object with ID '{dataset[:40]}' does "
                             "not exist, cannot be loaded due to missing permissions, or does "
                             "not support this operation", subcode=33)
            try:
                asked = graph_quality.asked_fields(query.get("fields"))
            except graph_quality.FieldError as exc:
                raise Reject(f"(#100) {exc}", subcode=0) from None
        except Reject as rej:
            return rej.status, rej.envelope(), {}
        return 200, graph_quality.project({"web": self.quality[dataset]}, asked), {}

    def _check_token(self, pixel: str, given: Any) -> None:
        if not given:
            raise Reject("An access token is required to request this resource.", code=104,
                         subcode=0, title="Access token required")
        expected = self.tokens.get(pixel, self.token)
        if not secrets.compare_digest(str(given), expected):
            raise Reject("Error validating access token: the session is invalid.", code=190,
                         subcode=460, title="Invalid OAuth access token")

    def _accept(self, pixel: str, events: list[dict[str, Any]]) -> None:
        with self._mutex:
            for event in events:
                key = (pixel, event["event_name"], str(event.get("event_id", "")))
                self.receipts[key] += 1
                self.payloads[key] = event


def fault_answer(fault: Fault) -> tuple[int, dict[str, Any], dict[str, str]]:
    if fault.kind == "500":
        return 500, Reject("An unexpected error has occurred.", code=2, subcode=0,
                           status=500, title="Service temporarily unavailable",
                           transient=True).envelope(), {}
    if fault.kind == "613":
        headers = {"Retry-After": f"{fault.retry_after:g}"} if fault.retry_after else {}
        return 400, Reject("Calls to this API have exceeded the rate limit.", code=613,
                           subcode=1487742, title="Rate limit", transient=True).envelope(), headers
    if fault.kind == "190":
        return 400, Reject("Error validating access token: the session has expired.", code=190,
                           subcode=463, title="Expired token").envelope(), {}
    raise ValueError(f"unknown fault {fault.kind}")


def _parse_body(body: bytes, content_type: str, query: str) -> tuple[dict[str, Any], bool]:
    params = dict(urllib.parse.parse_qsl(query))
    if content_type.startswith("application/x-www-form-urlencoded"):
        fields: dict[str, Any] = dict(urllib.parse.parse_qsl(body.decode()))
        try:
            raw = json.loads(fields.get("data", "null"))
            fields["data"] = [json.loads(e) if isinstance(e, str) else e for e in raw] \
                if isinstance(raw, list) else raw
        except json.JSONDecodeError:
            raise Reject("data must be a JSON array") from None
        return {**params, **fields}, True
    try:
        parsed = json.loads(body or b"null")
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise Reject("the body is not valid JSON") from None
    if not isinstance(parsed, dict):
        raise Reject("the body must be a JSON object")
    return {**params, **parsed}, False


def _handler(graph: FakeGraph) -> type[BaseHTTPRequestHandler]:
    class Handler(JsonHandler):
        def do_GET(self) -> None:
            dropped, fault = self.transport_fault(graph._next_fault())
            if dropped:
                return
            if fault is not None:
                status, answer, headers = fault_answer(fault)
            else:
                status, answer, headers = graph.handle_quality(
                    self.path, self.headers.get("authorization"))
            self.send_json(status, answer, headers)

        def do_POST(self) -> None:
            body = self.body()
            dropped, fault = self.transport_fault(graph._next_fault())
            if dropped:
                return
            if fault is not None and fault.kind == "short":
                status, answer, headers = graph.handle(
                    self.path, body, self.headers.get("content-type", ""), fault.received)
            elif fault is not None:
                status, answer, headers = fault_answer(fault)
                graph._log(RequestLog("", 0, status, None, False))
            else:
                status, answer, headers = graph.handle(
                    self.path, body, self.headers.get("content-type", ""))
            if graph.latency:
                time.sleep(graph.latency)
            self.send_json(status, answer, headers)

    return Handler
