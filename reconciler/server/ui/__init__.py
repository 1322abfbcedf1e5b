"""The web dashboard at ``/ui`` (docs/dashboard.md): what is live, is it sending, what failed.

``install(app, ...)`` adds the pages (``pages``), the forms (``actions``) and the package's
static files (``/ui/static/``: one stylesheet, one small script, no CDN) to the control-plane
app. Sessions and CSRF: ``sessions``; view data: ``views``; SVG charts: ``charts``.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import resources
from typing import Any

from fastapi import APIRouter, FastAPI, Response

from reconciler.server.ui import actions, pages
from reconciler.server.ui.render import UiState, secure
from reconciler.server.ui.sessions import Sessions
from reconciler.server.ui.snapshot import Snapshots
from reconciler.services.agent import agent_status

STATIC = {"app.css": "text/css; charset=utf-8", "app.js": "text/javascript; charset=utf-8",
          "favicon.svg": "image/svg+xml"}
_static = APIRouter(include_in_schema=False)


@_static.get("/ui/static/{name}")
def static(name: str) -> Response:
    if name not in STATIC:
        return secure(Response(status_code=404))
    data = resources.files("reconciler.server.ui").joinpath("static", name).read_bytes()
    response = Response(data, media_type=STATIC[name])
    secure(response).headers["Cache-Control"] = "public, max-age=300"
    return response


def install(app: FastAPI, *, session_key: bytes | None = None,
            background_status: Callable[[], dict[str, Any]] | None = None) -> None:
    """Mount the dashboard on ``app`` (its provider, tokens and agent store in ``app.state``).
    The agent's status is the running loop's (``background_status``), else the store's, read
    without naming the coverage's events: that would read every live event on each page."""
    store = app.state.inbox

    def status() -> dict[str, Any] | None:
        if background_status is not None:
            return background_status()
        return agent_status(store).as_json() if store is not None else None

    app.state.ui = UiState(provider=app.state.provider, store=store, status=status,
                           sessions=Sessions(session_key), tokens=app.state.tokens,
                           snapshots=Snapshots(app.state.provider))
    for router in (pages.router, actions.router, _static):
        app.include_router(router)
