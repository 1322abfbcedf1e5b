"""``create_app``: the control-plane ASGI app over one live-state provider.

Middleware, outermost first: metrics (every request, by route template), the body guard (413
over ``max_body_bytes``, 400 for malformed JSON), then FastAPI's routing with the error handlers
of ``errors``. Routers come from ``ROUTERS``; the agent's ingest endpoints are added by listing
their router there (or passing ``extra_routers``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter, FastAPI, Request, Response

from reconciler import __version__
from reconciler.core.provider import Provider
from reconciler.server import accounts, errors, events, locks
from reconciler.server.api_models import ErrorBody, Health
from reconciler.server.auth import TokenVerifier
from reconciler.server.limits import BodyLimitMiddleware
from reconciler.server.metrics import Metrics, MetricsMiddleware

MAX_BODY_BYTES = 1 << 20

# The API's routers, in order. Extend this list to add endpoints (e.g. the agent's ingest
# router from reconciler.server.ingest, which needs the `ingest` scope).
ROUTERS: list[APIRouter] = [accounts.router, events.router, locks.router]

_system = APIRouter(tags=["system"])


@_system.get("/healthz", response_model=Health, responses={503: {"model": ErrorBody}})
def healthz(request: Request) -> dict[str, Any]:
    """Liveness and state readability; no token needed."""
    request.app.state.provider.current_lock()
    return {"status": "ok"}


@_system.get("/metrics", response_class=Response,
             responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}})
def metrics(request: Request) -> Response:
    """Prometheus text format; no token needed (route templates and counts only)."""
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    data = generate_latest(request.app.state.metrics.registry)
    return Response(data, media_type=CONTENT_TYPE_LATEST)


def create_app(provider: Provider, token_store: TokenVerifier, *,
               max_body_bytes: int = MAX_BODY_BYTES,
               extra_routers: Sequence[APIRouter] = ()) -> FastAPI:
    """The control-plane app; ``provider`` and ``token_store`` must be thread-safe (sync
    routes run in a thread pool)."""
    app = FastAPI(title="convctl control plane", version=__version__,
                  description="The live state of convctl (product.md §4): accounts, forms, "
                  "conversion events, the state lock and the apply journal.")
    app.state.provider = provider
    app.state.tokens = token_store
    app.state.metrics = Metrics()
    errors.install(app)
    for router in [_system, *ROUTERS, *extra_routers]:
        app.include_router(router)
    app.add_middleware(BodyLimitMiddleware, max_bytes=max_body_bytes)
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics)
    return app
