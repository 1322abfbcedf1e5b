"""Health probes, no token needed: ``/livez`` (the process answers), ``/readyz`` (the database
is reachable, its schema is the one this convctl needs, and the server is not shutting down:
503 with the failing checks otherwise) and ``/healthz`` (kept: the state is readable).

``create_app`` puts a ``Readiness`` on ``app.state.readiness``; ``convctl serve`` gives it the
schema check of its state and flips ``shutting_down`` when SIGTERM/SIGINT arrives.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from reconciler.errors import ConvctlError
from reconciler.server.api_models import ErrorBody, Health

router = APIRouter(tags=["system"])


class Ready(BaseModel):
    status: Literal["ok", "unavailable"]
    checks: dict[str, str]


@dataclass
class Readiness:
    schema_problem: Callable[[], str | None] | None = None
    shutting_down: bool = False


@router.get("/healthz", response_model=Health, responses={503: {"model": ErrorBody}})
def healthz(request: Request) -> dict[str, Any]:
    """Liveness and state readability; no token needed."""
    request.app.state.provider.current_lock()
    return {"status": "ok"}


@router.get("/livez", response_model=Health)
async def livez() -> dict[str, Any]:
    """The process answers (no database access); no token needed."""
    return {"status": "ok"}


@router.get("/readyz", response_model=Ready, responses={503: {"model": Ready}})
def readyz(request: Request) -> JSONResponse:
    """Ready for traffic: database reachable, schema current, not shutting down."""
    readiness: Readiness = request.app.state.readiness
    checks = {"database": _database(request), "schema": "ok", "shutdown": "ok"}
    if readiness.schema_problem is not None and checks["database"] == "ok":
        checks["schema"] = readiness.schema_problem() or "ok"
    if readiness.shutting_down:
        checks["shutdown"] = "shutting down"
    ok = all(value == "ok" for value in checks.values())
    return JSONResponse({"status": "ok" if ok else "unavailable", "checks": checks},
                        status_code=200 if ok else 503)


def _database(request: Request) -> str:
    try:
        request.app.state.provider.current_lock()
    except ConvctlError as exc:
        return f"unreachable: {exc}"
    return "ok"
