"""What every strict fake shares: a quiet threading HTTP server on loopback that lives as long
as the fake (``with Fake(...) as fake:``, or ``start``/``stop``), and its ``base_url``.

A fake is a dataclass that mixes in ``Loopback``, calls ``Loopback.__post_init__`` and gives
its request handler class in ``handler()``.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self


class QuietServer(ThreadingHTTPServer):
    """A threading server that does not print tracebacks for clients that vanished (killed
    agents, timeouts): those are part of the tests."""

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        return


class Loopback:
    """Start, stop and address a fake's server; ``_mutex`` guards the fake's records."""

    _server: QuietServer | None
    requests: list[Any]  # each fake's log of the requests it answered

    def __post_init__(self) -> None:
        self._mutex = threading.Lock()
        self._server = None

    def _log(self, entry: Any) -> None:
        with self._mutex:
            self.requests.append(entry)

    def handler(self) -> type[BaseHTTPRequestHandler]:
        raise NotImplementedError

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        server = QuietServer(("127.0.0.1", 0), self.handler())
        self._server = server
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def base_url(self) -> str:
        assert self._server is not None, "start the fake first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"


class JsonHandler(BaseHTTPRequestHandler):
    """A fake's request handler: reads the body, answers JSON, and plays the two faults every
    fake shares (``drop``: the connection closes without an answer; ``slow``: the answer
    comes after ``delay`` seconds, the request still handled)."""

    protocol_version = "HTTP/1.1"
    content_type = "application/json"

    def body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("content-length") or 0))

    def transport_fault(self, fault: Any) -> tuple[bool, Any]:
        """``(dropped, the fault left to answer)``: a drop closes the connection (nothing is
        handled), a slow fault waits and leaves nothing to answer; others are the caller's."""
        if fault is not None and fault.kind == "drop":
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return True, None
        if fault is not None and fault.kind == "slow":
            time.sleep(fault.delay)
            return False, None
        return False, fault

    def send_json(self, status: int, answer: Any, headers: dict[str, str]) -> None:
        raw = json.dumps(answer).encode()
        try:
            self.send_response(status)
            self.send_header("content-type", self.content_type)
            self.send_header("content-length", str(len(raw)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(raw)
        except OSError:  # the client gave up (timeout): nothing to answer to
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        return
