"""Builders for the LinkedIn tests: an account with a linkedin block, LinkedIn live events,
contacts and CRM events, and the fake LinkedIn server's clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from reconciler.core.crm import Contact, FormSubmission, StageChange, stage_source_id
from reconciler.core.live import LiveEvent
from reconciler.core.models import AccountSpec, EventSpec

PORTAL = 4412345
FORM_ID = "0b8f6c9e-2c1a-4bd7-9e0b-6a1f1f9c2d10"
RULE = "urn:lla:llaPartnerConversion:7654321"
AD_ACCOUNT = "urn:li:sponsoredAccount:508915158"
TOKEN = "li-test-token-SECRET"
CREATED = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
LATER = CREATED + timedelta(days=3)
NOW = LATER + timedelta(hours=1)


def account_spec(**linkedin: Any) -> AccountSpec:
    block: dict[str, Any] = {"adAccount": AD_ACCOUNT, "accessToken": {"env": "ACME_LI_TOKEN"},
                             **linkedin}
    return AccountSpec.model_validate({
        "portalId": PORTAL, "tier": "professional", "defaultCountryCode": "1",
        "forms": [{"id": FORM_ID, "name": "Demo request"}], "linkedin": block})


def _live(spec: dict[str, Any], *, id: str) -> LiveEvent:
    full = {"account": "acme", "network": "linkedin", "conversionRule": RULE, **spec}
    return LiveEvent(id=id, account="acme", name=id, spec=EventSpec.model_validate(full),
                     created_at=CREATED, updated_at=CREATED)


def form_event(*, id: str = "li-form", properties: list[Any] | None = None,
               value: dict[str, Any] | None = None, ip_address: bool = True) -> LiveEvent:
    trigger: dict[str, Any] = {"formId": FORM_ID,
                               "consent": {"property": "li_consent", "value": "yes"}}
    if value is not None:
        trigger["value"] = value
    sharing = {"properties": properties if properties is not None
               else ["email", "firstname", "lastname", "company", "jobtitle", "country"],
               "ipAddress": ip_address}
    return _live({"trigger": {"formSubmission": trigger}, "dataSharing": sharing}, id=id)


def lifecycle_event(*, id: str = "li-funnel", contacts: str = "all",
                    properties: list[Any] | None = None) -> LiveEvent:
    trigger = {"lifecycleStageChange": {"stages": ["lead", "customer"], "contacts": contacts}}
    sharing = {"properties": properties if properties is not None else ["email"]}
    return _live({"trigger": trigger, "dataSharing": sharing}, id=id)


def contact(**properties: Any) -> Contact:
    props: dict[str, Any] = {"email": " John@X.com ", "firstname": " John ",
                             "lastname": "O'Brien", "company": "Acme  Corp",
                             "jobtitle": "CTO", "country": "United States",
                             "li_fat_id": "df5gf5-gh6t7-ph4j7h-fgf6n1", "li_consent": "yes",
                             "phone": "+1 650 555 1212"}
    props.update(properties)
    return Contact(portal_id=PORTAL, contact_id="501",
                   properties={k: v for k, v in props.items() if v is not None})


def submission(**overrides: Any) -> FormSubmission:
    data: dict[str, Any] = {
        "portal_id": PORTAL, "form_id": FORM_ID, "submission_id": "sub-1", "contact_id": "501",
        "submitted_at": LATER, "page_url": "https://acme.example/demo",
        "ip_address": "203.0.113.7", "user_agent": "Mozilla/5.0 (X11; Linux x86_64)"}
    data.update(overrides)
    return FormSubmission(**data)


def stage_change(stage: str = "customer", at: datetime = LATER) -> StageChange:
    return StageChange(PORTAL, "501", stage, at, stage_source_id(PORTAL, "501", stage, at))


class Clock:
    """A settable clock for the fake server and the destination (``Retry-After`` dates)."""

    def __init__(self, now: datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def epoch(self) -> float:
        return self.now.timestamp()
