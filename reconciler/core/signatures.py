"""HubSpot request signatures (hubspot-contract.md) as pure functions of bytes and time.

v3 (``X-HubSpot-Signature-v3`` + ``X-HubSpot-Request-Timestamp``, epoch ms):
base64(HMAC-SHA256(client secret, METHOD + URI + RAW_BODY + TIMESTAMP)), where URI is the full
public request URL with only the escapes in ``DECODED_ESCAPES`` decoded (``%20`` and every other
escape stay as they are). Requests more than 5 minutes old **or** more than 5 minutes in the
future are refused. The body is used as the raw bytes received: re-serialized JSON does not verify.

v1 (hex SHA-256 of secret + body) and v2 (hex SHA-256 of secret + METHOD + URI + body) are
accepted only with ``allow_legacy=True``. Every comparison is constant time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

V3_HEADER = "x-hubspot-signature-v3"
TIMESTAMP_HEADER = "x-hubspot-request-timestamp"
LEGACY_HEADER = "x-hubspot-signature"
VERSION_HEADER = "x-hubspot-signature-version"
MAX_SKEW_MS = 5 * 60 * 1000

DECODED_ESCAPES = {
    "%3A": ":", "%2F": "/", "%3F": "?", "%40": "@", "%21": "!", "%24": "$", "%27": "'",
    "%28": "(", "%29": ")", "%2A": "*", "%2C": ",", "%3B": ";",
}
_ESCAPE = re.compile(r"%[0-9A-Fa-f]{2}")

Reason = Literal["ok", "missing", "stale", "future", "mismatch", "legacy_disabled"]


@dataclass(frozen=True, slots=True)
class SignatureCheck:
    """The outcome of a check: ``reason`` is a stable code; ``version`` the scheme used."""

    reason: Reason
    version: Literal["v1", "v2", "v3"] | None = None

    @property
    def ok(self) -> bool:
        return self.reason == "ok"

    def __bool__(self) -> bool:
        return self.ok


def decode_uri(uri: str) -> str:
    """Decode only the escapes HubSpot decodes before signing (hex case-insensitive)."""
    return _ESCAPE.sub(lambda m: DECODED_ESCAPES.get(m.group(0).upper(), m.group(0)), uri)


def sign_v3(secret: str, method: str, uri: str, body: bytes, timestamp: str | int) -> str:
    """The v3 signature of a request (used by checks, the fake HubSpot and tests)."""
    message = (method.upper() + decode_uri(uri)).encode() + body + str(timestamp).encode()
    digest = hmac.new(secret.encode(), message, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def sign_v1(secret: str, body: bytes) -> str:
    return hashlib.sha256(secret.encode() + body).hexdigest()


def sign_v2(secret: str, method: str, uri: str, body: bytes) -> str:
    return hashlib.sha256(secret.encode() + (method.upper() + uri).encode() + body).hexdigest()


def _equal(expected: str, given: str) -> bool:
    return hmac.compare_digest(expected.encode(), given.strip().encode())


def verify_v3(secret: str, method: str, uri: str, body: bytes, signature: str | None,
              timestamp: str | None, now_ms: int) -> SignatureCheck:
    """Check a v3 signature; the timestamp window is checked before the HMAC."""
    if not (signature or "").strip() or not (timestamp or "").strip():
        return SignatureCheck("missing", "v3")
    assert signature is not None and timestamp is not None
    try:
        ts = int(timestamp.strip())
    except ValueError:
        return SignatureCheck("missing", "v3")
    if now_ms - ts > MAX_SKEW_MS:
        return SignatureCheck("stale", "v3")
    if ts - now_ms > MAX_SKEW_MS:
        return SignatureCheck("future", "v3")
    expected = sign_v3(secret, method, uri, body, timestamp.strip())
    return SignatureCheck("ok" if _equal(expected, signature) else "mismatch", "v3")


def verify_v1(secret: str, body: bytes, signature: str) -> SignatureCheck:
    ok = _equal(sign_v1(secret, body), signature.lower())
    return SignatureCheck("ok" if ok else "mismatch", "v1")


def verify_v2(secret: str, method: str, uri: str, body: bytes, signature: str) -> SignatureCheck:
    ok = _equal(sign_v2(secret, method, uri, body), signature.lower())
    return SignatureCheck("ok" if ok else "mismatch", "v2")


def verify_request(secret: str, method: str, uri: str, body: bytes, headers: Mapping[str, str],
                   now_ms: int, *, allow_legacy: bool = False) -> SignatureCheck:
    """Check a webhook request: v3 when its headers are present, else v1/v2 if allowed.

    ``uri`` is the full public URL the sender signed (scheme, host, path, query).
    """
    h = {k.lower(): v for k, v in headers.items()}
    if V3_HEADER in h:
        return verify_v3(secret, method, uri, body, h[V3_HEADER], h.get(TIMESTAMP_HEADER),
                         now_ms)
    legacy = h.get(LEGACY_HEADER, "").strip()
    if not legacy:
        return SignatureCheck("missing")
    version = h.get(VERSION_HEADER, "v1").strip().lower()
    if not allow_legacy:
        return SignatureCheck("legacy_disabled", "v2" if version == "v2" else "v1")
    if version == "v2":
        return verify_v2(secret, method, uri, body, legacy)
    return verify_v1(secret, body, legacy)
