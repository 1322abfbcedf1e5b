"""HubSpot's own CRM inputs (hubspot-contract.md), parsed into ``core.crm``'s records (pure).

- Webhook arrays (``parse_webhook``): ``contact.propertyChange`` on ``lifecyclestage`` becomes a
  ``StageChange``; every other subscription type an ``Ignored`` record. Unknown fields of a
  webhook event are tolerated (HubSpot adds fields; refusing them would make it retry).
- The form-ingest body modelled on HubSpot Forms API v3 (``parse_form_ingest``).
- A contact from its CRM properties, as the HubSpot contact source reads them
  (``contact_from_properties``).

Errors raise ``CrmParseError`` naming the field and the problem, never echoing a value (PII).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Annotated, Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from reconciler.core.crm import (
    Contact,
    CrmParseError,
    DedupKey,
    FormIngest,
    Ignored,
    NonEmptyId,
    PortalId,
    StageChange,
    StrictShape,
    WebhookRecord,
    describe_error,
    from_epoch_ms,
    load_json,
    new_submission,
    stage_source_id,
)

MAX_WEBHOOK_EVENTS = 100
LIFECYCLE_PROPERTY = "lifecyclestage"
STAGE_CHANGE_TYPE = "contact.propertyChange"


class _Loose(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


_EpochMs = Annotated[int, Field(ge=0, le=253_402_300_799_999)]  # up to the year 9999


class _WebhookEvent(_Loose):
    eventId: int
    subscriptionId: int
    portalId: PortalId
    occurredAt: _EpochMs
    subscriptionType: NonEmptyId
    objectId: int
    propertyName: str | None = None
    propertyValue: str | None = None


_WEBHOOK = TypeAdapter(list[_WebhookEvent])


class _Field(StrictShape):
    name: NonEmptyId
    value: str
    objectTypeId: str | None = None


class _Context(_Loose):
    hutk: str | None = None
    ipAddress: str | None = None
    pageUri: str | None = None
    pageName: str | None = None


class _FormBody(StrictShape):
    formId: NonEmptyId
    portalId: PortalId
    submittedAt: _EpochMs
    fields: list[_Field] = Field(default_factory=list)
    context: _Context = Field(default_factory=_Context)
    userAgent: str | None = None
    contactId: str | None = None
    submissionId: str | None = None
    legalConsentOptions: Any = None


def parse_webhook(body: bytes | str | list[Any]) -> list[WebhookRecord]:
    """A HubSpot webhook request body -> one record per event, in the order received."""
    data = load_json(body) if isinstance(body, bytes | str) else body
    if not isinstance(data, list):
        raise CrmParseError("a webhook body must be a JSON array of events")
    if len(data) > MAX_WEBHOOK_EVENTS:
        raise CrmParseError(f"a webhook body holds at most {MAX_WEBHOOK_EVENTS} events")
    try:
        events = _WEBHOOK.validate_python(data)
    except ValidationError as exc:
        raise CrmParseError(f"invalid webhook event: {describe_error(exc)}") from None
    return [WebhookRecord(_dedup_key(e), _webhook_event(e)) for e in events]


def _dedup_key(e: _WebhookEvent) -> DedupKey:
    return DedupKey(e.portalId, e.subscriptionId, e.eventId, e.objectId, e.occurredAt,
                    e.propertyName, e.propertyValue)


def _webhook_event(e: _WebhookEvent) -> StageChange | Ignored:
    at = from_epoch_ms(e.occurredAt)
    contact_id = str(e.objectId)
    if e.subscriptionType != STAGE_CHANGE_TYPE:
        return Ignored(e.portalId, e.subscriptionType, contact_id, at, "unsupported_subscription")
    if e.propertyName != LIFECYCLE_PROPERTY:
        return Ignored(e.portalId, e.subscriptionType, contact_id, at, "other_property")
    stage = (e.propertyValue or "").strip()
    if not stage:
        return Ignored(e.portalId, e.subscriptionType, contact_id, at, "empty_stage")
    return StageChange(e.portalId, contact_id, stage, at,
                       stage_source_id(e.portalId, contact_id, stage, at))


def form_ingest_schema() -> dict[str, Any]:
    """The JSON Schema of one form-ingest body (for the API's documentation)."""
    return _FormBody.model_json_schema()


def parse_form_ingest(body: bytes | str | Mapping[str, Any]) -> FormIngest:
    """A form-ingest body (Forms API v3 shape) -> the submission and its contact fields.

    Without ``submissionId`` the id is derived from the content, so a re-posted body maps to the
    same submission (R16); without ``contactId`` the contact is ``submission:<id>``.
    """
    data = load_json(body) if isinstance(body, bytes | str) else body
    if not isinstance(data, Mapping):
        raise CrmParseError("a form submission must be a JSON object")
    try:
        p = _FormBody.model_validate(data)
    except ValidationError as exc:
        raise CrmParseError(f"invalid form submission: {describe_error(exc)}") from None
    fields = {f.name: f.value for f in p.fields}
    submission_id = p.submissionId or _derived_submission_id(p, fields)
    contact_id = p.contactId or f"submission:{submission_id}"
    submission = new_submission(
        p.portalId, p.formId, submission_id, contact_id, from_epoch_ms(p.submittedAt),
        p.context.pageUri, p.context.ipAddress, p.userAgent)
    contact = Contact(p.portalId, contact_id, fields,
                      fbc=fields.get("fbc") or None, fbp=fields.get("fbp") or None)
    return FormIngest(submission, contact)


def _derived_submission_id(p: _FormBody, fields: dict[str, str]) -> str:
    raw = orjson.dumps([p.portalId, p.formId, p.submittedAt, sorted(fields.items())])
    return "derived-" + hashlib.sha256(raw).hexdigest()[:32]



def contact_from_properties(portal_id: int, contact_id: str, properties: Mapping[str, str | None],
                            *, lead_id_property: str, ad_interaction_property: str) -> Contact:
    """A contact from CRM properties, reading the account's lead-id and ad-interaction
    properties (R5, R8) and the Meta click/browser ids when stored as ``fbc``/``fbp``."""
    props = {k: v for k, v in properties.items() if v is not None}
    flag = props.get(ad_interaction_property, "").strip().lower()
    return Contact(
        portal_id, contact_id, props,
        meta_lead_id=props.get(lead_id_property, "").strip() or None,
        ad_interaction=flag in ("true", "1", "yes", "y"),
        fbc=props.get("fbc") or None, fbp=props.get("fbp") or None)
