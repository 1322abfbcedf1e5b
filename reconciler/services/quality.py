"""``convctl agent quality``: Meta's own match score for each pixel, beside our coverage.

For each account (or the one asked for) the account's token is resolved as the agent resolves
it, Meta's Dataset Quality API is read for its pixel (``adapters.meta_quality``), and each of
Meta's web event names is paired with our coverage over 7 days of the account's form events
that send that name (``core.coverage.combine``). Lifecycle-stage events are CRM events, which
Meta does not score (its Event Match Quality covers web events only): they are listed apart.
Meta's match-key identifiers (``email``, ``phone``...) are shown under our key names.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from reconciler.adapters.meta_quality import QualityUnavailable, WebEventQuality
from reconciler.adapters.secrets import SecretUnavailable, describe
from reconciler.core.capi import meta_event_name
from reconciler.core.coverage import EventCoverage, WindowCoverage, combine
from reconciler.core.live import LiveAccount, LiveEvent
from reconciler.core.models import SecretRef
from reconciler.core.provider import StateReader
from reconciler.errors import UsageError
from reconciler.services.coverage import event_coverage
from reconciler.services.ports import AgentStore

WINDOW = "7d"
# Meta's match-key identifiers -> our user_data keys (our own names map to themselves).
META_KEYS = {"email": "em", "phone": "ph", "first_name": "fn", "last_name": "ln",
             "city": "ct", "state": "st", "zip": "zp", "zip_code": "zp", "postal_code": "zp",
             "country": "country", "date_of_birth": "db", "dob": "db", "gender": "ge",
             "external_id": "external_id", "ip_address": "client_ip_address",
             "user_agent": "client_user_agent", "click_id": "fbc", "browser_id": "fbp",
             "lead_id": "lead_id"}


class QualitySource(Protocol):
    def fetch(self, pixel_id: str, token: str) -> list[WebEventQuality]: ...


@dataclass(frozen=True)
class EventQuality:
    """One Meta event name of a pixel: Meta's figures (None when Meta has none) and ours."""

    event_name: str
    meta: WebEventQuality | None
    ours: WindowCoverage
    our_events: tuple[str, ...]

    def meta_keys(self) -> dict[str, float | None]:
        """Meta's per-key coverage under our key names (unknown identifiers kept as they are)."""
        keys = self.meta.match_keys if self.meta else {}
        return {META_KEYS.get(k, k): v for k, v in keys.items()}

    def to_json(self) -> dict[str, Any]:
        return {"eventName": self.event_name,
                "meta": None if self.meta is None else {
                    **self.meta.to_json(), "matchKeys": self.meta_keys()},
                "ours": {"events": list(self.our_events), "window": WINDOW,
                         **self.ours.to_json()}}


@dataclass(frozen=True)
class PixelQuality:
    account: str
    pixel_id: str
    events: list[EventQuality]
    crm_events: list[str] = field(default_factory=list)  # lifecycle events: not scored

    def to_json(self) -> dict[str, Any]:
        return {"account": self.account, "pixelId": self.pixel_id,
                "events": [e.to_json() for e in self.events], "crmEvents": self.crm_events}


def read_quality(provider: StateReader, store: AgentStore, source: QualitySource,
                 resolve: Callable[[SecretRef], str], account: str | None = None,
                 now: datetime | None = None) -> list[PixelQuality]:
    """Meta's score beside our coverage, per account with a Meta pixel (its Meta events only:
    LinkedIn's and Google's are not Meta's to score); ``QualityUnavailable`` (one line) when
    a token cannot be read or Meta refuses."""
    accounts = provider.list_accounts()
    if account is not None:
        accounts = [a for a in accounts if a.name == account]
        if not accounts:
            raise UsageError(f"--account {account}: no such account in the live state")
        if accounts[0].spec.facebook is None:
            raise UsageError(f"--account {account}: the account has no facebook block; Event "
                             "Match Quality is Meta's score of a pixel's events")
    events = [e for e in provider.list_events() if e.spec.destination == "meta"]
    coverage = {c.conversion_event_id: c for c in event_coverage(store, events, now)}
    return [_pixel(a, [e for e in events if e.account == a.name], coverage, source, resolve)
            for a in accounts if a.spec.facebook is not None]


def _pixel(account: LiveAccount, events: Sequence[LiveEvent],
           coverage: dict[str, EventCoverage], source: QualitySource,
           resolve: Callable[[SecretRef], str]) -> PixelQuality:
    ref, pixel = account.spec.meta.access_token, account.spec.meta.pixel_id
    try:
        token = resolve(ref)
    except SecretUnavailable as exc:
        raise QualityUnavailable(f"account {account.name}: the token from {describe(ref)} is "
                                 f"unavailable ({exc})") from None
    meta = {q.event_name: q for q in source.fetch(pixel, token)}
    by_name: dict[str, list[LiveEvent]] = {}
    crm: list[str] = []
    for event in events:
        form = event.spec.trigger.form_submission
        if form is None:
            crm.append(f"{event.account}/{event.name}")
        else:
            by_name.setdefault(meta_event_name(form.facebook_event or ""), []).append(event)
    rows = [EventQuality(name, meta.get(name),
                         combine(coverage[e.id].window(WINDOW) for e in ours if e.id in coverage),
                         tuple(f"{e.account}/{e.name}" for e in ours))
            for name in sorted({*meta, *by_name})
            for ours in [by_name.get(name, [])]]
    return PixelQuality(account.name, pixel, rows, sorted(crm))
