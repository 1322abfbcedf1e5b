"""The dashboard's read pages: Overview, Events (list + details panel), Dead letters, Runs.

Each page renders one template; a poll (``X-Convctl-Poll: 1``, sent by ``app.js`` at most every
5 s) gets only the page's live region (``#live``). A request without a live session is sent to
the login form (a poll gets 401, and the script reloads into the form).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse

from reconciler.server.ui import views
from reconciler.server.ui.render import UiState, login_redirect, page, ui_state
from reconciler.services.coverage import event_coverage

router = APIRouter(include_in_schema=False)


def _now() -> datetime:
    return datetime.now(UTC)


def _guarded(request: Request) -> tuple[UiState, Any] | Response:
    ui = ui_state(request)
    session = ui.session(request)
    if session is None:
        return login_redirect(request)
    return ui, session


@router.get("/")
def root() -> Response:
    return RedirectResponse("/ui", status_code=307)


@router.get("/ui")
def overview(request: Request) -> Response:
    guarded = _guarded(request)
    if isinstance(guarded, Response):
        return guarded
    ui, session = guarded
    now = _now()
    return page(request, session, "overview.html", "overview", {
        "accounts": views.accounts_overview(ui.snapshots.get()),
        "agent": views.agent_health(ui.status(), ui.store, now),
        "run": views.last_run(ui.provider), "lock": ui.provider.current_lock()})


@router.get("/ui/events")
def events(request: Request) -> Response:
    guarded = _guarded(request)
    if isinstance(guarded, Response):
        return guarded
    ui, session = guarded
    query = views.EventQuery.parse(dict(request.query_params))
    snap = ui.snapshots.get()
    activity = ui.store.event_activity(_now() - timedelta(hours=24)) if ui.store else {}
    detail, selected, error = None, request.query_params.get("selected", ""), None
    if selected:
        match = snap.events.get(selected)
        if match is None:
            error = f"no live event {selected[:40]} (deleted?)"
        else:
            account = next((a for a in snap.accounts if a.name == match.account), None)
            coverage = next((c for c in event_coverage(ui.store, [match])
                             if c.conversion_event_id == match.id), None) if ui.store else None
            detail = views.event_detail(match, account, activity.get(match.id), ui.store,
                                        coverage)
    return page(request, session, "events.html", "events", {
        "query": query, "result": views.event_page(snap.rows, activity, query), "detail": detail,
        "selected": selected, "states": views.STATES, "triggers": views.TRIGGERS},
        error=error)


@router.get("/ui/dead")
def dead_letters(request: Request) -> Response:
    guarded = _guarded(request)
    if isinstance(guarded, Response):
        return guarded
    ui, session = guarded
    return page(request, session, "dead.html", "dead",
                {"dead": views.dead_letter_view(ui.store, ui.snapshots.get().events)})


@router.get("/ui/runs")
def runs(request: Request) -> Response:
    guarded = _guarded(request)
    if isinstance(guarded, Response):
        return guarded
    ui, session = guarded
    return page(request, session, "runs.html", "runs", {
        "runs": views.recent_runs(ui.provider, 20), "lock": ui.provider.current_lock(),
        "history": views.has_history(ui.provider)})
