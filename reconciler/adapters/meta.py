"""Posting server events to the Graph API (capi-contract.md) with httpx.

``GraphSender.send(pixel_id, events, token)`` makes one ``POST {base}/{version}/{pixel}/events``
with a JSON body ``{"data": [...], "access_token": ..., "test_event_code"?}``
(``send_encoded`` takes the events as JSON already, as the outbox stores them, and joins them
into the body without parsing them again): the token travels
in the body, never in the URL, so no access log or exception message can show it. The answer
comes back classified by ``core.backoff.classify_graph_error`` (``ok | retry | permanent |
token``); timeouts and connection errors are ``retry``. One ``httpx.Client`` per sender keeps
connections alive between batches; ``transport`` is the seam for tests. ``adapters.networks.meta``
makes it a ``Destination``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson

from reconciler.core.backoff import Verdict, classify_graph_error, parse_graph_error
from reconciler.core.backoff import parse_retry_after as _parse_retry_after

DEFAULT_BASE_URL = "https://graph.facebook.com"
DEFAULT_API_VERSION = "v25.0"
DEFAULT_TIMEOUT = 30.0


@dataclass(frozen=True, slots=True)
class SendResult:
    """A classified answer. ``message`` is Meta's (user) message or a transport summary."""

    verdict: Verdict
    status: int | None = None
    code: int | None = None
    subcode: int | None = None
    message: str = ""
    retry_after: float | None = None
    events_received: int | None = None

    def describe(self) -> str:
        parts = [f"HTTP {self.status}" if self.status is not None else "no response"]
        if self.code is not None:
            parts.append(f"code {self.code}" + (f"/{self.subcode}" if self.subcode else ""))
        return ", ".join(parts) + (f": {self.message}" if self.message else "")


def request_body(events: Sequence[dict[str, Any]], test_event_code: str | None) -> dict[str, Any]:
    """The JSON body without the token (what ``--dry-run`` writes)."""
    body: dict[str, Any] = {"data": list(events)}
    if test_event_code:
        body["test_event_code"] = test_event_code
    return body


def encoded_body(events: Sequence[bytes], token: str | None,
                 test_event_code: str | None) -> bytes:
    """The request body from events that are JSON objects already (no parse, no re-encode)."""
    parts = [b'{"data":[', b",".join(events), b"]"]
    if test_event_code:
        parts += [b',"test_event_code":', orjson.dumps(test_event_code)]
    if token is not None:
        parts += [b',"access_token":', orjson.dumps(token)]
    parts.append(b"}")
    return b"".join(parts)


class GraphSender:
    """A Conversions API client; ``clock`` only serves ``Retry-After`` dates."""

    def __init__(self, base_url: str = DEFAULT_BASE_URL, api_version: str = DEFAULT_API_VERSION,
                 transport: httpx.BaseTransport | None = None, timeout: float = DEFAULT_TIMEOUT,
                 clock: Callable[[], datetime] | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_version = api_version
        self._clock = clock or (lambda: datetime.now(UTC))
        self._client = httpx.Client(transport=transport, timeout=httpx.Timeout(timeout),
                                    headers={"user-agent": "convctl-agent"})

    def url(self, pixel_id: str) -> str:
        return f"{self.base_url}/{self.api_version}/{pixel_id}/events"

    def send(self, pixel_id: str, events: Sequence[dict[str, Any]], token: str,
             test_event_code: str | None = None) -> SendResult:
        return self.send_encoded(pixel_id, [orjson.dumps(e) for e in events], token,
                                 test_event_code)

    def send_encoded(self, pixel_id: str, events: Sequence[bytes], token: str,
                     test_event_code: str | None = None) -> SendResult:
        """``send`` for events given as JSON objects (each one ``orjson.dumps`` of a payload)."""
        body = encoded_body(events, token, test_event_code)
        try:
            response = self._client.post(self.url(pixel_id), content=body,
                                         headers={"content-type": "application/json"})
        except httpx.TimeoutException as exc:
            return SendResult("retry", message=f"timed out ({type(exc).__name__})")
        except httpx.HTTPError as exc:
            return SendResult("retry", message=f"connection failed ({type(exc).__name__})")
        return self._classify(response)

    def _classify(self, response: httpx.Response) -> SendResult:
        raw = response.content
        verdict = classify_graph_error(response.status_code, raw)
        error = parse_graph_error(raw)
        retry_after = _parse_retry_after(response.headers.get("retry-after"), self._clock())
        received = None
        if verdict == "ok":
            received = int(orjson.loads(raw)["events_received"])
        message = error.message if error else ("" if verdict == "ok" else _snippet(raw))
        return SendResult(verdict, response.status_code, error.code if error else None,
                          error.subcode if error else None, message, retry_after, received)

    def close(self) -> None:
        self._client.close()


def _snippet(raw: bytes) -> str:
    """A short, printable excerpt of an unexpected body (for the log and last_error)."""
    text = raw[:200].decode("utf-8", "replace").replace("\n", " ").strip()
    return f"unexpected body: {text}" if text else "empty body"
