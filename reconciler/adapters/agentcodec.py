"""How the agent store writes CRM events and contacts as JSON, and reads them back.

The inbox keeps each event in this stable form (not the raw request), so a stored row can be
replayed by any later version of the agent; ``kind`` tells the three shapes apart. Times are
ISO 8601 in UTC with their microseconds, so a round trip is exact (``source_id`` included).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import orjson

from reconciler.core.crm import Contact, FormSubmission, Ignored, StageChange

InboxEvent = StageChange | FormSubmission | Ignored
Kind = Literal["stage", "form", "ignored"]


def kind_of(event: InboxEvent) -> Kind:
    if isinstance(event, StageChange):
        return "stage"
    if isinstance(event, FormSubmission):
        return "form"
    return "ignored"


def dedup_key(event: InboxEvent) -> str:
    """The inbox key of an event from a file or the form endpoint: its source identity.

    Webhook events carry HubSpot's own key (``DedupKey.digest()``) instead.
    """
    if isinstance(event, StageChange):
        return event.source_id
    if isinstance(event, FormSubmission):
        return f"form:{event.portal_id}:{event.submission_id}"
    raise ValueError("an ignored webhook event has no source identity; use its webhook key")


def encode_event(event: InboxEvent) -> str:
    if isinstance(event, StageChange):
        data: dict[str, Any] = {"portalId": event.portal_id, "contactId": event.contact_id,
                                "stage": event.stage, "occurredAt": event.occurred_at,
                                "sourceId": event.source_id}
    elif isinstance(event, FormSubmission):
        data = {"portalId": event.portal_id, "formId": event.form_id,
                "submissionId": event.submission_id, "contactId": event.contact_id,
                "submittedAt": event.submitted_at, "pageUrl": event.page_url,
                "ipAddress": event.ip_address, "userAgent": event.user_agent}
    else:
        data = {"portalId": event.portal_id, "subscriptionType": event.subscription_type,
                "objectId": event.object_id, "occurredAt": event.occurred_at,
                "reason": event.reason}
    return orjson.dumps(data).decode()


def decode_event(kind: str, body: str) -> InboxEvent:
    d = orjson.loads(body)
    if kind == "stage":
        return StageChange(d["portalId"], d["contactId"], d["stage"],
                           datetime.fromisoformat(d["occurredAt"]), d["sourceId"])
    if kind == "form":
        return FormSubmission(d["portalId"], d["formId"], d["submissionId"], d["contactId"],
                              datetime.fromisoformat(d["submittedAt"]), d["pageUrl"],
                              d["ipAddress"], d["userAgent"])
    if kind == "ignored":
        return Ignored(d["portalId"], d["subscriptionType"], d["objectId"],
                       datetime.fromisoformat(d["occurredAt"]), d["reason"])
    raise ValueError(f"unknown inbox kind {kind!r}")


def encode_contact(contact: Contact) -> str:
    return orjson.dumps({"properties": contact.properties, "metaLeadId": contact.meta_lead_id,
                         "adInteraction": contact.ad_interaction, "fbc": contact.fbc,
                         "fbp": contact.fbp}).decode()


def decode_contact(portal_id: int, contact_id: str, body: str) -> Contact:
    d = orjson.loads(body)
    return Contact(portal_id, contact_id, dict(d["properties"]), d["metaLeadId"],
                   bool(d["adInteraction"]), d["fbc"], d["fbp"])
