"""Bad input gets the right 4xx with a JSON error and a clear message, and changes nothing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from serverkit import Server, convctl
from statekit import account_spec, form_event, lifecycle_event

ACCOUNT = "errs"


def _event_body(name: str, stages: int = 0) -> dict[str, Any]:
    write = lifecycle_event(name, stages, account=ACCOUNT) if stages else form_event(
        name, account=ACCOUNT)
    return write.model_dump(mode="json", by_alias=True, exclude={"account"})


@pytest.fixture(scope="module")
def admin(server: Server) -> Iterator[httpx.Client]:
    with server.client("admin") as client:
        spec = account_spec().model_dump(mode="json", by_alias=True)
        assert client.put(f"/v1/accounts/{ACCOUNT}", json={"spec": spec}).status_code == 201
        created = client.post(f"/v1/accounts/{ACCOUNT}/events", json=_event_body("base"))
        assert created.status_code == 201, created.text
        yield client


@pytest.fixture
def snapshot(admin: httpx.Client) -> Iterator[None]:
    """Asserts the state did not change during the test."""
    before = (admin.get("/v1/accounts").json(), admin.get("/v1/events").json(),
              admin.get("/v1/locks").json())
    yield
    after = (admin.get("/v1/accounts").json(), admin.get("/v1/events").json(),
             admin.get("/v1/locks").json())
    assert after == before


def _error(response: httpx.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert error["code"] == code
    assert isinstance(error["message"], str) and error["message"]
    return str(error["message"])


def _base(admin: httpx.Client) -> dict[str, Any]:
    [event] = [e for e in admin.get("/v1/events").json() if e["name"] == "base"]
    return dict(event)


@pytest.mark.usefixtures("snapshot")
def test_missing_and_wrong_token_is_401(server: Server) -> None:
    body = _event_body("nope")
    for headers in ({}, {"Authorization": "Bearer cvt_wrong"}, {"Authorization": "Basic eDp5"}):
        response = httpx.post(f"{server.url}/v1/accounts/{ACCOUNT}/events", json=body,
                              headers=headers)
        _error(response, 401, "unauthorized")
        assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.usefixtures("snapshot")
def test_wrong_scope_is_403(server: Server) -> None:
    with server.client("read") as reader:
        assert reader.get("/v1/accounts").status_code == 200
        message = _error(reader.post(f"/v1/accounts/{ACCOUNT}/events",
                                     json=_event_body("nope")), 403, "forbidden")
        assert "'write' scope" in message and "t-read" in message
    with server.client("ingest") as ingest:
        _error(ingest.get("/v1/accounts"), 403, "forbidden")


@pytest.mark.usefixtures("snapshot")
def test_stale_version_is_412_and_missing_if_match_428(admin: httpx.Client) -> None:
    base = _base(admin)
    write = {k: base[k] for k in ("account", "name", "spec", "labels", "api", "managed_by",
                                  "last_applied_hash")}
    write["labels"] = {"changed": "yes"}
    url = f"/v1/events/{base['id']}"
    message = _error(admin.patch(url, json=write, headers={"If-Match": "99"}), 412,
                     "version_mismatch")
    assert "expected version 99, live version is 1" in message
    _error(admin.patch(url, json=write), 428, "precondition_required")
    _error(admin.patch(url, json=write, headers={"If-Match": "abc"}), 400, "invalid_header")
    _error(admin.delete(url, headers={"If-Match": '"7"'}), 412, "version_mismatch")


@pytest.mark.usefixtures("snapshot")
def test_oversized_body_is_413(admin: httpx.Client) -> None:
    big = b'{"name": "' + b"x" * (1 << 20) + b'"}'
    url = f"/v1/accounts/{ACCOUNT}/events"
    _error(admin.post(url, content=big, headers={"Content-Type": "application/json"}), 413,
           "payload_too_large")

    def chunks() -> Iterator[bytes]:  # no Content-Length: the streamed size is checked
        for _ in range(20):
            yield b" " * 65536

    _error(admin.post(url, content=chunks(), headers={"Content-Type": "application/json"}),
           413, "payload_too_large")


@pytest.mark.usefixtures("snapshot")
@pytest.mark.parametrize("body", [b"{", b'{"name": NaN}', b"[" * 2000, b'"\\ud800"',
                                  b'{"spec": {"portalId": 123456789012345678901234}}'])
def test_malformed_json_is_400(admin: httpx.Client, body: bytes) -> None:
    _error(admin.post(f"/v1/accounts/{ACCOUNT}/events", content=body,
                      headers={"Content-Type": "application/json"}), 400, "malformed_json")


@pytest.mark.usefixtures("snapshot")
def test_schema_invalid_body_is_422_with_a_readable_message(admin: httpx.Client) -> None:
    body = _event_body("bad")
    del body["spec"]["trigger"]
    body["spec"]["colour"] = "red"
    response = admin.post(f"/v1/accounts/{ACCOUNT}/events", json=body)
    message = _error(response, 422, "validation_error")
    assert "spec.trigger: Field required" in message
    assert "spec.colour: Extra inputs are not permitted" in message
    assert response.json()["error"]["details"]
    _error(admin.put("/v1/accounts/Bad_Name", json={"spec": {}}), 422, "validation_error")
    _error(admin.post("/v1/locks", json={"holder": "x", "operation": "apply",
                                         "ttl_seconds": 0}), 422, "validation_error")


@pytest.mark.usefixtures("snapshot")
def test_unknown_account_event_lock_and_route_are_404(admin: httpx.Client) -> None:
    assert "account 'ghost'" in _error(admin.get("/v1/accounts/ghost/forms"), 404, "not_found")
    _error(admin.get("/v1/accounts/ghost/events"), 404, "not_found")
    ghost = form_event("x", account="ghost").model_dump(mode="json", by_alias=True,
                                                         exclude={"account"})
    _error(admin.post("/v1/accounts/ghost/events", json=ghost), 404, "not_found")
    for method in ("GET", "DELETE"):
        message = _error(admin.request(method, "/v1/events/ev_0000000000000000"), 404,
                         "not_found")
        assert "ev_0000000000000000" in message
    _error(admin.delete("/v1/locks/abc"), 404, "not_found")
    assert "no route GET /v2/nothing" in _error(admin.get("/v2/nothing"), 404, "not_found")
    _error(admin.delete("/v1/accounts"), 405, "method_not_allowed")


def test_quota_overflow_is_409_naming_account_limit_and_count(
        admin: httpx.Client, server: Server) -> None:
    url = f"/v1/accounts/{ACCOUNT}/events"
    assert admin.post(url, json=_event_body("forty-nine", 49)).status_code == 201
    before = admin.get("/v1/events").json()
    message = _error(admin.post(url, json=_event_body("two", 2)), 409, "quota_exceeded")
    assert message == (f"quota exceeded for account '{ACCOUNT}': professional allows 50 "
                       "lifecycle-stage events, this write would make 51 (R9)")
    assert admin.get("/v1/events").json() == before
    metrics = httpx.get(f"{server.url}/metrics").text
    assert "convctl_quota_refusals_total 1.0" in metrics
    assert 'route="/v1/accounts/{name}/events",status="409"' in metrics
    [big] = [e for e in before if e["name"] == "forty-nine"]
    assert admin.delete(f"/v1/events/{big['id']}", headers={"If-Match": "1"}).status_code == 204


def test_revoked_token_is_401_at_once(server: Server) -> None:
    made = convctl("token", "create", "--scope", "read", "--name", "short-lived",
                   "--state", server.state_url)
    token = made.stdout.strip()
    headers = {"Authorization": f"Bearer {token}"}
    assert httpx.get(f"{server.url}/v1/accounts", headers=headers).status_code == 200
    listed = convctl("token", "list", "--state", server.state_url)
    assert "short-lived" in listed.stdout and token not in listed.stdout
    assert convctl("token", "revoke", "short-lived", "--state", server.state_url).returncode == 0
    _error(httpx.get(f"{server.url}/v1/accounts", headers=headers), 401, "unauthorized")


def test_health_metrics_and_openapi_need_no_token(server: Server) -> None:
    assert httpx.get(f"{server.url}/healthz").json() == {"status": "ok"}
    assert "convctl_http_requests_total" in httpx.get(f"{server.url}/metrics").text
    paths = httpx.get(f"{server.url}/openapi.json").json()["paths"]
    assert {"/v1/accounts", "/v1/events/{event_id}", "/v1/locks", "/v1/journal"} <= set(paths)
