"""``GET /v1/agent/coverage`` (read scope): match-key coverage per conversion event.

The share of sent events that carried each user_data key over the last 24 hours and 7 days,
per event (``services.coverage.event_coverage``, what ``convctl agent status`` shows). This is
our own count of what we sent, not Meta's Event Match Quality. ``?account=NAME`` keeps one
account's events. 503 when the server has no agent store.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from reconciler.core.coverage import MATCH_KEYS, WINDOWS
from reconciler.errors import ConvctlError
from reconciler.server.auth import READ
from reconciler.server.deps import errors, provider
from reconciler.server.errors import ApiError
from reconciler.services.ports import AgentStore

router = APIRouter(prefix="/v1/agent", tags=["agent"])


class KeyCount(BaseModel):
    count: int = Field(ge=0)
    share: float = Field(ge=0, le=1)


class WindowBody(BaseModel):
    sent: int = Field(ge=0)
    keys: dict[str, KeyCount]


class EventCoverageBody(BaseModel):
    event: str = Field(description="ACCOUNT/NAME, or the id of an event no longer live.")
    conversionEventId: str
    live: bool
    windows: dict[str, WindowBody]


class CoverageBody(BaseModel):
    keys: list[str] = Field(description="The match keys counted, in display order.")
    windows: dict[str, int] = Field(description="Window name -> hours.")
    events: list[EventCoverageBody]


@router.get("/coverage", response_model=CoverageBody, dependencies=[READ],
            responses=errors(503))
def coverage(request: Request,
             account: Annotated[str | None, Query(description="Only this account's events.")]
             = None) -> dict[str, Any]:
    """Match-key coverage of every event that sent in the last 7 days, sorted by name."""
    from reconciler.services.coverage import event_coverage, live_events_or_none

    inbox: AgentStore | None = getattr(request.app.state, "inbox", None)
    if inbox is None:
        raise ApiError(503, "agent_not_configured", "this server has no agent store")
    events = live_events_or_none(provider(request).list_events)
    try:
        found = event_coverage(inbox, events)
    except ConvctlError as exc:
        raise ApiError(503, "agent_store_unavailable",
                       "the agent store could not be read; retry later",
                       headers={"Retry-After": "1"}) from exc
    if account is not None:
        found = [c for c in found if c.live and c.ref.partition("/")[0] == account]
    return {"keys": list(MATCH_KEYS), "windows": dict(WINDOWS),
            "events": [c.to_json() for c in found]}
