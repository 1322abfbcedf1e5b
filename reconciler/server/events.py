"""Conversion events: ``/v1/accounts/{name}/events`` (list, create), ``/v1/events`` (list all)
and ``/v1/events/{event_id}`` (get; ``PATCH`` = full replace with ``If-Match``; delete).

Listing is one query per account (never one request per event): ``convctl plan`` over HTTP
makes one request per account.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, Response

from reconciler.core.live import LiveEvent
from reconciler.server.accounts import find_account
from reconciler.server.api_models import EventCreate, EventUpdate
from reconciler.server.auth import READ, WRITE
from reconciler.server.deps import (
    EVENTS,
    errors,
    list_response,
    model_response,
    parse_if_match,
    provider,
)
from reconciler.server.errors import ApiError

router = APIRouter(prefix="/v1", tags=["events"])

IfMatch = Annotated[str | None, Header(description="The version the change is based on.")]


@router.get("/events", response_model=list[LiveEvent], dependencies=[READ], responses=errors())
def list_all_events(request: Request, account: Annotated[str | None, Query()] = None
                    ) -> Response:
    """Every event (or one account's), sorted by account and name."""
    return list_response(EVENTS, provider(request).list_events(account))


@router.get("/accounts/{name}/events", response_model=list[LiveEvent], dependencies=[READ],
            responses=errors(404))
def list_events(request: Request, name: str) -> Response:
    """The account's events, sorted by name; 404 when the account does not exist."""
    find_account(request, name)
    return list_response(EVENTS, provider(request).list_events(name))


@router.post("/accounts/{name}/events", response_model=LiveEvent, status_code=201,
             dependencies=[WRITE], responses=errors(404, 409))
def create_event(request: Request, name: str, body: EventCreate) -> Response:
    """Create an event; 409 ``quota_exceeded`` when it would exceed the tier limit (R9); 422 with
    validate's code and R-rule when its manifest would not validate (E304 ``other`` (R6), E202
    an ad account not the account's (R1), E106 a bad name, E104 a token in a label...)."""
    return model_response(provider(request).create_event(body.to_write(name)), 201)


@router.get("/events/{event_id}", response_model=LiveEvent, dependencies=[READ],
            responses=errors(404))
def get_event(request: Request, event_id: str) -> Response:
    return model_response(provider(request).get_event(event_id))


@router.patch("/events/{event_id}", response_model=LiveEvent, dependencies=[WRITE],
              responses=errors(404, 409, 412, 428))
def update_event(request: Request, event_id: str, body: EventUpdate,
                 if_match: IfMatch = None) -> Response:
    """Replace the event's name, spec, labels and marker (the account cannot change).

    ``If-Match: <version>`` is required (428 without it, 412 when stale).
    """
    version = parse_if_match(if_match)
    if version is None:
        raise ApiError(428, "precondition_required",
                       "PATCH needs If-Match: <version> (read the event first)")
    write = body.to_write(body.account)
    return model_response(provider(request).update_event(event_id, write, version))


@router.delete("/events/{event_id}", status_code=204, dependencies=[WRITE],
               responses=errors(404, 412))
def delete_event(request: Request, event_id: str, if_match: IfMatch = None) -> Response:
    """Delete the event; with ``If-Match`` only if it is still at that version."""
    provider(request).delete_event(event_id, parse_if_match(if_match))
    return Response(status_code=204)
