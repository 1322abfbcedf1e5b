"""What an operator reads: the access log never holds a token (issue 10 item 10), /metrics
label sets stay bounded whatever the client sends (item 11), request ids, probes."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from serverkit import Server, start_serve

from reconciler.server.access import safe_target, scrub

SECRET = "cvt_" + "Q" * 32
META = "EAA" + "b" * 40


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_serve(tmp_path_factory.mktemp("obs"), "--no-agent")
    yield server
    assert server.stop() == 0, server.output()


def _raw(server: Server, request: bytes) -> bytes:
    port = int(server.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        return sock.recv(65536)


def test_no_token_reaches_the_log_whatever_the_client_sends(srv: Server) -> None:
    real = srv.tokens["admin"]
    attempts = [
        f"/v1/accounts?access_token={SECRET}", f"/v1/accounts?access_token={real}",
        f"/v1/events?account=acme&token={META}", f"/v1/accounts/{SECRET}",
        f"/v1/events?account={SECRET}", f"/v1/events?{SECRET}",
        f"/nowhere/{META}?x=john@example.com",
    ]
    for target in attempts:
        assert httpx.get(srv.url + target, timeout=10).status_code in (401, 404, 405)
    with srv.client("admin") as admin:
        assert admin.get("/v1/accounts", params={"access_token": real}).status_code == 200
    httpx.get(f"{srv.url}/v1/accounts", headers={"Authorization": f"Bearer {SECRET}",
                                                 "X-Request-ID": SECRET}, timeout=10)
    httpx.get(f"{srv.url}/v1/accounts", headers={"Authorization": f"Basic {META}"}, timeout=10)
    _raw(srv, f"GET /v1/accounts?access_token={SECRET} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    _raw(srv, b"PLAINSECRETVERB /v1/accounts HTTP/1.1\r\nHost: x\r\n\r\n")
    log = _wait_for(srv, "other /v1/accounts 405")  # the last request's line
    for secret in (SECRET, real, META, real[4:], "john@example.com", "PLAINSECRETVERB"):
        assert secret not in log
    assert "GET /v1/accounts?access_token=*** 401" in log
    assert "GET /v1/events?account=acme&token=*** 401" in log


def _wait_for(server: Server, line: str) -> str:
    import time

    for _ in range(100):
        text = server.output()
        if line in text:
            return text
        time.sleep(0.05)
    raise AssertionError(f"{line!r} not logged:\n{server.output()[-2000:]}")


def test_request_id_is_honoured_or_generated_and_echoed(srv: Server) -> None:
    given_id = httpx.get(f"{srv.url}/livez", headers={"X-Request-ID": "deploy-42.a"})
    assert given_id.headers["x-request-id"] == "deploy-42.a"
    fresh = httpx.get(f"{srv.url}/livez").headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{16}", fresh)
    for hostile in (SECRET, "a" * 200, "x y", "bearer abc"):
        echoed = httpx.get(f"{srv.url}/livez", headers={"X-Request-ID": hostile})
        assert echoed.headers["x-request-id"] != hostile
    _wait_for(srv, "[deploy-42.a] GET /livez 200")


def _metrics(server: Server) -> str:
    return httpx.get(f"{server.url}/metrics", timeout=10).text


def test_made_up_methods_do_not_grow_metrics(srv: Server) -> None:
    def burst(start: int) -> None:
        for i in range(start, start + 150):
            _raw(srv, f"M{i}X /v1/accounts/{i} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            _raw(srv, f"GET /random/{i} HTTP/1.1\r\nHost: x\r\n\r\n".encode())

    burst(0)
    _metrics(srv)  # its own series exist from now on
    before = len(_metrics(srv))
    burst(1000)
    text = _metrics(srv)
    assert len(text) - before < 300, len(text) - before  # counts grow, series do not
    assert 'method="other"' in text and "M17X" not in text and "/random/" not in text
    assert 'route="unmatched"' in text


def test_known_routes_standard_collectors_and_no_created_series(srv: Server) -> None:
    assert httpx.get(f"{srv.url}/openapi.json").status_code == 200
    text = _metrics(srv)
    assert 'convctl_http_requests_total{method="GET",route="/openapi.json",status="200"}' in text
    assert "process_resident_memory_bytes" in text and "python_gc_objects_collected_total" in text
    assert "python_info{" in text
    assert "_created" not in text


def test_docs_page_is_gone_openapi_stays(srv: Server) -> None:
    assert httpx.get(f"{srv.url}/docs").status_code == 404
    assert httpx.get(f"{srv.url}/redoc").status_code == 404
    assert "/readyz" in httpx.get(f"{srv.url}/openapi.json").json()["paths"]


def test_livez_and_readyz(srv: Server) -> None:
    assert httpx.get(f"{srv.url}/livez").json() == {"status": "ok"}
    ready = httpx.get(f"{srv.url}/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ok", "checks": {"database": "ok", "schema": "ok",
                                                        "shutdown": "ok"}}
    assert httpx.get(f"{srv.url}/healthz").json() == {"status": "ok"}


def test_readyz_is_503_when_the_schema_is_not_current(tmp_path: Path) -> None:
    import sqlite3

    server = start_serve(tmp_path, "--no-agent")
    try:
        with sqlite3.connect(tmp_path / "state.db") as conn:  # a newer convctl migrated it
            conn.execute("PRAGMA user_version = 999")
        ready = httpx.get(f"{server.url}/readyz")
        assert ready.status_code == 503
        assert ready.json()["status"] == "unavailable"
        assert "schema version 999" in ready.json()["checks"]["schema"]
        assert httpx.get(f"{server.url}/livez").status_code == 200
    finally:
        server.stop()


@given(st.text(max_size=60), st.text(max_size=40))
def test_scrubbed_targets_never_hold_a_token(prefix: str, value: str) -> None:
    for token in (SECRET, META):
        path = f"/{prefix}{token}"
        assert token not in safe_target(path, f"k{prefix}={value}{token}")
        assert token not in safe_target("/", f"account={value}{token}&{token}")
        assert token not in scrub(f"{prefix}{token}{value}")


def test_readyz_is_503_once_shutting_down(tmp_path: Path) -> None:
    """In process (the flag is set by the signal handler, when no new connection is taken)."""
    from starlette.testclient import TestClient

    from reconciler.adapters.state.sqlite import SqliteProvider
    from reconciler.adapters.state.tokens import SqliteTokenStore
    from reconciler.server.app import create_app
    from reconciler.server.health import Readiness

    provider = SqliteProvider(tmp_path / "state.db")
    tokens = SqliteTokenStore(tmp_path / "state.db")
    readiness = Readiness()
    with TestClient(create_app(provider, tokens, readiness=readiness)) as client:
        assert client.get("/readyz").status_code == 200
        readiness.shutting_down = True
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"] == {"database": "ok", "schema": "ok",
                                          "shutdown": "shutting down"}
        assert client.get("/livez").status_code == 200
    tokens.close()
    provider.close()


def test_forwarded_headers_are_trusted_only_from_the_proxies_given(tmp_path: Path) -> None:
    import orjson

    def clients(*extra: str) -> list[str | None]:
        server = start_serve(tmp_path / str(len(extra)), "--no-agent", "--log-format", "json",
                             *extra)
        try:
            httpx.get(f"{server.url}/livez", headers={"X-Forwarded-For": "192.0.2.50"})
            _wait_for(server, '"target":"/livez"')
        finally:
            assert server.stop() == 0
        return [r["http"]["client"] for r in map(orjson.loads, server.output().splitlines())
                if r["logger"] == "reconciler.access" and r["http"]["target"] == "/livez"]

    assert clients() == ["127.0.0.1"]
    assert clients("--forwarded-allow-ips", "127.0.0.1") == ["192.0.2.50"]
