"""Sending conversion events to LinkedIn's Conversions API with httpx (docs/networks/linkedin.md).

``LinkedInDestination.send(target, account, events, token)`` makes one
``POST {base}/rest/conversionEvents`` batch create: ``Authorization: Bearer <token>`` (the
token travels in that header only), ``Linkedin-Version`` the account's pinned version,
``X-Restli-Protocol-Version: 2.0.0``, ``X-RestLi-Method: BATCH_CREATE`` and the body
``{"elements": [...]}`` joined from the stored JSON bytes (no parse, no re-encode). The answer
becomes an ``Outcome``:

- 200/201: each element has its own status. All 2xx: ``sent``. Any 429 or 5xx element:
  ``retry`` of the whole request (LinkedIn deduplicates the accepted ones by eventId). Other
  refused elements: ``reject`` with ``rejected`` = {index: LinkedIn's message}.
- 429 and 5xx, timeouts, connection errors: ``retry`` (``Retry-After`` when given).
- 401: ``pause`` (token). 403: ``pause`` (permission). A version LinkedIn no longer serves
  (426 ``NONEXISTENT_VERSION``, or ``VERSION_MISSING``) pauses with its own reason (version),
  saying what fixes it: upgrading convctl (its built-in version moves with releases), or
  changing a pinned ``spec.linkedin.version``. Nothing is given up meanwhile.
- Any other 4xx: ``reject`` of the whole request with LinkedIn's message.

Messages are LinkedIn's own, cut to 300 characters, with e-mail addresses, 64-hex digests and
anything token-shaped (the request's token included) masked: no token or PII reaches a log.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Final

import httpx
import orjson

from reconciler.core.backoff import parse_retry_after
from reconciler.core.models import DEFAULT_LINKEDIN_VERSION, AccountSpec
from reconciler.core.networks import Outcome
from reconciler.core.networks.linkedin import setup
from reconciler.core.redaction import MASK, mask_tokens

DEFAULT_BASE_URL: Final = "https://api.linkedin.com"
PATH: Final = "/rest/conversionEvents"
MAX_MESSAGE: Final = 300
_VERSION_CODES: Final = frozenset({"NONEXISTENT_VERSION", "VERSION_MISSING"})
_PII: Final = re.compile(r"[^\s@\"']+@[^\s@\"']+|\b[0-9a-fA-F]{32,}\b")


def encoded_body(events: Sequence[bytes]) -> bytes:
    """``{"elements": [...]}`` from elements that are JSON objects already."""
    return b'{"elements":[' + b",".join(events) + b"]}"


def safe_message(text: str, token: str | None = None) -> str:
    """LinkedIn's message, one line, at most ``MAX_MESSAGE`` characters, PII and tokens masked."""
    if token and len(token) >= 8:  # a real token; a short test value would mask common words
        text = text.replace(token, MASK)
    text = mask_tokens(_PII.sub(MASK, " ".join(text.split())))
    return text if len(text) <= MAX_MESSAGE else text[:MAX_MESSAGE - 1] + "…"


def version_message(version: str, answer: str) -> str:
    """Why a target pauses for its ``Linkedin-Version`` and what fixes it (LinkedIn serves a
    version for a year): the version convctl is built for moves with releases; a pin is the
    account's to change."""
    fix = ("upgrade convctl" if version == DEFAULT_LINKEDIN_VERSION else
           "pin a served version in spec.linkedin.version, or remove the pin and upgrade "
           "convctl")
    return f"the LinkedIn API version {version} is no longer served ({answer}): {fix}"


class LinkedInDestination:
    """A ``Destination`` for LinkedIn; ``clock`` only serves ``Retry-After`` dates."""

    network = "linkedin"

    def __init__(self, base_url: str = DEFAULT_BASE_URL,
                 transport: httpx.BaseTransport | None = None, timeout: float = 30.0,
                 clock: Callable[[], datetime] | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self._clock = clock or (lambda: datetime.now(UTC))
        self._client = httpx.Client(transport=transport, timeout=httpx.Timeout(timeout),
                                    headers={"user-agent": "convctl-agent"})

    def send(self, target: str, account: AccountSpec, events: Sequence[bytes],
             token: str) -> Outcome:
        """One batch create of ``events`` (all for the conversion rule ``target``)."""
        version = setup(account).version
        headers = {"authorization": f"Bearer {token}", "linkedin-version": version,
                   "x-restli-protocol-version": "2.0.0", "x-restli-method": "BATCH_CREATE",
                   "content-type": "application/json"}
        try:
            response = self._client.post(self.base_url + PATH, content=encoded_body(events),
                                         headers=headers)
        except httpx.TimeoutException as exc:
            return Outcome("retry", f"timed out ({type(exc).__name__})")
        except httpx.HTTPError as exc:
            return Outcome("retry", f"connection failed ({type(exc).__name__})")
        return self._outcome(response, len(events), token, version)

    def close(self) -> None:
        self._client.close()

    def _outcome(self, response: httpx.Response, count: int, token: str,
                 version: str) -> Outcome:
        status = response.status_code
        body = _json(response.content)
        retry_after = parse_retry_after(response.headers.get("retry-after"), self._clock())
        if 200 <= status < 300:
            return _elements(body, count, status, retry_after, token)
        code, message = _error(body, response.content, token)
        if status == 429 or status >= 500:
            return Outcome("retry", message, status, code, retry_after)
        if status == 401:
            return Outcome("pause", message, status, code, pause_reason="token")
        if status == 426 or _symbol(body) in _VERSION_CODES:
            return Outcome("pause", version_message(version, message), status, code,
                           pause_reason="version")
        if status == 403:
            return Outcome("pause", message, status, code, pause_reason="permission")
        if 400 <= status < 500:
            return Outcome("reject", message, status, code)
        return Outcome("retry", message, status, code, retry_after)


def _json(raw: bytes) -> Any:
    try:
        return orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError:
        return None


def _symbol(body: Any) -> str | None:
    return str(body["code"]) if isinstance(body, dict) and "code" in body else None


def _error(body: Any, raw: bytes, token: str | None) -> tuple[str | None, str]:
    """(serviceErrorCode as text, ``SYMBOL: message``) of LinkedIn's error envelope."""
    if not isinstance(body, dict):
        text = raw[:200].decode("utf-8", "replace").strip()
        return None, safe_message(f"unexpected body: {text}" if text else "empty body", token)
    service = body.get("serviceErrorCode")
    code = str(service) if isinstance(service, int | str) and service != "" else None
    message = str(body.get("message") or "no message")
    symbol = _symbol(body)
    return code, safe_message(f"{symbol}: {message}" if symbol else message, token)


def _elements(body: Any, count: int, status: int, retry_after: float | None,
              token: str) -> Outcome:
    """A batch create's answer: one status per element, in the order sent."""
    if body is None:
        return Outcome("sent", status=status, received=count)
    items = body.get("elements") if isinstance(body, dict) else None
    if not isinstance(items, list) or len(items) != count:
        return Outcome("retry", f"LinkedIn answered {status} without one status per element",
                       status, retry_after=retry_after)
    rejected: dict[int, str] = {}
    retryable: list[str] = []
    first_code: str | None = None
    for index, item in enumerate(items):
        item_status = item.get("status") if isinstance(item, dict) else None
        if isinstance(item_status, int) and 200 <= item_status < 300:
            continue
        error = item.get("error") if isinstance(item, dict) else None
        code, message = _error(error, b"", token) if isinstance(error, dict) else (
            None, f"element status {item_status}")
        first_code = first_code or code
        if isinstance(item_status, int) and (item_status == 429 or item_status >= 500):
            retryable.append(message)
        else:
            rejected[index] = message
    if retryable:
        return Outcome("retry", f"{len(retryable)} of {count} elements to retry: "
                       f"{retryable[0]}", status, first_code, retry_after)
    if rejected:
        first = min(rejected)
        return Outcome("reject", f"{len(rejected)} of {count} elements refused: "
                       f"{rejected[first]}", status, first_code,
                       received=count - len(rejected), rejected=rejected)
    return Outcome("sent", status=status, received=count)
