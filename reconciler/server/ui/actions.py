"""The dashboard's forms: log in and out, switch an event, re-queue dead letters, unlock.

Every POST is refused unless it comes from this origin (``Origin``, when sent) and, once logged
in, carries the session's CSRF token. Writes need a token with the ``write`` scope and a
confirmation: without ``confirmed=yes`` the answer is a page that asks (the script asks in a
dialog instead and sends ``confirmed=yes``). They call the same service code as the CLI:
``services.events.set_enabled`` (``convctl events enable/disable``: drift for the next plan),
``services.replay.replay`` (``convctl agent retry-dead``: letters past their network's window
stay dead) and ``Provider.release_lock``
(``convctl unlock``). A refused write shows its error on the page and changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse
from markupsafe import Markup
from starlette.concurrency import run_in_threadpool

from reconciler.adapters.agentquality import DeadSelection
from reconciler.errors import ConvctlError
from reconciler.render.redact import printable
from reconciler.server.auth import allows
from reconciler.server.errors import classify
from reconciler.server.ui.render import (
    FLASH_COOKIE,
    render,
    safe_next,
    secure,
    set_cookie,
    ui_state,
)
from reconciler.server.ui.sessions import COOKIE, SESSION_SECONDS, Session
from reconciler.services.events import find_event, set_enabled
from reconciler.services.history import audit
from reconciler.services.replay import replay

router = APIRouter(include_in_schema=False)
MAX_FORM = 8192


async def _form(request: Request) -> dict[str, str]:
    body = (await request.body())[:MAX_FORM].decode("utf-8", "replace")
    return {k: v[0] for k, v in parse_qs(body, keep_blank_values=True).items()}


def _same_origin(request: Request) -> bool:
    origin = request.headers.get("origin")
    if origin is None:  # not sent by every browser on same-origin posts; CSRF still checked
        return True
    return urlsplit(origin).netloc == request.headers.get("host", "")


def _refuse(request: Request, status: int, message: str) -> Response:
    return render(request, "refused.html", {"status": status, "message": message}, status)


@router.get("/ui/login")
def login_form(request: Request) -> Response:
    ui_state(request).snapshots.warm()  # read while the user pastes the token
    return render(request, "login.html", {"next": safe_next(request.query_params.get("next")),
                                          "login_error": None})


@router.post("/ui/login")
async def login(request: Request) -> Response:
    if not _same_origin(request):
        return _refuse(request, 403, "cross-site form post refused")
    form, ui = await _form(request), ui_state(request)
    target = safe_next(form.get("next"))
    token = await run_in_threadpool(ui.tokens.verify, form.get("token", "").strip())
    if token is None or not allows(token, "read"):
        why = "unknown or revoked token" if token is None else \
            f"token '{token.name}' lacks the 'read' scope"
        return render(request, "login.html", {"next": target, "login_error": why}, 401)
    response = secure(RedirectResponse(target, status_code=303))
    set_cookie(request, response, COOKIE, ui.sessions.issue(token), SESSION_SECONDS)
    return response


async def _checked(request: Request, write: bool = True
                   ) -> tuple[Session, dict[str, str]] | Response:
    """The session and form of a POST, or the refusal (no session, CSRF, scope, origin)."""
    ui = ui_state(request)
    if not _same_origin(request):
        return _refuse(request, 403, "cross-site form post refused")
    session = await run_in_threadpool(ui.session, request)
    if session is None:
        return _refuse(request, 401, "not logged in (or the session ended): log in again")
    form = await _form(request)
    if not ui.sessions.csrf_ok(session, form.get("csrf")):
        return _refuse(request, 403, "missing or wrong CSRF token: reload the page and retry")
    if write and not allows(session.token, "write"):
        return _refuse(request, 403, f"token '{session.token.name}' (scopes: "
                       f"{', '.join(session.token.scopes)}) lacks the 'write' scope")
    return session, form


@router.post("/ui/logout")
async def logout(request: Request) -> Response:
    checked = await _checked(request, write=False)
    if isinstance(checked, Response):
        return checked
    ui_state(request).sessions.end(checked[0])
    response = secure(RedirectResponse("/ui/login", status_code=303))
    response.delete_cookie(COOKIE, path="/ui")
    return response


def _confirm(request: Request, session: Session, form: dict[str, str], action: str,
             question: str, back: str) -> Response:
    fields = {k: v for k, v in form.items() if k not in ("csrf", "confirmed")}
    return render(request, "confirm.html", {
        "action": action, "question": question, "fields": fields, "back": back,
        "csrf": Markup(session.csrf), "user": session.token.name, "nav": "", "can_write": True,
        "flash": None, "error": None})


Form = dict[str, str]


async def _act(request: Request, action: str, question: Callable[[Form], str],
               work: Callable[[Form, str], str]) -> Response:
    """Check, confirm, run ``work(form, actor) -> message`` in a thread (``actor``: the
    session's token, for the audit log), redirect with a flash."""
    checked = await _checked(request)
    if isinstance(checked, Response):
        return checked
    session, form = checked
    back = safe_next(form.get("next"))
    try:
        if form.get("confirmed") != "yes":
            text = await run_in_threadpool(question, form)
            return _confirm(request, session, form, action, text, back)
        message = await run_in_threadpool(work, form, f"token:{session.token.name}")
    except ConvctlError as exc:
        status, _code = classify(exc)
        return _refuse(request, status, printable(str(exc)))
    response = secure(RedirectResponse(back, status_code=303))
    set_cookie(request, response, FLASH_COOKIE, ui_state(request).sessions.flash(message))
    return response


@router.post("/ui/events/{event_id}/toggle")
async def toggle(request: Request, event_id: str) -> Response:
    ui = ui_state(request)
    provider = ui.provider

    def wanted(form: dict[str, str]) -> bool:
        return form.get("enabled") == "1"

    def question(form: dict[str, str]) -> str:
        ev = find_event(provider, event_id)
        if wanted(form):
            return (f"Switch {ev.account}/{ev.name} on? Sending resumes; events while it was "
                    "off are not back-filled (R19). The next plan reports it as drift.")
        return (f"Switch {ev.account}/{ev.name} off? Sending stops at once (R19). The next "
                "plan reports it as drift, and apply puts the manifests' setting back.")

    def work(form: dict[str, str], actor: str) -> str:
        version = form.get("version", "")
        ev = set_enabled(provider, event_id, wanted(form),
                         int(version) if version.isdigit() and len(version) < 18 else None,
                         actor=actor)
        ui.snapshots.patch(ev)
        return printable(f"{ev.account}/{ev.name} switched {'on' if ev.spec.enabled else 'off'} "
                         "(R19): the next convctl plan reports this drift.")

    return await _act(request, f"/ui/events/{event_id}/toggle", question, work)


@router.post("/ui/dead/requeue")
async def requeue(request: Request) -> Response:
    ui = ui_state(request)
    store = ui.store

    def scope(form: dict[str, str]) -> str:
        reason, event = form.get("reason") or None, form.get("event") or None
        live = ui.snapshots.get().events.get(event or "")
        name = f"{live.account}/{live.name}" if live else event
        return (f"reason {reason}" if reason else "every reason") + \
            (f", event {name}" if event else "")

    def work(form: dict[str, str], actor: str) -> str:
        if store is None:
            return "no agent store: nothing to re-queue"
        event = form.get("event") or None
        done = replay(store, DeadSelection(form.get("reason") or None,
                                           (event,) if event else None), datetime.now(UTC))
        text = (f"Queued {done.queued} dead letter(s) again ({scope(form)}); the agent checks "
                "and sends them on its next pass.")
        if done.too_old:
            text += (f" Refused {done.too_old} older than their network's window (Meta 7 days, "
                     "LinkedIn and Google Ads 90): they stay dead (the network would reject them).")
        return printable(text)

    return await _act(request, "/ui/dead/requeue",
                      lambda form: f"Queue the dead letters again ({scope(form)})?", work)


@router.post("/ui/unlock")
async def unlock(request: Request) -> Response:
    provider = ui_state(request).provider

    def work(form: dict[str, str], actor: str) -> str:
        lock_id = form.get("lock_id", "")
        provider.release_lock(lock_id)
        audit(provider, "unlock", "ok", target=lock_id, actor=actor, detail="from the dashboard")
        return printable(f"Lock {lock_id} released.")

    return await _act(request, "/ui/unlock", lambda form: printable(
        f"Break lock {form.get('lock_id', '')}? Only do this when its holder is gone: an apply "
        "still running fails its next step."), work)
