"""Request-body guard (pure ASGI): size limit first, then well-formed JSON.

A body over ``max_bytes`` is refused with 413, checked on ``Content-Length`` before reading
and again on the streamed size (chunked uploads, lying headers). A JSON body (JSON or missing
content type) must parse with orjson, which refuses NaN/Infinity, lone surrogates and nesting
over 1024, and may hold no integer outside int64: 400 ``malformed_json`` otherwise, except on
the ``self_checked`` paths, whose endpoint authenticates the raw bytes first and then applies
``check_json`` itself (a HubSpot webhook: an unsigned caller gets 401 whatever it sends). The
body is buffered (it is at most ``max_bytes``) and replayed to the app.
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from reconciler.server.errors import error_response

_LONG_NUMBER = re.compile(rb"\d{19,}")
_INT64 = 2**63


class BodyTooLarge(Exception):
    pass


def _int64(text: str) -> int:
    value = int(text)
    if not -_INT64 <= value < _INT64:
        raise ValueError(f"integer {text[:30]} is outside the 64-bit range")
    return value


def check_json(body: bytes) -> str | None:
    """None when ``body`` is acceptable JSON, else why not."""
    try:
        orjson.loads(body)
        if _LONG_NUMBER.search(body):
            json.loads(body, parse_int=_int64)
    except (ValueError, RecursionError) as exc:
        return str(exc).split("\n")[0][:200]
    return None


def _is_json(scope: Scope) -> bool:
    for name, value in scope.get("headers", []):
        if name == b"content-type":
            return b"json" in value.lower()
    return True


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, max_bytes: int,
                 self_checked: frozenset[str] = frozenset()) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.self_checked = self_checked

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        if self._declared(scope) > self.max_bytes:
            await self._too_large(scope, receive, send)
            return
        try:
            body = await self._read(receive)
        except BodyTooLarge:
            await self._too_large(scope, receive, send)
            return
        if body and _is_json(scope) and scope.get("path") not in self.self_checked:
            problem = check_json(body)
            if problem is not None:
                response = error_response(400, "malformed_json",
                                          f"the request body is not valid JSON: {problem}")
                await response(scope, receive, send)
                return
        await self.app(scope, _replay(body, receive), send)

    def _declared(self, scope: Scope) -> int:
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    return int(value)
                except ValueError:
                    return 0
        return 0

    async def _read(self, receive: Receive) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                raise BodyTooLarge
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = error_response(413, "payload_too_large",
                                  f"request body over the limit of {self.max_bytes} bytes")
        await response(scope, receive, send)


def _replay(body: bytes, upstream: Receive) -> Receive:
    """Hand the buffered body over once, then wait on the real connection (disconnects)."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return await upstream()
        sent = True
        message: dict[str, Any] = {"type": "http.request", "body": body, "more_body": False}
        return message

    return receive
