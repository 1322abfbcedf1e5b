"""Builders for the agent's tests over three networks: a state with the ``data/three``
manifests applied (acme on Meta, LinkedIn and Google Ads: a form event and a lifecycle event
on each), the three strict fakes, JSONL lines, and the ids each network should receive."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from fakes.google_ads import FakeGoogleAds
from fakes.graph import FakeGraph
from fakes.linkedin import FakeLinkedIn

from reconciler.adapters.state.sqlite import SqliteProvider
from reconciler.core.capi import event_id
from reconciler.core.crm import stage_source_id
from reconciler.services.apply import apply_plan
from reconciler.services.planning import make_plan

THREE = Path(__file__).resolve().parent / "data" / "three"
PORTAL = 4412345
FORM = "0b8f6c9e-2c1a-4bd7-9e0b-6a1f1f9c2d10"
PIXEL = "123456789012345"
CUSTOMER = "1234567890"
LI_FORM, LI_STAGE = "urn:lla:llaPartnerConversion:111", "urn:lla:llaPartnerConversion:112"
G_FORM, G_STAGE = f"{CUSTOMER}/222", f"{CUSTOMER}/223"
TOKENS = {"ACME_META_TOKEN": "meta-token-SECRET", "ACME_LINKEDIN_TOKEN": "li-token-SECRET-1",
          "ACME_GOOGLE_TOKEN": "google-token-SECRET"}


def applied_three(path: Path, created: datetime) -> dict[str, str]:
    """Apply ``data/three`` to a fresh SQLite state (events created at ``created``); the live
    event ids by name."""
    provider = SqliteProvider(path, clock=lambda: created)
    try:
        result = make_plan([THREE], provider)
        assert result.plan is not None, result.diagnostics
        assert apply_plan(result.plan, provider, progress=lambda _: None, holder="test").ok
        return {e.name: e.id for e in provider.list_events("acme")}
    finally:
        provider.close()


@dataclass
class Fakes:
    graph: FakeGraph
    linkedin: FakeLinkedIn
    google: FakeGoogleAds

    def urls(self) -> dict[str, str]:
        """The agent's settings pointing at the fakes."""
        return {"meta_base_url": self.graph.base_url, "linkedin_url": self.linkedin.base_url,
                "google_url": self.google.base_url}

    def received(self) -> dict[str, set[tuple[str, str]]]:
        """(target, event id) per network, each counted once as the network deduplicates."""
        return {"meta": {(pixel, eid) for pixel, _, eid in self.graph.unique},
                "linkedin": set(self.linkedin.unique),
                "google": {(f"{c}/{a}", tid) for c, a, tid in self.google.unique}}


@contextmanager
def three_fakes(clock: Any = None, **graph: Any) -> Iterator[Fakes]:
    extra = {"clock": clock} if clock is not None else {}
    with ExitStack() as stack:
        yield Fakes(
            stack.enter_context(FakeGraph(token=TOKENS["ACME_META_TOKEN"], **extra, **graph)),
            stack.enter_context(FakeLinkedIn(token=TOKENS["ACME_LINKEDIN_TOKEN"], **extra)),
            stack.enter_context(FakeGoogleAds(token=TOKENS["ACME_GOOGLE_TOKEN"], **extra)))


def contact(cid: str, *, email: str | None = None, phone: str | None = "(650) 555-1212",
            lead: str | None = "123456789012345") -> dict[str, Any]:
    props = {"email": f"person{cid}@example.com" if email is None else email,
             "phone": phone or "", "firstname": "Valéry", "lastname": "O'Brien",
             "country": "United States", "fb_consent": "yes"}
    line: dict[str, Any] = {"type": "contact", "portalId": PORTAL, "contactId": cid,
                            "properties": props}
    if lead:
        line["metaLeadId"] = lead
    return line


def _iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def stage(cid: str, at: datetime) -> dict[str, Any]:
    return {"type": "lifecycleStageChange", "portalId": PORTAL, "contactId": cid,
            "stage": "customer", "occurredAt": _iso(at)}


def form(sub: str, cid: str, at: datetime) -> dict[str, Any]:
    return {"type": "formSubmission", "portalId": PORTAL, "formId": FORM, "submissionId": sub,
            "contactId": cid, "submittedAt": _iso(at), "pageUrl": "https://acme.example/demo",
            "ipAddress": "203.0.113.7", "userAgent": "Mozilla/5.0 (X11; Linux x86_64)"}


def write_jsonl(path: Path, lines: Iterable[dict[str, Any]]) -> Path:
    with path.open("a", encoding="utf-8") as out:
        for line in lines:
            out.write(json.dumps(line) + "\n")
    return path


def form_ids(live: dict[str, str], sub: str) -> dict[str, tuple[str, str]]:
    """What a submission ``sub`` fires, per network: (target, event id)."""
    source = f"form:{sub}"
    return {"meta": (PIXEL, event_id(live["demo-request"], source)),
            "linkedin": (LI_FORM, event_id(live["li-demo"], source)),
            "google": (G_FORM, event_id(live["g-demo"], source))}


def stage_ids(live: dict[str, str], cid: str, at: datetime) -> dict[str, tuple[str, str]]:
    """What a change of ``cid`` to customer at ``at`` fires, per network."""
    source = stage_source_id(PORTAL, cid, "customer", at)
    return {"meta": (PIXEL, event_id(live["funnel"], source)),
            "linkedin": (LI_STAGE, event_id(live["li-customer"], source)),
            "google": (G_STAGE, event_id(live["g-customer"], source))}
