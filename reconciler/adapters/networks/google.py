"""Sending conversions to Google Ads through the Data Manager API (docs/networks/google.md).

``GoogleDestination.send(target, account, events, token)`` makes one ``POST
{base}/v1/events:ingest`` with ``Authorization: Bearer <token>`` (the token travels in that
header only) and, when the account acts through a manager, ``login-customer-id``. The body is
``{"destinations": [one GOOGLE_ADS destination: operatingAccount the target's customer,
productDestinationId and reference its conversion action, loginAccount the manager], "events":
[...], "encoding": "HEX", "validateOnly": ...}``, the events joined from their stored bytes
without parsing them again.

Google refuses the whole request for one bad event. Its ``google.rpc.Status`` answer maps to an
``Outcome``: 200 ``sent``; 429, 500, 502, 503, 504 and transport failures ``retry`` (after
``Retry-After`` or the ``RetryInfo`` detail); 401 ``pause`` (token); 403 ``pause``
(permission); other answers ``reject``. A rejection carries ``rejected`` (index -> reason) only
when every ``BadRequest`` field violation names an event (``events[3].eventTimestamp``):
nothing of such a request was recorded, so the other events must be sent again; otherwise
``rejected`` is None and delivery splits the batch.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson

from reconciler.core.backoff import parse_retry_after
from reconciler.core.models import AccountSpec
from reconciler.core.networks import Outcome

DEFAULT_BASE_URL = "https://datamanager.googleapis.com"
DEFAULT_TIMEOUT = 30.0
INGEST_PATH = "/v1/events:ingest"
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_EVENT_FIELD = re.compile(r"events\[([0-9]+)\]")
_DELAY = re.compile(r"([0-9]+(?:\.[0-9]+)?)s")
_MAX_MESSAGE = 300


@dataclass(frozen=True, slots=True)
class GoogleError:
    """What a ``google.rpc.Status`` answer says (messages never carry a request's values)."""

    status: str | None  # INVALID_ARGUMENT, UNAUTHENTICATED, ...
    message: str
    reason: str | None  # the ErrorInfo reason (INVALID_EVENT, NO_IDENTIFIERS_PROVIDED, ...)
    violations: tuple[tuple[str, str], ...]  # BadRequest (field, description)
    retry_delay: float | None  # RetryInfo, seconds

    def describe(self) -> str:
        head = self.status or "error"
        if self.reason and self.reason != self.status:
            head += f"/{self.reason}"
        text = f"{head}: {self.message}" if self.message else head
        for where, what in self.violations[:3]:
            text += f"; {where}: {what}"
        return text[:_MAX_MESSAGE]


def _details(error: Mapping[str, Any]) -> tuple[str | None, list[tuple[str, str]], float | None]:
    reason, violations, delay = None, [], None
    details = error.get("details")
    for item in details if isinstance(details, list) else ():
        if not isinstance(item, dict):
            continue
        kind = str(item.get("@type", ""))
        if kind.endswith("google.rpc.ErrorInfo") and isinstance(item.get("reason"), str):
            reason = item["reason"]
        elif kind.endswith("google.rpc.BadRequest"):
            for v in item.get("fieldViolations") or ():
                if isinstance(v, dict):
                    violations.append((str(v.get("field", "")), str(v.get("description", ""))))
        elif kind.endswith("google.rpc.RetryInfo"):
            match = _DELAY.fullmatch(str(item.get("retryDelay", "")))
            delay = float(match.group(1)) if match else None
    return reason, violations, delay


def parse_error(raw: bytes) -> GoogleError | None:
    """The error of an answer body, None when it is not a ``google.rpc.Status`` envelope."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return None
    reason, violations, delay = _details(error)
    status = error.get("status")
    return GoogleError(status if isinstance(status, str) else None,
                       str(error.get("message", ""))[:_MAX_MESSAGE], reason,
                       tuple(violations), delay)


def request_body(destination: Mapping[str, Any], events: Sequence[bytes],
                 validate_only: bool) -> bytes:
    """The JSON body, events given as JSON objects already (no parse, no re-encode)."""
    return b"".join((b'{"destinations":[', orjson.dumps(destination), b'],"events":[',
                     b",".join(events), b'],"encoding":"HEX","validateOnly":',
                     b"true" if validate_only else b"false", b"}"))


def destination(target: str, account: AccountSpec) -> dict[str, Any]:
    """The one ``Destination`` of a request to ``target`` (``<customerId>/<conversionAction>``)."""
    customer, _, action = target.partition("/")
    dest: dict[str, Any] = {"reference": action,
                            "operatingAccount": {"accountType": "GOOGLE_ADS",
                                                 "accountId": customer},
                            "productDestinationId": action}
    login = account.google.login_customer_id if account.google else None
    if login:
        dest["loginAccount"] = {"accountType": "GOOGLE_ADS", "accountId": login}
    return dest


class GoogleDestination:
    """A Data Manager API client; ``clock`` only serves ``Retry-After`` dates."""

    network = "google"

    def __init__(self, base_url: str = DEFAULT_BASE_URL,
                 transport: httpx.BaseTransport | None = None, timeout: float = DEFAULT_TIMEOUT,
                 clock: Callable[[], datetime] | None = None, validate_only: bool = False) -> None:
        self.base_url = base_url.rstrip("/")
        self.validate_only = validate_only
        self._clock = clock or (lambda: datetime.now(UTC))
        self._client = httpx.Client(transport=transport, timeout=httpx.Timeout(timeout),
                                    headers={"user-agent": "convctl-agent"})

    def send(self, target: str, account: AccountSpec, events: Sequence[bytes],
             token: str) -> Outcome:
        dest = destination(target, account)
        headers = {"content-type": "application/json", "authorization": f"Bearer {token}"}
        if "loginAccount" in dest:
            headers["login-customer-id"] = dest["loginAccount"]["accountId"]
        body = request_body(dest, events, self.validate_only)
        try:
            response = self._client.post(self.base_url + INGEST_PATH, content=body,
                                         headers=headers)
        except httpx.TimeoutException as exc:
            return Outcome("retry", f"timed out ({type(exc).__name__})")
        except httpx.HTTPError as exc:
            return Outcome("retry", f"connection failed ({type(exc).__name__})")
        return self.outcome(response.status_code, response.content,
                            response.headers.get("retry-after"), len(events))

    def outcome(self, status: int, raw: bytes, retry_after: str | None, count: int) -> Outcome:
        """The ``Outcome`` of one answer to a request of ``count`` events."""
        if status == 200:
            return Outcome("sent", status=200)
        error = parse_error(raw)
        message = error.describe() if error else _snippet(raw)
        code = error.status if error else None
        if status in RETRY_STATUSES:
            wait = parse_retry_after(retry_after, self._clock())
            return Outcome("retry", message, status, code,
                           wait if wait is not None else (error.retry_delay if error else None))
        if status == 401:
            return Outcome("pause", message, status, code, pause_reason="token")
        if status == 403:
            return Outcome("pause", message, status, code, pause_reason="permission")
        return Outcome("reject", message, status, code,
                       rejected=_per_event(error, count) if error else None)

    def close(self) -> None:
        self._client.close()


def _per_event(error: GoogleError, count: int) -> dict[int, str] | None:
    """index -> reason when every field violation names an event of the request."""
    out: dict[int, str] = {}
    for where, what in error.violations:
        match = _EVENT_FIELD.match(where)
        if match is None or int(match.group(1)) >= count:
            return None
        index = int(match.group(1))
        out[index] = f"{error.reason or error.status or 'INVALID_ARGUMENT'}: {where}: {what}"[
            :_MAX_MESSAGE]
    return out or None


def _snippet(raw: bytes) -> str:
    text = raw[:200].decode("utf-8", "replace").replace("\n", " ").strip()
    return f"unexpected body: {text}" if text else "empty body"


def reason_of(outcome: Outcome) -> str | None:
    """Google's ErrorInfo reason in an ``Outcome`` this module made (``STATUS/REASON: ...``)."""
    head = outcome.message.split(":", 1)[0]
    status, slash, reason = head.partition("/")
    if slash:
        return reason
    return status if outcome.code and status == outcome.code else None
