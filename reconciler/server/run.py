"""Running the app under uvicorn: loopback-only unless TLS or ``--insecure``; graceful stop.

On SIGTERM or SIGINT uvicorn stops accepting connections and lets in-flight requests finish
(up to ``GRACEFUL_SECONDS``); then the app's lifespan shutdown stops the agent loop (after
its current batch) and ``serve`` returns, so the process exits 0 (uvicorn would re-raise the
signal and die of it; a second Ctrl-C still forces the exit). ``/readyz`` answers 503 from the
first signal on. Uvicorn does not configure logging here: its lines go through the handler
``convctl`` set up (one format), and its access log is off: ``access`` logs requests instead,
with the query values and anything token-shaped masked.
"""

from __future__ import annotations

import contextlib
import ipaddress
from collections.abc import Iterator
from typing import Any

from reconciler.errors import UsageError

GRACEFUL_SECONDS = 30


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(host: str, tls_cert: str | None, tls_key: str | None, insecure: bool) -> None:
    """Refuse a non-loopback address without TLS settings or an explicit ``--insecure``."""
    if (tls_cert is None) != (tls_key is None):
        raise UsageError("give both --tls-cert and --tls-key, or neither")
    if is_loopback(host) or tls_cert or insecure:
        return
    raise UsageError(f"refusing to serve on {host} without TLS: pass --tls-cert and --tls-key, "
                     "or --insecure if a TLS proxy sits in front")


def serve(app: Any, host: str, port: int, *, tls_cert: str | None = None,
          tls_key: str | None = None, log_level: str = "info",
          forwarded_allow_ips: str | None = None) -> None:
    """Run ``app`` until SIGTERM/SIGINT; in-flight requests finish first, then return.

    ``forwarded_allow_ips`` (comma-separated addresses or ``*``) are the proxies whose
    X-Forwarded-For/-Proto are trusted; without it those headers are ignored."""
    import uvicorn

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: Any) -> None:
            app.state.readiness.shutting_down = True
            super().handle_exit(sig, frame)

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            with super().capture_signals():
                try:
                    yield
                finally:  # a graceful stop is a success: do not re-raise the signal
                    self._captured_signals.clear()

    config = uvicorn.Config(app, host=host, port=port, ssl_certfile=tls_cert,
                            ssl_keyfile=tls_key, log_config=None, log_level=log_level,
                            access_log=False, timeout_graceful_shutdown=GRACEFUL_SECONDS,
                            lifespan="on", server_header=False,
                            proxy_headers=forwarded_allow_ips is not None,
                            forwarded_allow_ips=forwarded_allow_ips)
    Server(config).run()
