"""Request and response bodies of the ``/v1`` API that are not core models.

Events and accounts travel in their core form (``LiveEvent``, ``LiveAccount``): bookkeeping
fields in snake_case, the spec exactly as a manifest writes it (camelCase aliases).

Every request body is strict, as ``validate`` reads manifests: no coercion (``"60"`` and
``true`` are not numbers, ``1`` is not a string) and no unknown fields, down to the nested spec;
a body that breaks this is ``422 validation_error``. Rules beyond the shape are the backend's
(``core.write_rules``: 422 with validate's code).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidatorFunctionWrapHandler, WrapValidator

from reconciler.core.live import EventWrite
from reconciler.core.models import AccountSpec, EventSpec

INT32 = 2**31 - 1
MAX_TTL_SECONDS = 7 * 24 * 3600
M = TypeVar("M", bound=BaseModel)


def _strictly(model: type[M]) -> WrapValidator:
    """Validate a nested core model in strict mode (a model's own ``strict`` config does not
    reach the models it contains), exactly as ``validate`` reads a manifest's spec."""
    def check(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        return model.model_validate(value, strict=True) if isinstance(value, dict) \
            else handler(value)
    return WrapValidator(check)


StrictAccountSpec = Annotated[AccountSpec, _strictly(AccountSpec)]
StrictEventSpec = Annotated[EventSpec, _strictly(EventSpec)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class AccountPut(_Body):
    """``PUT /v1/accounts/{name}``: create (no ``If-Match``) or update (``If-Match: version``)."""

    spec: StrictAccountSpec = Field(description="The account's settings, as in its manifest.")
    labels: dict[str, str] = Field(default_factory=dict, description="Free-form labels.")


class EventCreate(_Body):
    """``POST /v1/accounts/{name}/events``: an ``EventWrite`` whose account is the path's."""

    name: str = Field(description="Event name, unique per account; the name rule is checked "
                      "with the manifest rules (422 E106).")
    spec: StrictEventSpec = Field(description="The event's settings, as in its manifest.")
    labels: dict[str, str] = Field(default_factory=dict)
    api: Literal["enhanced", "legacy"] = "enhanced"
    managed_by: str | None = Field(default="convctl", max_length=100,
                                   description="Managed marker.")
    last_applied_hash: str | None = Field(default=None, max_length=128)

    def to_write(self, account: str) -> EventWrite:
        fields = {name: getattr(self, name) for name in type(self).model_fields}
        return EventWrite(**{**fields, "account": account})


class EventUpdate(EventCreate):
    """``PATCH /v1/events/{id}``: the whole ``EventWrite``; ``account`` cannot change."""

    account: str = Field(description="The event's account (must be the live one).")


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
    code: str = Field(description="Stable machine-readable code, e.g. quota_exceeded; for a "
                      "write the manifest rules refuse, validate's code, e.g. E304.")
    message: str = Field(description="One line for a human.")
    rule: str | None = Field(default=None, description="The domain rule a refused write "
                             "breaks, e.g. R6 (422 with an E code).")
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
