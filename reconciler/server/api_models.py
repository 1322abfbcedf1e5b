"""Request and response bodies of the ``/v1`` API that are not core models.

Events and accounts travel in their core form (``LiveEvent``, ``LiveAccount``, ``EventWrite``):
bookkeeping fields in snake_case, the spec exactly as a manifest writes it (camelCase aliases).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from reconciler.core.live import EventWrite
from reconciler.core.models import AccountSpec, EventSpec

INT32 = 2**31 - 1
MAX_TTL_SECONDS = 7 * 24 * 3600


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AccountPut(_Body):
    """``PUT /v1/accounts/{name}``: create (no ``If-Match``) or update (``If-Match: version``)."""

    spec: AccountSpec = Field(description="The account's settings, as in its manifest.")
    labels: dict[str, str] = Field(default_factory=dict, description="Free-form labels.")


class EventCreate(_Body):
    """``POST /v1/accounts/{name}/events``: an ``EventWrite`` whose account is the path's."""

    name: str = Field(min_length=1, max_length=200, description="Event name, unique per account.")
    spec: EventSpec = Field(description="The event's settings, as in its manifest.")
    labels: dict[str, str] = Field(default_factory=dict)
    api: Literal["enhanced", "legacy"] = "enhanced"
    managed_by: str | None = Field(default="convctl", description="Managed marker.")
    last_applied_hash: str | None = None

    def to_write(self, account: str) -> EventWrite:
        return EventWrite(account=account, **self.model_dump())


class LockRequest(_Body):
    """``POST /v1/locks``: who asks for the state lock, and for how long."""

    holder: str = Field(min_length=1, max_length=200, description="e.g. ci@main")
    operation: str = Field(min_length=1, max_length=100, description="e.g. apply")
    ttl_seconds: float = Field(gt=0, le=MAX_TTL_SECONDS, allow_inf_nan=False)
    pid: int | None = Field(default=None, ge=0, le=INT32, description="The holder's pid.")
    host: str | None = Field(default=None, min_length=1, max_length=255,
                             description="The holder's host name.")


class JournalStep(_Body):
    """``POST /v1/journal``: one apply step's outcome."""

    run_id: str = Field(min_length=1, max_length=100)
    index: int = Field(ge=0, le=INT32)
    description: str = Field(max_length=10_000)
    status: str = Field(min_length=1, max_length=50, description="done, failed or pending.")
    detail: str = Field(default="", max_length=10_000)


class JournalEntry(JournalStep):
    at: datetime


class Health(BaseModel):
    status: Literal["ok"]


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable machine-readable code, e.g. quota_exceeded.")
    message: str = Field(description="One line for a human.")
    lock: dict[str, Any] | None = Field(default=None, description="The lock holder (423).")
    details: list[dict[str, Any]] | None = Field(default=None,
                                                 description="Validation errors (422).")


class ErrorBody(BaseModel):
    """Every error response: ``{"error": {"code": ..., "message": ...}}``."""

    error: ErrorDetail


class IngestAccepted(BaseModel):
    """``202`` from the ingest endpoints: the events are committed to the inbox."""

    accepted: int = Field(description="Events stored in the inbox by this request.")
    duplicates: int = Field(description="Events already in the inbox: acknowledged, dropped.")


class LockRenewal(_Body):
    """``POST /v1/locks/{id}/renew``: keep the lock for ``ttl_seconds`` more from now."""

    ttl_seconds: float = Field(gt=0, le=MAX_TTL_SECONDS, allow_inf_nan=False)
