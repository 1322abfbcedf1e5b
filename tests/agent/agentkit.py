"""Builders for the agent's pure-core tests: an account, live events, contacts, CRM events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from reconciler.core.crm import Contact, FormSubmission, StageChange, stage_source_id
from reconciler.core.live import LiveAccount, LiveEvent
from reconciler.core.models import AccountSpec, EventSpec

PORTAL = 4412345
FORM_ID = "0b8f6c9e-2c1a-4bd7-9e0b-6a1f1f9c2d10"
OTHER_FORM = "11111111-2222-3333-4444-555555555555"
CREATED = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
LATER = CREATED + timedelta(days=3)
LEAD_ID = "1234567890123456"


def account_spec(**overrides: Any) -> AccountSpec:
    data: dict[str, Any] = {
        "portalId": PORTAL, "tier": "professional", "leadSync": True,
        "defaultCountryCode": "1",
        "customLifecycleStages": [{"id": "1452450030", "label": "Demo booked"}],
        "forms": [{"id": FORM_ID, "name": "Demo request"}],
        "facebook": {"businessId": "1122334455", "pixelId": "123456789012345",
                     "adAccounts": ["act_1234567890"], "accessToken": {"env": "ACME_TOKEN"}},
    }
    data.update(overrides)
    return AccountSpec.model_validate(data)


def account(**overrides: Any) -> LiveAccount:
    return LiveAccount(name="acme", spec=account_spec(**overrides), updated_at=CREATED)


def _live(spec: dict[str, Any], *, id: str, name: str, api: str = "enhanced",
          created_at: datetime = CREATED) -> LiveEvent:
    full = {"account": "acme", "adAccount": "act_1234567890", **spec}
    return LiveEvent(id=id, account="acme", name=name, spec=EventSpec.model_validate(full),
                     api=api, created_at=created_at, updated_at=created_at)


def form_event(*, id: str = "ev-form", enabled: bool = True, form_id: str = FORM_ID,
               properties: list[Any] | None = None, ip_address: bool = True,
               value: dict[str, Any] | None = None, predictive: bool = False,
               facebook_event: str = "Lead", consent: dict[str, str] | None = None,
               created_at: datetime = CREATED) -> LiveEvent:
    trigger: dict[str, Any] = {
        "formId": form_id, "facebookEvent": facebook_event, "predictiveLeadScore": predictive,
        "consent": consent if consent is not None else {"property": "fb_consent",
                                                         "value": "yes"}}
    if value is not None:
        trigger["value"] = value
    sharing = {"properties": properties if properties is not None
               else ["email", "phone", "firstname", "lastname"], "ipAddress": ip_address}
    spec = {"enabled": enabled, "trigger": {"formSubmission": trigger}, "dataSharing": sharing}
    return _live(spec, id=id, name=id, created_at=created_at)


def lifecycle_event(*, id: str = "ev-funnel", stages: list[str] | None = None,
                    contacts: str = "all", enabled: bool = True, api: str = "enhanced",
                    created_at: datetime = CREATED) -> LiveEvent:
    trigger = {"lifecycleStageChange": {
        "stages": stages or ["lead", "marketingqualifiedlead", "customer", "1452450030"],
        "contacts": contacts}}
    return _live({"enabled": enabled, "trigger": trigger}, id=id, name=id, api=api,
                 created_at=created_at)


def contact(**overrides: Any) -> Contact:
    data: dict[str, Any] = {
        "portal_id": PORTAL, "contact_id": "501",
        "properties": {"email": " John@X.com ", "phone": "(650)555-1212", "firstname": "John",
                       "lastname": "O'Brien", "city": "St. Louis", "fb_consent": "yes",
                       "hs_predictivecontactscore_v2": "87"},
        "meta_lead_id": LEAD_ID, "ad_interaction": False, "fbc": None, "fbp": None,
    }
    data.update(overrides)
    return Contact(**data)


def submission(**overrides: Any) -> FormSubmission:
    data: dict[str, Any] = {
        "portal_id": PORTAL, "form_id": FORM_ID, "submission_id": "sub-1", "contact_id": "501",
        "submitted_at": LATER, "page_url": "https://acme.example/demo",
        "ip_address": "203.0.113.7", "user_agent": "Mozilla/5.0 (X11; Linux x86_64)",
    }
    data.update(overrides)
    return FormSubmission(**data)


def stage_change(stage: str = "customer", at: datetime = LATER) -> StageChange:
    return StageChange(PORTAL, "501", stage, at, stage_source_id(PORTAL, "501", stage, at))
