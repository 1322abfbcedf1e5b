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
            status: Callable[[], dict[str, Any] | None] | None = None) -> None:
    """Mount the dashboard on ``app`` (its provider, tokens and agent store in ``app.state``).
    ``status`` gives the agent's status (the running loop's, or the store's)."""
    app.state.ui = UiState(provider=app.state.provider, store=app.state.inbox,
                           status=status or (lambda: None),
                           sessions=Sessions(session_key), tokens=app.state.tokens,
                           snapshots=Snapshots(app.state.provider))
    for router in (pages.router, actions.router, _static):
        app.include_router(router)
