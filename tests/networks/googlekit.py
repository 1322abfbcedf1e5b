"""Builders for the Google Ads tests: an account with a google block, live events, contacts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from reconciler.core.crm import Contact, FormSubmission, StageChange, stage_source_id
from reconciler.core.live import LiveEvent
from reconciler.core.models import AccountSpec, EventSpec

PORTAL = 4412345
FORM_ID = "0b8f6c9e-2c1a-4bd7-9e0b-6a1f1f9c2d10"
CUSTOMER = "1234567890"
ACTION = "987654321"
GCLID = "Cj0KCQiA4L67BhDUARIsADWrl7Gq1xZ"
CREATED = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def google_block(**overrides: Any) -> dict[str, Any]:
    block: dict[str, Any] = {"customerId": CUSTOMER, "accessToken": {"env": "GOOGLE_TOKEN"}}
    block.update(overrides)
    return block


def account_spec(google: dict[str, Any] | None = None, **overrides: Any) -> AccountSpec:
    data: dict[str, Any] = {
        "portalId": PORTAL, "tier": "professional", "defaultCountryCode": "1",
        "forms": [{"id": FORM_ID, "name": "Demo request"}],
        "google": google if google is not None else google_block()}
    data.update(overrides)
    return AccountSpec.model_validate(data)


def _live(spec: dict[str, Any], *, id: str, created_at: datetime) -> LiveEvent:
    full = {"account": "acme", "network": "google", "conversionAction": ACTION, **spec}
    return LiveEvent(id=id, account="acme", name=id, spec=EventSpec.model_validate(full),
                     created_at=created_at, updated_at=created_at)


def form_event(*, id: str = "ev-gform", properties: list[Any] | None = None,
               value: dict[str, Any] | None = None, created_at: datetime = CREATED) -> LiveEvent:
    trigger: dict[str, Any] = {"formId": FORM_ID,
                               "consent": {"property": "ads_consent", "value": "yes"}}
    if value is not None:
        trigger["value"] = value
    sharing = {"properties": properties if properties is not None
               else ["email", "phone", "firstname", "lastname", "zip", "country"]}
    return _live({"trigger": {"formSubmission": trigger}, "dataSharing": sharing}, id=id,
                 created_at=created_at)


def lifecycle_event(*, id: str = "ev-gfunnel", properties: list[Any] | None = None,
                    created_at: datetime = CREATED) -> LiveEvent:
    trigger = {"lifecycleStageChange": {"stages": ["lead", "customer"]}}
    sharing = {"properties": properties if properties is not None else ["email", "phone"]}
    return _live({"trigger": trigger, "dataSharing": sharing}, id=id, created_at=created_at)


def contact(properties: dict[str, Any] | None = None, **extra: Any) -> Contact:
    props: dict[str, Any] = {
        "email": " John.Doe+ads@GMail.com ", "phone": "(650) 555-1212", "firstname": " John ",
        "lastname": "O'Brien", "zip": "94035", "country": "United States",
        "ads_consent": "yes", "hs_google_click_id": GCLID}
    if properties is not None:
        props = properties
    props.update(extra)
    return Contact(portal_id=PORTAL, contact_id="501", properties=props)


def submission(at: datetime, sub: str = "sub-1") -> FormSubmission:
    return FormSubmission(portal_id=PORTAL, form_id=FORM_ID, submission_id=sub,
                          contact_id="501", submitted_at=at,
                          page_url="https://acme.example/demo", ip_address="203.0.113.7",
                          user_agent="Mozilla/5.0")


def stage_change(at: datetime, stage: str = "customer") -> StageChange:
    return StageChange(PORTAL, "501", stage, at, stage_source_id(PORTAL, "501", stage, at))


def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def recent(hours: float = 1) -> datetime:
    return now() - timedelta(hours=hours)
