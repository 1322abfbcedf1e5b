"""The access log and the request id: one line per request, nothing a client sent verbatim.

``AccessLogMiddleware`` gives every request an id (the client's ``X-Request-ID`` when it is a
plain short id that does not look like a credential, else a fresh one), echoes it in the
response's ``X-Request-ID``, holds it in ``REQUEST_ID`` while the request runs (so every log
line of the request carries it) and logs ``METHOD target status duration`` on the
``reconciler.access`` logger (a method outside the standard set is logged as ``other``,
like in the metrics). The target is the path with token-like text masked and every
query value masked except those of the API's own parameters (``?access_token=...`` is logged as
``?access_token=***``); headers and bodies are never logged.

``scrub`` is the masking every log line goes through (defence in depth, also for the agent's
lines): Meta and ``cvt_`` tokens, bearer credentials, a URL's password, ``token=...``-style
pairs, e-mail addresses and +E.164 phone numbers.
"""

from __future__ import annotations

import contextvars
import logging
import re
import secrets
import time
from urllib.parse import parse_qsl, quote, unquote

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from reconciler.render.redact import MASK, mask_tokens

log = logging.getLogger("reconciler.access")
REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id",
                                                                       default=None)
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# Query parameters of the API itself (GET /v1/events?account=NAME): logged, after scrubbing.
PLAIN_PARAMS = frozenset({"account"})
MAX_TARGET = 300
_CLIENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")
_SCRUB = re.compile(
    r"cvt_[A-Za-z0-9_-]{4,}"                       # control-plane tokens
    r"|(?<=://)[^/\s@:]*:[^/\s@]*(?=@)"              # user:password in a URL
    r"|(?i:bearer|basic)\s+[^\s\"',;]+"            # credentials after an auth scheme
    r"|(?i:[a-z_]*(?:token|secret|passw|api_?key|signature))=(?!\*\*\*)[^&\s\"']+"  # k=v
    r"|[^\s@\"'<>/?&=:;,]+@[^\s@\"'<>/?&=:;,]+\.[A-Za-z]{2,}"  # e-mail addresses
    r"|\+\d[\d\s().-]{6,18}\d")                    # +E.164 phone numbers


def scrub(text: str) -> str:
    """``text`` with every token-, credential-, e-mail- or phone-shaped part masked."""
    return _SCRUB.sub(MASK, mask_tokens(text))


def safe_target(path: str, query: str) -> str:
    """The request target for the log: scrubbed path, query values masked (bounded length)."""
    shown = scrub(unquote(path))
    if query:
        pairs = [f"{quote(scrub(key), safe='')}="
                 f"{quote(scrub(value), safe='') if key in PLAIN_PARAMS else '***'}"
                 for key, value in parse_qsl(query, keep_blank_values=True)]
        shown += "?" + "&".join(pairs) if pairs else "?***"
    return shown if len(shown) <= MAX_TARGET else shown[:MAX_TARGET] + "..."


def request_id(headers: list[tuple[bytes, bytes]]) -> str:
    """The client's X-Request-ID when it is a short plain id and not credential-shaped."""
    for name, value in headers:
        if name.lower() == b"x-request-id":
            text = value.decode("latin-1").strip()
            if _CLIENT_ID.fullmatch(text) and scrub(text) == text:
                return text
            break
    return secrets.token_hex(8)


class AccessLogMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = request_id(scope.get("headers", []))
        token = REQUEST_ID.set(rid)
        started, status = time.perf_counter(), 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                message["headers"] = [*message.get("headers", []),
                                      (b"x-request-id", rid.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            self._log(scope, status, time.perf_counter() - started)
            REQUEST_ID.reset(token)

    @staticmethod
    def _log(scope: Scope, status: int, seconds: float) -> None:
        client = scope.get("client")
        target = safe_target(scope.get("path", ""), scope.get("query_string", b"").decode(
            "latin-1"))
        method = scope.get("method", "")
        method = method if method in METHODS else "other"  # a client's own verb is not logged
        log.info("%s %s %d %.1fms", method, target, status, seconds * 1000, extra={
            "http": {"method": method, "target": target, "status": status,
                     "duration_ms": round(seconds * 1000, 3),
                     "client": client[0] if client else None}})
