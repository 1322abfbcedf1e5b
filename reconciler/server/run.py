"""Running the app under uvicorn: loopback-only unless TLS or ``--insecure``; graceful stop.

On SIGTERM or SIGINT uvicorn stops accepting connections and lets in-flight requests finish
(up to ``GRACEFUL_SECONDS``); then the app's lifespan shutdown stops the agent loop (after
its current cycle) before the process exits. The access log prints method, path and status
only: never headers, so a bearer token is never logged.
"""

from __future__ import annotations

import ipaddress
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
          tls_key: str | None = None, log_level: str = "info") -> None:
    """Run ``app`` until SIGTERM/SIGINT; in-flight requests finish first."""
    import uvicorn

    config = uvicorn.Config(app, host=host, port=port, ssl_certfile=tls_cert,
                            ssl_keyfile=tls_key, log_level=log_level, access_log=True,
                            timeout_graceful_shutdown=GRACEFUL_SECONDS, lifespan="on",
                            server_header=False, proxy_headers=False)
    uvicorn.Server(config).run()
