"""The sync agent's ingest endpoints: cheap, durable, acknowledged only once committed.

``POST /v1/webhooks/hubspot`` takes a HubSpot webhook array (at most 100 events). Its only
authentication is the signature (hubspot-contract.md): v3 over the raw request bytes and the
public URL, the timestamp within 5 minutes either way; v1/v2 only with ``allow_legacy``. The
signed URL is ``WebhookSettings.public_url`` (``CONVCTL_PUBLIC_URL``) joined with the request's
path and query as received (see ``signed_uri``), else the URL the server sees.

``POST /v1/ingest/forms`` takes one form submission (HubSpot Forms API v3 shape, see
``core.crm_hubspot.parse_form_ingest``) or an array of 1-100 of them, with an ``ingest``-scope
token.
An array is all or nothing: one invalid item refuses the request (422 naming its index and
field, never a value) and nothing is stored.

Both answer ``202 {"accepted": n, "duplicates": d}`` only after the inbox transaction committed
(duplicates are acknowledged and dropped); matching and delivery happen later, in the agent
loop. Events for an unknown portal are stored and acknowledged too (HubSpot would otherwise
retry for 24 h): the agent counts them under the skip reason ``unknown_portal``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import orjson
from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from reconciler.adapters.agentrows import IngestResult
from reconciler.core.crm import CrmParseError, FormIngest
from reconciler.core.crm_hubspot import (
    MAX_WEBHOOK_EVENTS,
    form_ingest_schema,
    parse_form_ingest,
    parse_webhook,
)
from reconciler.core.signatures import verify_request
from reconciler.errors import ConvctlError, UsageError
from reconciler.server.api_models import IngestAccepted
from reconciler.server.auth import INGEST
from reconciler.server.deps import errors
from reconciler.server.errors import ApiError
from reconciler.server.limits import check_json
from reconciler.services.agent_ingest import ingest_forms, ingest_webhook
from reconciler.services.ports import AgentStore

log = logging.getLogger("convctl.server")
MAX_FORMS = 100
WEBHOOK_PATH = "/v1/webhooks/hubspot"


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True)
class WebhookSettings:
    """How webhook signatures are checked. ``client_secret`` None: webhooks answer 503."""

    client_secret: str | None = field(default=None, repr=False)
    public_url: str | None = None
    allow_legacy: bool = False
    now_ms: Callable[[], int] = _now_ms


def check_public_url(url: str) -> str:
    """``CONVCTL_PUBLIC_URL`` must be an absolute http(s) URL without a fragment."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.fragment:
        raise UsageError("the public URL must look like https://host[:port][/prefix][?query] "
                         f"(got {url[:80]!r})")
    return url.strip()


def signed_uri(request: Request, public_url: str | None) -> str:
    """The URL HubSpot signed, escapes untouched (``verify_request`` decodes the few the
    contract lists). Path and query are the raw bytes received. With ``public_url``: its
    scheme and host, its path as a prefix (unless it already ends with the request path: a
    full target URL), and its query if it has one, else the request's."""
    scope = request.scope
    path = (scope.get("raw_path") or scope["path"].encode()).decode("latin-1")
    query = bytes(scope.get("query_string", b"")).decode("latin-1")
    if public_url is None:
        host = request.headers.get("host") or _server_host(scope)
        return f"{scope['scheme']}://{host}{path}" + (f"?{query}" if query else "")
    parts = urlsplit(public_url)
    prefix = parts.path.rstrip("/")
    full_path = prefix if prefix and prefix.endswith(path) else prefix + path
    query = parts.query or query
    return f"{parts.scheme}://{parts.netloc}{full_path}" + (f"?{query}" if query else "")


def _server_host(scope: MutableMapping[str, Any]) -> str:
    server = scope.get("server") or ("localhost", None)
    return f"{server[0]}:{server[1]}" if server[1] else str(server[0])


def _inbox(request: Request) -> AgentStore:
    inbox: AgentStore | None = getattr(request.app.state, "inbox", None)
    if inbox is None:
        raise ApiError(503, "ingest_not_configured", "this server has no agent store to ingest "
                       "into")
    return inbox


async def _commit(call: Callable[[], IngestResult], request: Request,
                  source: str) -> IngestAccepted:
    """Run the inbox transaction off the event loop; a store failure is a 503 (retried)."""
    try:
        result = await run_in_threadpool(call)
    except ConvctlError as exc:
        log.warning("%s ingest failed: %s", source, type(exc).__name__)
        raise ApiError(503, "ingest_unavailable", "the inbox could not be written; retry later",
                       headers={"Retry-After": "5"}) from None
    counter = request.app.state.metrics.ingested
    counter.labels(source, "accepted").inc(result.stored)
    counter.labels(source, "duplicate").inc(result.duplicates)
    return IngestAccepted(accepted=result.stored, duplicates=result.duplicates)


# -- webhooks --------------------------------------------------------------------------------

_WEBHOOK_EVENT = {
    "type": "object",
    "required": ["eventId", "subscriptionId", "portalId", "occurredAt", "subscriptionType",
                 "objectId"],
    "properties": {
        "eventId": {"type": "integer"}, "subscriptionId": {"type": "integer"},
        "portalId": {"type": "integer", "minimum": 1},
        "occurredAt": {"type": "integer", "description": "epoch milliseconds"},
        "subscriptionType": {"type": "string", "example": "contact.propertyChange"},
        "attemptNumber": {"type": "integer"}, "objectId": {"type": "integer"},
        "propertyName": {"type": "string"}, "propertyValue": {"type": "string"},
        "changeSource": {"type": "string"}, "appId": {"type": "integer"},
    },
}
_WEBHOOK_DOC = {
    "requestBody": {"required": True, "content": {"application/json": {"schema": {
        "type": "array", "maxItems": MAX_WEBHOOK_EVENTS, "items": _WEBHOOK_EVENT}}}},
    "parameters": [{"name": name, "in": "header", "required": False,
                    "schema": {"type": "string"}} for name in
                   ("X-HubSpot-Signature-v3", "X-HubSpot-Request-Timestamp")],
}

router = APIRouter(tags=["ingest"])


def _check_signature(request: Request, settings: WebhookSettings, body: bytes) -> None:
    assert settings.client_secret is not None
    check = verify_request(settings.client_secret, request.method,
                           signed_uri(request, settings.public_url), body,
                           dict(request.headers), settings.now_ms(),
                           allow_legacy=settings.allow_legacy)
    if check.ok:
        return
    request.app.state.metrics.signature_failures.labels(check.reason).inc()
    log.warning("webhook refused: signature %s", check.reason)
    if check.reason in ("stale", "future"):
        raise ApiError(401, "stale_signature", "the request timestamp is more than 5 minutes "
                       "away from the server's clock")
    if check.reason == "legacy_disabled":
        raise ApiError(401, "invalid_signature", "v1/v2 signatures are not accepted by this "
                       "server; use a v3 subscription")
    raise ApiError(401, "invalid_signature", "missing or invalid HubSpot signature")


@router.post(WEBHOOK_PATH, status_code=202, response_model=IngestAccepted,
             responses=errors(503), openapi_extra=_WEBHOOK_DOC)
async def hubspot_webhook(request: Request) -> IngestAccepted:
    """HubSpot webhook events (up to 100), authenticated by their v3 signature (no token).

    202 once stored (duplicates acknowledged and dropped); 401 for a missing, invalid, stale
    or future signature; 400 for a body that is not an array of webhook events.
    """
    settings: WebhookSettings | None = getattr(request.app.state, "webhooks", None)
    if settings is None or not settings.client_secret:
        raise ApiError(503, "webhooks_not_configured", "webhooks are off: start the server "
                       "with CONVCTL_HUBSPOT_CLIENT_SECRET set to the HubSpot app's secret")
    inbox = _inbox(request)
    body = await request.body()
    _check_signature(request, settings, body)
    problem = check_json(body)  # after the signature: the body guard leaves this path alone
    if problem is not None:
        raise ApiError(400, "malformed_json", f"the request body is not valid JSON: {problem}")
    try:
        records = parse_webhook(body)
    except CrmParseError as exc:
        raise ApiError(400, "invalid_webhook", str(exc)) from None
    return await _commit(lambda: ingest_webhook(inbox, records), request, "webhook")


# -- forms -----------------------------------------------------------------------------------

def _inline(schema: dict[str, Any]) -> dict[str, Any]:
    """Resolve ``#/$defs/X`` references (the form schema has no cycles)."""
    defs = schema.pop("$defs", {})

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            if ref.startswith("#/$defs/"):
                return walk(dict(defs[ref.removeprefix("#/$defs/")]))
            return {k: walk(v) for k, v in node.items()}
        return [walk(v) for v in node] if isinstance(node, list) else node

    result: dict[str, Any] = walk(schema)
    return result


_FORM = _inline(form_ingest_schema())
_FORMS_DOC = {"requestBody": {"required": True, "content": {"application/json": {"schema": {
    "oneOf": [_FORM, {"type": "array", "minItems": 1, "maxItems": MAX_FORMS, "items": _FORM}]}}}}}


def parse_forms(body: bytes) -> list[FormIngest]:
    """One submission or an array of them; errors name the item and field, never a value."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise ApiError(400, "malformed_json", "the request body is not valid JSON") from None
    items = data if isinstance(data, list) else [data]
    if not 1 <= len(items) <= MAX_FORMS:
        raise ApiError(422, "validation_error",
                       f"send one form submission or an array of 1 to {MAX_FORMS}")
    forms = []
    for index, item in enumerate(items):
        try:
            forms.append(parse_form_ingest(item))
        except CrmParseError as exc:
            where = f"item {index}: " if isinstance(data, list) else ""
            raise ApiError(422, "validation_error", f"{where}{exc}") from None
    return forms


@router.post("/v1/ingest/forms", status_code=202, response_model=IngestAccepted,
             responses=errors(503), openapi_extra=_FORMS_DOC, dependencies=[INGEST])
async def ingest_form_submissions(request: Request) -> IngestAccepted:
    """Form submissions (one object or an array of up to 100; token with the ``ingest``
    scope). 202 once stored; an array is stored all or nothing."""
    inbox = _inbox(request)
    forms = parse_forms(await request.body())
    return await _commit(lambda: ingest_forms(inbox, forms), request, "form")
