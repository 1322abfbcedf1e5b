"""Test kit for the live-state backends: a fake clock and builders for accounts and events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from reconciler.core.live import EventWrite
from reconciler.core.models import AccountSpec, EventSpec

START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


class FakeClock:
    """A clock that only moves when told to; pass it (or ``clock.now``) as ``clock=``."""

    def __init__(self, start: datetime = START) -> None:
        self.current = start

    def now(self) -> datetime:
        return self.current

    def __call__(self) -> datetime:
        return self.current

    def advance(self, seconds: float) -> None:
        self.current += timedelta(seconds=seconds)


CUSTOM_STAGES = 120
"""The account declares this many numbered custom stages (R6), so ``stages(n)`` is valid."""


def account_spec(tier: str = "professional", **overrides: Any) -> AccountSpec:
    data: dict[str, Any] = {
        "portalId": 4412345, "tier": tier, "leadSync": True, "defaultCountryCode": "1",
        "customLifecycleStages": [{"id": "1452450030", "label": "Demo booked"},
                                  *({"id": s, "label": f"Step {s}"}
                                    for s in stages(CUSTOM_STAGES))],
        "forms": [{"id": "0b8f6c9e-2c1a-4bd7-9e0b-6a1f1f9c2d10", "name": "Demo request"}],
        "facebook": {"businessId": "1122334455", "pixelId": "123456789012345",
                     "adAccounts": ["act_1234567890"], "accessToken": {"env": "ACME_TOKEN"}},
    }
    data.update(overrides)
    return AccountSpec.model_validate(data)


def stages(count: int) -> list[str]:
    """``count`` distinct custom stage ids, declared by ``account_spec`` up to CUSTOM_STAGES."""
    return [str(1_000_000 + i) for i in range(count)]


def lifecycle_event(name: str, count: int, account: str = "acme", **spec: Any) -> EventWrite:
    data = {"account": account, "adAccount": "act_1234567890",
            "trigger": {"lifecycleStageChange": {"stages": stages(count),
                                                 "contacts": "adInteractions"}},
            "dataSharing": {"properties": ["email", {"property": "crm_id", "as": "external_id"}],
                            "ipAddress": False}}
    data.update(spec)
    return EventWrite(account=account, name=name, spec=EventSpec.model_validate(data),
                      labels={"team": "growth"}, last_applied_hash="h-" + name)


def form_event(name: str, account: str = "acme", **spec: Any) -> EventWrite:
    data = {"account": account, "adAccount": "act_1234567890",
            "trigger": {"formSubmission": {
                "formId": "0b8f6c9e-2c1a-4bd7-9e0b-6a1f1f9c2d10", "facebookEvent": "Lead",
                "value": {"amount": 40, "currency": "EUR"},
                "consent": {"property": "fb_consent", "value": "yes"}}}}
    data.update(spec)
    return EventWrite(account=account, name=name, spec=EventSpec.model_validate(data))
