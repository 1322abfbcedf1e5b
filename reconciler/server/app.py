"""``create_app``: the control-plane ASGI app over one live-state provider.

Middleware, outermost first: the access log and request id (``access``), metrics (every
request, by route template), the body guard (413 over ``max_body_bytes``, 400 for malformed
JSON), then FastAPI's routing with the error handlers of ``errors``. Routers come from
``ROUTERS`` (the agent's ingest endpoints are in ``ingest``; the probes in ``health``). The
OpenAPI document is at ``/openapi.json``; there is no ``/docs`` page (Swagger UI would load
from a CDN, which fails offline). The web dashboard (``server.ui``) is at ``/ui``.

``inbox`` (the agent store the ingest endpoints write to; also read for the agent's metrics),
``webhooks`` (how webhook signatures are checked) and ``background`` (the agent loop, started
and stopped by the app's lifespan: after the server starts, after in-flight requests finished)
are optional: without them the ingest endpoints answer 503 and no agent runs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any, Protocol

from fastapi import APIRouter, FastAPI, Request, Response
from starlette.concurrency import run_in_threadpool

from reconciler import __version__
from reconciler.core.provider import Provider
from reconciler.server import (
    accounts,
    coverage,
    errors,
    events,
    health,
    history,
    ingest,
    locks,
    ui,
)
from reconciler.server.access import AccessLogMiddleware
from reconciler.server.agent_metrics import AgentCollector
from reconciler.server.auth import TokenVerifier
from reconciler.server.limits import BodyLimitMiddleware
from reconciler.server.metrics import Metrics, MetricsMiddleware
from reconciler.services.agent import agent_status
from reconciler.services.coverage import live_events_or_none
from reconciler.services.ports import AgentStore

MAX_BODY_BYTES = 1 << 20

# The API's routers, in order. Extend this list to add endpoints (e.g. the agent's ingest
# router from reconciler.server.ingest, which needs the `ingest` scope).
ROUTERS: list[APIRouter] = [accounts.router, events.router, locks.router, history.router,
                            ingest.router, coverage.router]


class Background(Protocol):
    """Work that runs beside the server (the agent loop)."""

    def start(self) -> None: ...
    def stop(self, timeout: float = ...) -> bool: ...
    def status(self) -> dict[str, Any]: ...

_system = APIRouter(tags=["system"])


@_system.get("/metrics", response_class=Response,
             responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}})
def metrics(request: Request) -> Response:
    """Prometheus text format; no token needed (route templates and counts only)."""
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    data = generate_latest(request.app.state.metrics.registry)
    return Response(data, media_type=CONTENT_TYPE_LATEST)


def _lifespan(background: Background | None) -> Any:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if background is not None:
            background.start()
        try:
            yield
        finally:
            if background is not None:
                await run_in_threadpool(background.stop)

    return lifespan


def _agent_source(inbox: AgentStore | None, background: Background | None,
                  provider: Provider) -> Any:
    if background is not None:
        return background.status
    if inbox is not None:
        return lambda: agent_status(
            inbox, events=live_events_or_none(provider.list_events)).as_json()
    return None


def create_app(provider: Provider, token_store: TokenVerifier, *,
               max_body_bytes: int = MAX_BODY_BYTES,
               extra_routers: Sequence[APIRouter] = (),
               inbox: AgentStore | None = None,
               webhooks: ingest.WebhookSettings | None = None,
               background: Background | None = None,
               readiness: health.Readiness | None = None,
               ui_session_key: bytes | None = None) -> FastAPI:
    """The control-plane app; ``provider``, ``token_store`` and ``inbox`` must be thread-safe
    (sync routes and store calls run in a thread pool). The dashboard (``/ui``) signs its
    sessions with ``ui_session_key`` (random per process without one)."""
    app = FastAPI(title="convctl control plane", version=__version__,
                  description="The live state of convctl (product.md §4): accounts, forms, "
                  "conversion events, the state lock and the apply journal; the sync agent's "
                  "ingest endpoints (product.md §5).", lifespan=_lifespan(background),
                  docs_url=None, redoc_url=None)
    app.state.provider = provider
    app.state.tokens = token_store
    app.state.metrics = Metrics()
    app.state.inbox = inbox
    app.state.webhooks = webhooks
    app.state.readiness = readiness or health.Readiness()
    source = _agent_source(inbox, background, provider)
    if source is not None:
        app.state.metrics.registry.register(AgentCollector(source))
    errors.install(app)
    for router in [health.router, _system, *ROUTERS, *extra_routers]:
        app.include_router(router)
    ui.install(app, session_key=ui_session_key,
               background_status=background.status if background is not None else None)
    app.add_middleware(BodyLimitMiddleware, max_bytes=max_body_bytes,
                       self_checked=frozenset({ingest.WEBHOOK_PATH}))
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics)
    app.add_middleware(AccessLogMiddleware)
    return app
