"""Builders for the webhook tests: HubSpot events, v3 signatures made by hand (HMAC over the
exact string the contract describes, not through the code under test), signed requests."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from typing import Any

import httpx
import orjson

SECRET = "hubspot-client-SECRET-5f1e"
PATH = "/v1/webhooks/hubspot"
ACME_PORTAL = 4412345


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def stage_event(contact: int, stage: str = "customer", *, event_id: int = 1,
                portal: int = ACME_PORTAL, at_ms: int | None = None) -> dict[str, Any]:
    return {"eventId": event_id, "subscriptionId": 7001, "portalId": portal, "appId": 42,
            "occurredAt": at_ms if at_ms is not None else now_ms(),
            "subscriptionType": "contact.propertyChange", "attemptNumber": 0,
            "objectId": contact, "propertyName": "lifecyclestage", "propertyValue": stage,
            "changeSource": "CRM_UI"}


def creation_event(contact: int, *, event_id: int = 2) -> dict[str, Any]:
    return {"eventId": event_id, "subscriptionId": 7002, "portalId": ACME_PORTAL, "appId": 42,
            "occurredAt": now_ms(), "subscriptionType": "contact.creation",
            "attemptNumber": 0, "objectId": contact, "changeSource": "CRM_UI"}


def hmac_v3(secret: str, source: str, body: bytes, timestamp: int) -> str:
    """base64(HMAC-SHA256(secret, source + body + timestamp)); ``source`` is METHOD + URI
    exactly as HubSpot builds it (escapes already decoded by the caller)."""
    message = source.encode() + body + str(timestamp).encode()
    return base64.b64encode(hmac.new(secret.encode(), message, hashlib.sha256).digest()).decode()


def headers(signature: str, timestamp: int) -> dict[str, str]:
    return {"Content-Type": "application/json", "X-HubSpot-Signature-v3": signature,
            "X-HubSpot-Request-Timestamp": str(timestamp)}


def post(client: httpx.Client, signed_url: str, body: bytes | list[dict[str, Any]], *,
         secret: str = SECRET, timestamp: int | None = None, target: str = PATH,
         sent_body: bytes | None = None) -> httpx.Response:
    """POST ``body`` to ``target`` signed as HubSpot would for ``signed_url`` (already in
    its decoded form); ``sent_body`` replaces the body after signing (tampering)."""
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    ts = timestamp if timestamp is not None else now_ms()
    signature = hmac_v3(secret, "POST" + signed_url, raw, ts)
    return client.post(target, content=sent_body if sent_body is not None else raw,
                       headers=headers(signature, ts))
