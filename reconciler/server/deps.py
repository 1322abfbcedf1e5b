"""Helpers the route modules share: the provider, versions in headers, fast JSON responses.

Every event and account leaves with its tokens masked (``core.redaction``): a label or spec value
stored before the write rules refused them is never served back.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request, Response
from pydantic import TypeAdapter

from reconciler.core.live import LiveAccount, LiveEvent
from reconciler.core.provider import Provider
from reconciler.core.redaction import mask_tokens_bytes
from reconciler.server.api_models import ErrorBody
from reconciler.server.errors import ApiError

EVENTS = TypeAdapter(list[LiveEvent])
ACCOUNTS = TypeAdapter(list[LiveAccount])
JSON = "application/json"


def provider(request: Request) -> Provider:
    state: Provider = request.app.state.provider
    return state


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for the error statuses a route can answer."""
    common = (400, 401, 403, 413, 422, 503)
    return {status: {"model": ErrorBody} for status in sorted({*common, *statuses})}


def etag(version: int) -> str:
    return f'"{version}"'


def parse_if_match(value: str | None) -> int | None:
    """``If-Match: 3``, ``"3"`` or ``W/"3"`` -> 3; absent -> None."""
    if value is None:
        return None
    text = value.strip().removeprefix("W/").strip('"')
    if not (text.isascii() and text.isdigit()) or len(text) > 18:  # "²".isdigit() is True
        raise ApiError(400, "invalid_header",
                       f"If-Match must be the object's version number, e.g. If-Match: 3 "
                       f"(got {value[:40]!r})")
    return int(text)


def model_response(model: LiveEvent | LiveAccount, status: int = 200) -> Response:
    body = mask_tokens_bytes(model.model_dump_json(by_alias=True).encode())
    return Response(body, status_code=status, media_type=JSON,
                    headers={"ETag": etag(model.version)})


def list_response(adapter: TypeAdapter[Any], items: list[Any]) -> Response:
    return Response(mask_tokens_bytes(adapter.dump_json(items, by_alias=True)), media_type=JSON)
