"""Every failure leaves the API as ``{"error": {"code": ..., "message": ...}}``.

Stable codes and statuses (the HTTP backend maps them back to the same error types):

=====================  ======  ============================================================
code                   status  raised for
=====================  ======  ============================================================
malformed_json         400     a body that is not JSON (or NaN, lone surrogates, > int64)
invalid_header         400     an ``If-Match`` that is not a version number
unauthorized           401     missing or unknown bearer token (``WWW-Authenticate: Bearer``)
forbidden              403     the token lacks the scope the route needs
not_found              404     unknown account, event, lock, run, or route
method_not_allowed     405     the route exists, the method does not
conflict               409     name clash, an event moved to another account, create of an
                               existing account
quota_exceeded         409     the tier limit would be exceeded (R9; names account, limit, count)
version_mismatch       412     ``If-Match`` / expected version is stale
payload_too_large      413     the body is over the server's limit
validation_error       422     the body or a parameter does not match the schema
invalid_request        422     a well-formed request the state refuses (e.g. a lock TTL)
E1xx, E2xx, E3xx       422     a write the manifest rules refuse: the code ``convctl validate``
                               reports for the same content, ``rule`` the R-rule (E304, R6)
locked                 423     the state lock is held; ``lock`` names holder, pid, host, expiry
precondition_required  428     ``PATCH`` without ``If-Match``
state_unavailable      503     the state store failed
internal_error         500     a bug; details only in the server log
=====================  ======  ============================================================
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from reconciler.core.redaction import printable
from reconciler.errors import (
    ConflictError,
    ConvctlError,
    LockedError,
    NotFoundError,
    QuotaExceededError,
    RuleViolationError,
    StaleVersionError,
    StateError,
    UsageError,
)

log = logging.getLogger("convctl.server")

_HTTP_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
               405: "method_not_allowed", 413: "payload_too_large", 415: "unsupported_media_type"}


class ApiError(Exception):
    """Raise from a route to answer with a given status, code and message."""

    def __init__(self, status: int, code: str, message: str, *,
                 headers: dict[str, str] | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = headers
        self.extra = extra


def error_response(status: int, code: str, message: str, *,
                   headers: dict[str, str] | None = None, **extra: Any) -> JSONResponse:
    """The error envelope; the message is masked (tokens) and kept on one line."""
    body: dict[str, Any] = {"code": code, "message": printable(message)}
    body.update({k: v for k, v in extra.items() if v is not None})
    return JSONResponse({"error": body}, status_code=status, headers=headers)


def classify(exc: ConvctlError) -> tuple[int, str]:
    """The status and code for one of our errors (order matters: subclasses first)."""
    for kind, status, code in (
            (StaleVersionError, 412, "version_mismatch"),
            (QuotaExceededError, 409, "quota_exceeded"),
            (ConflictError, 409, "conflict"),
            (RuleViolationError, 422, "rule_violation"),
            (NotFoundError, 404, "not_found"),
            (LockedError, 423, "locked"),
            (StateError, 503, "state_unavailable"),
            (UsageError, 422, "invalid_request")):
        if isinstance(exc, kind):
            return status, code
    return 500, "internal_error"


def _readable(errors: list[Any]) -> str:
    parts = []
    for err in errors[:5]:
        loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
        parts.append(f"{loc}: {err.get('msg', 'invalid')}")
    more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
    return "; ".join(parts) + more


async def _on_api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.code, exc.message, headers=exc.headers, **exc.extra)


async def _on_convctl_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ConvctlError)
    status, code = classify(exc)
    if code == "quota_exceeded":
        request.app.state.metrics.quota_refusals.inc()
    if status >= 500:
        log.error("%s: %s", type(exc).__name__, exc)
    if isinstance(exc, RuleViolationError):
        return error_response(422, exc.code, exc.detail, rule=exc.rule)
    return error_response(status, code, str(exc) if status < 500 or code != "internal_error"
                          else "internal error; see the server log")


async def _on_validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    if any(e.get("type") == "json_invalid" for e in errors):
        return error_response(400, "malformed_json", "the request body is not valid JSON")
    details = [{"loc": [printable(p) if isinstance(p, str) else p for p in e.get("loc", ())],
                "msg": printable(str(e.get("msg", ""))), "type": e.get("type")}
               for e in errors[:20]]
    return error_response(422, "validation_error", f"invalid request: {_readable(errors)}",
                          details=details)


async def _on_http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, "error")
    message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
    if exc.status_code == 404 and message == "Not Found":
        message = f"no route {request.method} {request.url.path}"
    return error_response(exc.status_code, code, message,
                          headers=dict(exc.headers) if exc.headers else None)


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    return error_response(500, "internal_error", "internal error; see the server log")


def install(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _on_api_error)
    app.add_exception_handler(ConvctlError, _on_convctl_error)
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(StarletteHTTPException, _on_http)
    app.add_exception_handler(Exception, _on_unexpected)
