"""The state lock (``/v1/locks``) and the apply journal (``/v1/journal``).

A held lock answers 423 ``locked`` with the holder's details in ``error.lock``. The lock's pid
and host are the client's (the process running apply), sent in the request. A running apply
renews its lock (``POST /v1/locks/{id}/renew``); a renewal of a lost lock answers 404.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from reconciler.core.provider import LockInfo
from reconciler.errors import LockedError
from reconciler.server.api_models import JournalEntry, JournalStep, LockRenewal, LockRequest
from reconciler.server.auth import READ, WRITE
from reconciler.server.deps import errors, provider
from reconciler.server.errors import ApiError

router = APIRouter(prefix="/v1", tags=["locks"])


@router.get("/locks", response_model=list[LockInfo], dependencies=[READ], responses=errors())
def list_locks(request: Request) -> list[LockInfo]:
    """The lock holding the state, if any (an expired lock is not listed)."""
    lock = provider(request).current_lock()
    return [lock] if lock is not None else []


@router.post("/locks", response_model=LockInfo, status_code=201, dependencies=[WRITE],
             responses=errors(423))
def acquire_lock(request: Request, body: LockRequest) -> LockInfo:
    """Take the state lock (an expired one is taken over); 423 naming the holder if held."""
    state = provider(request)
    try:
        # Always name the client's host: a lock taken for a client is never the server's own
        # (the SQLite provider commits its own locks' writes in a group: sqlite.py).
        host = body.host or (request.client.host if request.client else "unknown")
        return state.acquire_lock(body.holder, body.operation, body.ttl_seconds,
                                  pid=body.pid, host=host)
    except LockedError as exc:
        current = state.current_lock()
        raise ApiError(423, "locked", str(exc),
                       lock=current.model_dump(mode="json") if current else None) from exc


@router.post("/locks/{lock_id}/renew", response_model=LockInfo, dependencies=[WRITE],
             responses=errors(404))
def renew_lock(request: Request, lock_id: str, body: LockRenewal) -> LockInfo:
    """Extend the lock to expire ``ttl_seconds`` from now (a running apply does this
    periodically); 404 when the lock was released or, after expiring, taken by another holder."""
    return provider(request).renew_lock(lock_id, body.ttl_seconds)


@router.delete("/locks/{lock_id}", status_code=204, dependencies=[WRITE], responses=errors(404))
def release_lock(request: Request, lock_id: str) -> Response:
    """Release the lock (also how `convctl unlock ID` breaks a dead apply's lock)."""
    provider(request).release_lock(lock_id)
    return Response(status_code=204)


@router.post("/journal", status_code=204, dependencies=[WRITE], responses=errors())
def record_step(request: Request, body: JournalStep) -> Response:
    """Append one apply step's outcome to the journal."""
    provider(request).record_step(body.run_id, body.index, body.description, body.status,
                                  body.detail)
    return Response(status_code=204)


@router.get("/journal/{run_id}", response_model=list[JournalEntry], dependencies=[READ],
            responses=errors())
def journal(request: Request, run_id: str) -> list[JournalEntry]:
    """The steps recorded for an apply run, in order (empty for an unknown run)."""
    return [JournalEntry.model_validate(entry) for entry in provider(request).journal(run_id)]
