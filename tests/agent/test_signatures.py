"""hubspot-contract.md: signature v3 (window both ways, URI decoding, raw bytes), v1/v2 legacy."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reconciler.core.signatures import (
    decode_uri,
    sign_v1,
    sign_v2,
    sign_v3,
    verify_request,
    verify_v3,
)

SECRET = "client-secret-123"
URL = "https://hooks.example.com/v1/webhooks/hubspot"
BODY = b'[{"eventId":1,"subscriptionId":2,"portalId":4412345,"occurredAt":1764324000000}]'
NOW = 1_764_324_000_000


def reference_v3(method: str, uri: str, body: bytes, ts: int) -> str:
    """The contract's recipe, written out independently of the module under test."""
    msg = f"{method}{uri}".encode() + body + str(ts).encode()
    return base64.b64encode(hmac.new(SECRET.encode(), msg, hashlib.sha256).digest()).decode()


def headers(sig: str, ts: int = NOW) -> dict[str, str]:
    return {"X-HubSpot-Signature-v3": sig, "X-HubSpot-Request-Timestamp": str(ts)}


def check(sig: str, *, ts: int = NOW, now: int = NOW, uri: str = URL, body: bytes = BODY,
          method: str = "POST") -> str:
    return verify_request(SECRET, method, uri, body, headers(sig, ts), now).reason


def test_valid_v3() -> None:
    sig = reference_v3("POST", URL, BODY, NOW)
    assert sign_v3(SECRET, "POST", URL, BODY, NOW) == sig
    assert check(sig) == "ok"
    assert verify_request(SECRET, "POST", URL, BODY, headers(sig), NOW).ok


def test_stale_and_future_windows() -> None:
    five_min = 5 * 60 * 1000
    old = reference_v3("POST", URL, BODY, NOW - five_min - 1)
    assert check(old, ts=NOW - five_min - 1) == "stale"
    edge = reference_v3("POST", URL, BODY, NOW - five_min)
    assert check(edge, ts=NOW - five_min) == "ok"
    future = reference_v3("POST", URL, BODY, NOW + five_min + 1)
    assert check(future, ts=NOW + five_min + 1) == "future"
    near = reference_v3("POST", URL, BODY, NOW + five_min)
    assert check(near, ts=NOW + five_min) == "ok"


def test_tampered_body_and_wrong_secret() -> None:
    sig = reference_v3("POST", URL, BODY, NOW)
    assert check(sig, body=BODY.replace(b"4412345", b"4412346")) == "mismatch"
    other = sign_v3("another-secret", "POST", URL, BODY, NOW)
    assert check(other) == "mismatch"
    assert check(sig, method="PUT") == "mismatch"


def test_timestamp_is_part_of_the_signature() -> None:
    sig = reference_v3("POST", URL, BODY, NOW)
    assert check(sig, ts=NOW + 1) == "mismatch"


def test_reencoded_uri_verifies_against_decoded_characters() -> None:
    signed_uri = "https://hooks.example.com/v1/webhooks/hubspot?app=a:b&x=(1)*,2;@!$'"
    sig = reference_v3("POST", signed_uri, BODY, NOW)
    received = ("https://hooks.example.com/v1/webhooks/hubspot?app=a%3Ab&x=%281%29%2a%2C2%3b"
                "%40%21%24%27")
    assert check(sig, uri=received) == "ok"


def test_percent_20_stays_encoded() -> None:
    uri = "https://hooks.example.com/v1/webhooks/hubspot?name=a%20b"
    assert decode_uri(uri) == uri
    signed_encoded = reference_v3("POST", uri, BODY, NOW)
    assert check(signed_encoded, uri=uri) == "ok"
    signed_decoded = reference_v3("POST", uri.replace("%20", " "), BODY, NOW)
    assert check(signed_decoded, uri=uri) == "mismatch"


def test_only_listed_escapes_are_decoded() -> None:
    assert decode_uri("%3A%2f%3F%40%21%24%27%28%29%2A%2c%3B") == ":/?@!$'()*,;"
    assert decode_uri("%25%26%3D%2B%7E") == "%25%26%3D%2B%7E"


def test_raw_bytes_not_reserialized_json() -> None:
    body = b'[ {"eventId": 1,  "propertyValue": "caf\\u00e9"} ]'
    sig = reference_v3("POST", URL, body, NOW)
    assert check(sig, body=body) == "ok"
    reserialized = json.dumps(json.loads(body)).encode()
    assert reserialized != body
    assert check(sig, body=reserialized) == "mismatch"


def test_non_utf8_body_bytes_are_signed_as_is() -> None:
    body = b"\xff\xfe not utf-8"
    assert check(reference_v3("POST", URL, body, NOW), body=body) == "ok"


def test_missing_headers() -> None:
    assert verify_request(SECRET, "POST", URL, BODY, {}, NOW).reason == "missing"
    only_sig = {"X-HubSpot-Signature-v3": reference_v3("POST", URL, BODY, NOW)}
    assert verify_request(SECRET, "POST", URL, BODY, only_sig, NOW).reason == "missing"
    assert verify_v3(SECRET, "POST", URL, BODY, "x", "not-a-number", NOW).reason == "missing"


def test_headers_are_case_insensitive() -> None:
    sig = reference_v3("POST", URL, BODY, NOW)
    lower = {"x-hubspot-signature-v3": sig, "x-hubspot-request-timestamp": str(NOW)}
    assert verify_request(SECRET, "POST", URL, BODY, lower, NOW).ok


def test_legacy_versions_only_when_allowed() -> None:
    v1 = hashlib.sha256(SECRET.encode() + BODY).hexdigest()
    assert sign_v1(SECRET, BODY) == v1
    h1 = {"X-HubSpot-Signature": v1, "X-HubSpot-Signature-Version": "v1"}
    assert verify_request(SECRET, "POST", URL, BODY, h1, NOW).reason == "legacy_disabled"
    assert verify_request(SECRET, "POST", URL, BODY, h1, NOW, allow_legacy=True).ok

    v2 = hashlib.sha256((SECRET + "POST" + URL).encode() + BODY).hexdigest()
    assert sign_v2(SECRET, "POST", URL, BODY) == v2
    h2 = {"X-HubSpot-Signature": v2, "X-HubSpot-Signature-Version": "v2"}
    assert verify_request(SECRET, "POST", URL, BODY, h2, NOW).reason == "legacy_disabled"
    result = verify_request(SECRET, "POST", URL, BODY, h2, NOW, allow_legacy=True)
    assert (result.reason, result.version) == ("ok", "v2")
    tampered = verify_request(SECRET, "POST", URL, BODY + b" ", h2, NOW, allow_legacy=True)
    assert tampered.reason == "mismatch"


@pytest.mark.parametrize("sig", ["", "   "])
def test_empty_signature_is_missing(sig: str) -> None:
    assert check(sig) == "missing"


@given(st.binary(max_size=200), st.integers(min_value=-300_000, max_value=300_000))
def test_any_body_within_window_round_trips(body: bytes, skew: int) -> None:
    ts = NOW + skew
    sig = sign_v3(SECRET, "POST", URL, body, ts)
    assert verify_request(SECRET, "POST", URL, body, headers(sig, ts), NOW).ok
