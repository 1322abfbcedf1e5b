"""What every dashboard response shares: the app's parts, templates, flash messages, headers.

Pages are server-rendered Jinja2 (autoescaped) from the package's ``templates/``; the page's
live region alone answers a poll. Every response carries a strict Content-Security-Policy
(scripts, styles and images from this server only; no inline script or style), ``no-store``
caching and ``frame-ancestors 'none'``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import jinja2
from fastapi import Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from markupsafe import Markup

from reconciler import __version__
from reconciler.core.provider import Provider
from reconciler.core.redaction import printable
from reconciler.server.auth import allows
from reconciler.server.ui.sessions import COOKIE, Session, Sessions, TokenDirectory
from reconciler.server.ui.snapshot import Snapshots
from reconciler.services.ports import AgentStore

POLL_HEADER = "x-convctl-poll"
FLASH_COOKIE = "convctl_flash"
LIVE_START, LIVE_END = "<!--live-start-->", "<!--live-end-->"
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
       "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
HEADERS = {"Content-Security-Policy": CSP, "Cache-Control": "no-store",
           "X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin",
           "X-Frame-Options": "DENY"}


@dataclass
class UiState:
    """The parts of the app the dashboard reads: state, agent store, agent status, sessions,
    the snapshot of the live events."""

    provider: Provider
    store: AgentStore | None
    status: Callable[[], dict[str, Any] | None]
    sessions: Sessions
    tokens: TokenDirectory
    snapshots: Snapshots

    def session(self, request: Request) -> Session | None:
        return self.sessions.check(request.cookies.get(COOKIE), self.tokens)


def ui_state(request: Request) -> UiState:
    state: UiState = request.app.state.ui
    return state


@functools.cache
def templates() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.PackageLoader("reconciler.server.ui", "templates"),
                             autoescape=True, trim_blocks=True, lstrip_blocks=True,
                             undefined=jinja2.StrictUndefined, finalize=_clean)
    env.filters["when"] = _when
    env.filters["clock"] = lambda value: _when(value)[11:19] if value else "-"
    env.globals["version"] = __version__
    return env


def _clean(value: Any) -> Any:
    """Every text a template prints: token-shaped parts masked, control and bidi characters
    escaped (a label or Meta's message could hold either). ``Markup`` (the CSRF token, the
    charts, JSON already redacted) is left as it is."""
    if isinstance(value, str) and not isinstance(value, Markup):
        return printable(value)
    return value


def _when(value: Any) -> str:
    """A timestamp as ``YYYY-MM-DD HH:MM:SS UTC`` (ISO text or datetime); ``-`` when empty."""
    if not value:
        return "-"
    text = value.isoformat() if hasattr(value, "isoformat") else str(value)
    return text[:19].replace("T", " ") + " UTC"


def secure(response: Response) -> Response:
    response.headers.update(HEADERS)
    return response


def render(request: Request, name: str, context: dict[str, Any], status: int = 200) -> Response:
    """The page; for a poll, only what is between its ``<!--live-start-->`` and
    ``<!--live-end-->`` markers (data cannot forge them: autoescape turns ``<`` into ``&lt;``)."""
    html = templates().get_template(name).render(context)
    if request.headers.get(POLL_HEADER) == "1" and LIVE_START in html:
        html = html.split(LIVE_START, 1)[1].split(LIVE_END, 1)[0]
    return secure(HTMLResponse(html, status_code=status))


def page(request: Request, session: Session, name: str, nav: str, data: dict[str, Any],
         status: int = 200, error: str | None = None) -> Response:
    """A page for a logged-in session: the data plus the session's name, write right, CSRF
    token and the flash message left by the last action."""
    ui = ui_state(request)
    flash = ui.sessions.read_flash(request.cookies.get(FLASH_COOKIE))
    context = {**data, "nav": nav, "user": session.token.name, "csrf": Markup(session.csrf),
               "can_write": allows(session.token, "write"), "flash": flash, "error": error,
               "path": request.url.path, "query_string": request.url.query}
    response = render(request, name, context, status)
    if flash is not None:
        response.delete_cookie(FLASH_COOKIE, path="/ui")
    return response


def login_redirect(request: Request) -> Response:
    if request.headers.get(POLL_HEADER) == "1":
        return secure(Response(status_code=401))
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return secure(RedirectResponse(f"/ui/login?next={quote(target, safe='')}",
                                   status_code=303))


def safe_next(target: str | None) -> str:
    """Only a dashboard path: never another host (an open redirect)."""
    if target and target.startswith("/ui") and "//" not in target and "\\" not in target:
        return target
    return "/ui"


def set_cookie(request: Request, response: Response, name: str, value: str,
               max_age: int | None = None) -> None:
    response.set_cookie(name, value, max_age=max_age, path="/ui", httponly=True,
                        samesite="strict", secure=request.url.scheme == "https")
