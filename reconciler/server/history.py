"""History and audit over HTTP (issue 14 item 4): ``GET /v1/runs``, ``GET /v1/audit`` (read
scope) and ``POST /v1/audit`` (write scope: a client's record; the server names the actor,
``token:NAME``, itself)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response

from reconciler.adapters.state.tokens import TokenInfo
from reconciler.core.provider import AuditRecord
from reconciler.server.auth import READ, require
from reconciler.server.deps import errors, provider
from reconciler.services.history import SCAN_LIMIT, history

router = APIRouter(prefix="/v1", tags=["history"])
Limit = Annotated[int, Query(ge=1, le=1000)]


@router.post("/audit", status_code=204, responses=errors())
def record_audit(request: Request, body: AuditRecord,
                 token: Annotated[TokenInfo, Depends(require("write"))]) -> Response:
    """Append one audit record, its actor the request's token."""
    provider(request).record_audit(body.model_copy(update={"actor": f"token:{token.name}"}))
    return Response(status_code=204)


@router.get("/audit", response_model=list[AuditRecord], dependencies=[READ],
            responses=errors())
def audit_log(request: Request, limit: Annotated[int, Query(ge=1, le=SCAN_LIMIT)] = 100,
              account: str | None = None) -> list[AuditRecord]:
    """The latest audit records as stored (an apply has two: ``started``, then its outcome),
    newest first; ``account``: those touching it or the whole state."""
    records = provider(request).audit_log(limit)
    return [r for r in records if account is None or r.accounts is None or account in r.accounts]


@router.get("/runs", dependencies=[READ], responses=errors())
def runs(request: Request, limit: Limit = 20, account: str | None = None) -> list[dict[str, Any]]:
    """The latest apply runs, newest first, each with its outcome and journaled steps."""
    found = history(provider(request), account=account, limit=limit, runs_only=True)
    return [entry.to_json() for entry in found]
