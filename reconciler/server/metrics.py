"""Prometheus metrics, one registry per app (no module globals).

``convctl_http_requests_total{method,route,status}`` and
``convctl_http_request_duration_seconds{method,route}`` label by the route *template*
(``/v1/events/{event_id}``), never the concrete path, so ids do not explode the series: every
label set is bounded (a method outside ``METHODS`` is ``other``, a path no route matches is
``unmatched``, a status outside 100-599 is ``other``), whatever a client sends (issue 10);
``convctl_quota_refusals_total`` counts writes refused by the tier limit (R9);
``convctl_ingest_events_total{source,result}`` the events the ingest endpoints accepted or
dropped as duplicates and ``convctl_webhook_signature_failures_total{reason}`` the webhook
requests refused for their signature. The agent's own counts come from ``agent_metrics``.
The standard ``process_*`` and ``python_*`` collectors are registered; ``_created`` series are
not exported.
"""

from __future__ import annotations

import time

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
)
from prometheus_client.gc_collector import GCCollector
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from reconciler.server.access import METHODS


class Metrics:
    def __init__(self) -> None:
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self.registry = CollectorRegistry(auto_describe=True)
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        self.requests = Counter("convctl_http_requests_total", "HTTP requests by route, status",
                                ["method", "route", "status"], registry=self.registry)
        self.latency = Histogram("convctl_http_request_duration_seconds",
                                 "HTTP request latency by route", ["method", "route"],
                                 registry=self.registry,
                                 buckets=(.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1,
                                          2.5, 5, 10))
        self.quota_refusals = Counter("convctl_quota_refusals_total",
                                      "Writes refused because of the tier limit (R9)",
                                      registry=self.registry)
        self.ingested = Counter("convctl_ingest_events_total",
                                "Events received by the ingest endpoints, by source and result "
                                "(accepted: stored in the inbox; duplicate: already there)",
                                ["source", "result"], registry=self.registry)
        self.signature_failures = Counter("convctl_webhook_signature_failures_total",
                                          "Webhook requests refused for their signature, by "
                                          "reason (missing, mismatch, stale, future, "
                                          "legacy_disabled)", ["reason"], registry=self.registry)


def _route(scope: Scope) -> str:
    """The template of the route that handled the request; FastAPI's own routes (e.g.
    ``/openapi.json``) are plain Starlette routes that do not set ``scope["route"]``."""
    path = getattr(scope.get("route"), "path", None)
    if isinstance(path, str):
        return path
    app = scope.get("app")
    for route in getattr(getattr(app, "router", None), "routes", ()):
        template = getattr(route, "path", None)
        if isinstance(template, str) and route.matches(scope)[0] is not Match.NONE:
            return template
    return "unmatched"


def labels(scope: Scope, status: int) -> tuple[str, str, str]:
    """``(method, route, status)``, each from a bounded set."""
    method = scope["method"] if scope["method"] in METHODS else "other"
    return method, _route(scope), str(status) if 100 <= status <= 599 else "other"


class MetricsMiddleware:
    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            method, route, code = labels(scope, status)
            self.metrics.requests.labels(method, route, code).inc()
            self.metrics.latency.labels(method, route).observe(time.perf_counter() - started)
