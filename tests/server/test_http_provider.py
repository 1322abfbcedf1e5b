"""HttpProvider on its own (httpx.MockTransport): retries only for idempotent calls, clear
errors for every refusal, one request per listing, never the token in a message."""

from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from serverkit import convctl, free_port
from statekit import form_event

from reconciler.adapters.state.http import HttpProvider
from reconciler.errors import (
    ConflictError,
    LockedError,
    NotFoundError,
    QuotaExceededError,
    StaleVersionError,
    StateError,
    UsageError,
)

TOKEN = "cvt_secret-token-value"


def _provider(handler: httpx.MockTransport, sleeps: list[float] | None = None) -> HttpProvider:
    waits = sleeps if sleeps is not None else []
    return HttpProvider("http://cp.test", TOKEN, transport=handler, sleep=waits.append)


def _error(status: int, code: str, message: str) -> httpx.Response:
    return httpx.Response(status, json={"error": {"code": code, "message": message}})


def test_gets_are_retried_on_5xx_and_connection_errors_with_backoff() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.method)
        if len(seen) == 1:
            raise httpx.ConnectError("refused")
        if len(seen) == 2:
            return _error(503, "state_unavailable", "busy")
        assert request.headers["authorization"] == f"Bearer {TOKEN}"
        return httpx.Response(200, json=[])

    sleeps: list[float] = []
    assert _provider(httpx.MockTransport(handler), sleeps).list_accounts() == []
    assert seen == ["GET"] * 3 and sleeps == [0.2, 0.4]


def test_writes_are_never_retried() -> None:
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.method)
        return _error(503, "state_unavailable", "disk full")

    with pytest.raises(StateError, match=r"failed \(503\): disk full"):
        _provider(httpx.MockTransport(handler)).create_event(form_event("x"))
    assert calls == ["POST"]


def test_a_retried_delete_that_finds_nothing_succeeded_the_first_time() -> None:
    """The first DELETE was applied but its answer was lost: the retry's 404 is success, while a
    404 on the first attempt is still NotFoundError."""
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.method)
        if len(calls) == 1:
            raise httpx.ReadError("connection reset after the server deleted it")
        return _error(404, "not_found", "event ev_1 does not exist in the live state")

    assert _provider(httpx.MockTransport(handler)).delete_event("ev_1", 3) is None
    assert calls == ["DELETE", "DELETE"]
    gone = httpx.MockTransport(lambda request: _error(404, "not_found", "no such event"))
    with pytest.raises(NotFoundError):
        _provider(gone).delete_event("ev_1", 3)


@pytest.mark.parametrize(("status", "code", "kind", "text"), [
    (401, "unauthorized", StateError, "the control plane refused the token (401): unknown"),
    (403, "forbidden", StateError, "refused the request (403): lacks the 'write' scope"),
    (404, "not_found", NotFoundError, "lacks"),
    (409, "conflict", ConflictError, "lacks"),
    (409, "quota_exceeded", QuotaExceededError, "lacks"),
    (412, "version_mismatch", StaleVersionError, "lacks"),
    (423, "locked", LockedError, "lacks"),
    (422, "validation_error", UsageError, "rejected the request (422)"),
])
def test_refusals_map_to_the_error_tree(status: int, code: str, kind: type[Exception],
                                        text: str) -> None:
    message = "unknown or revoked token" if status == 401 else "lacks the 'write' scope"
    transport = httpx.MockTransport(lambda request: _error(status, code, message))
    with pytest.raises(kind) as caught:
        _provider(transport).delete_event("ev_1", 3)
    assert text in str(caught.value) and TOKEN not in str(caught.value)


def test_unreachable_server_is_one_clear_line() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    provider = HttpProvider(url, TOKEN, sleep=lambda s: None, timeout=2)
    with pytest.raises(StateError) as caught:
        provider.list_accounts()
    assert str(caught.value).startswith(f"cannot reach the control plane at {url}: ")
    assert TOKEN not in str(caught.value)


def test_listing_is_one_request_and_if_match_is_sent() -> None:
    requests: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return httpx.Response(200, json=[]) if request.method == "GET" else httpx.Response(204)

    provider = _provider(httpx.MockTransport(handler))
    assert provider.list_events("acme") == []
    provider.delete_event("ev/odd", 4)
    assert [str(r.url) for r in requests] == ["http://cp.test/v1/events?account=acme",
                                              "http://cp.test/v1/events/ev%2Fodd"]
    assert requests[1].headers["if-match"] == '"4"'


@pytest.fixture
def plain_web_server(tmp_path: Path) -> Iterator[str]:
    """Python's http.server: any web server that is not a control plane (HTML 404s)."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    (tmp_path / "v1").mkdir()
    (tmp_path / "v1" / "accounts").write_text("<html><body><h1>Welcome</h1></body></html>")
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_a_web_server_that_is_not_a_control_plane_is_one_line(plain_web_server: str) -> None:
    """Issue 12 item 3: the HTML error page was printed as the error, many lines long."""
    listed = convctl("events", "list", "--state", plain_web_server, env={"CONVCTL_TOKEN": TOKEN})
    assert listed.returncode == 1
    assert listed.stderr == (f"error: {plain_web_server}/v1/events answered 404 File not found: "
                             "it does not look like a convctl control plane; check the state "
                             "URL\n")
    assert TOKEN not in listed.stderr
    root = HttpProvider(plain_web_server, TOKEN)
    with pytest.raises(StateError, match=r"answered 200 OK: it does not look like a convctl"):
        root.list_accounts()  # a 200 HTML page is no answer either
    root.close()
