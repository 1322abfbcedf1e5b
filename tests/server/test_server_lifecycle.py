"""``convctl serve`` as a process: loopback-only without TLS, graceful SIGTERM, no token logged."""

from __future__ import annotations

import signal
import socket
import time
from pathlib import Path

import orjson
from serverkit import convctl, start_serve
from statekit import account_spec, form_event

from reconciler.adapters.state.sqlite import SqliteProvider


def test_non_loopback_without_tls_is_refused(tmp_path: Path) -> None:
    state = f"sqlite:///{tmp_path / 'state.db'}"
    refused = convctl("serve", "--host", "0.0.0.0", "--port", "9", "--state", state)
    assert refused.returncode == 1
    assert refused.stderr.strip() == (
        "error: refusing to serve on 0.0.0.0 without TLS: pass --tls-cert and --tls-key, or "
        "--insecure if a TLS proxy sits in front")
    half = tmp_path / "cert.pem"
    half.write_text("x")
    only_cert = convctl("serve", "--host", "0.0.0.0", "--tls-cert", str(half), "--state", state)
    assert only_cert.returncode == 1 and "both --tls-cert and --tls-key" in only_cert.stderr
    other = convctl("serve", "--state", "memory://")
    assert other.returncode == 1 and "needs a sqlite:///PATH state" in other.stderr


def _raw_request(port: int, token: str, body: bytes) -> tuple[socket.socket, bytes]:
    head = (f"POST /v1/accounts/acme/events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    sock = socket.create_connection(("127.0.0.1", port), timeout=20)
    return sock, head


def test_sigterm_lets_an_in_flight_request_finish(tmp_path: Path) -> None:
    server = start_serve(tmp_path)
    state = Path(server.state_url.removeprefix("sqlite:///"))
    with server.client("admin") as admin:
        spec = account_spec().model_dump(mode="json", by_alias=True)
        assert admin.put("/v1/accounts/acme", json={"spec": spec}).status_code == 201
    body = orjson.dumps(form_event("late").model_dump(mode="json", by_alias=True,
                                                      exclude={"account"}))
    port = int(server.url.rsplit(":", 1)[1])
    sock, head = _raw_request(port, server.tokens["write"], body)
    sock.sendall(head + body[:20])  # the request is in flight: half its body sent
    time.sleep(0.3)
    server.proc.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    assert server.proc.poll() is None  # still finishing the request
    sock.sendall(body[20:])
    answer = b""
    while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
        chunk = sock.recv(65536)
        if not chunk:
            break
        answer += chunk
    sock.close()
    assert answer.startswith(b"HTTP/1.1 201"), answer[:300]
    assert server.proc.wait(20) == 0
    stored = SqliteProvider(state)
    assert [e.name for e in stored.list_events("acme")] == ["late"]
    stored.close()
    log = server.output()
    assert "Shutting down" in log
    assert not any(token in log for token in server.tokens.values())
    assert "authorization" not in log.lower()


def test_sigterm_and_ctrl_c_stop_cleanly_with_exit_0(tmp_path: Path) -> None:
    """Issue 12: SIGTERM exited -15 and Ctrl-C printed "Aborted." and exited 1."""
    for sig in (signal.SIGTERM, signal.SIGINT):
        server = start_serve(tmp_path / sig.name)
        server.proc.send_signal(sig)
        assert server.proc.wait(20) == 0, server.output()
        log = server.output()
        assert "Aborted" not in log and "Traceback" not in log
        assert "Application shutdown complete" in log
