"""Builders for the agent's I/O tests: a state with the shipped manifests applied at a chosen
time, a fake clock, JSONL lines, and an ``Agent`` wired to the strict fake Graph API."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from reconciler.adapters.agentstore import AgentStore
from reconciler.adapters.contacts import EmbeddedContacts
from reconciler.adapters.meta import GraphSender
from reconciler.adapters.networks.meta import MetaDestination
from reconciler.adapters.state.sqlite import SqliteProvider
from reconciler.core.capi import event_id
from reconciler.core.models import SecretRef
from reconciler.core.provider import Provider
from reconciler.services.agent import Agent, AgentConfig
from reconciler.services.apply import apply_plan
from reconciler.services.planning import make_plan

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = ROOT / "manifests"
ACME_PORTAL = 4412345
ACME_PIXEL = "123456789012345"
GLOBEX_PORTAL = 9087321
GLOBEX_PIXEL = "987654321098765"
DEMO_FORM = "0b8f6c9e-2c1a-4bd7-9e0b-6a1f1f9c2d10"
NEWSLETTER_FORM = "5d2e7a41-8c3b-4f0e-b1a9-2e6f4c8d9a77"
TOKENS = {"ACME_META_TOKEN": "acme-token-SECRET", "/run/secrets/globex_meta_token":
          "globex-token-SECRET"}


class FakeClock:
    """A settable clock; ``sleep`` advances it (and records the delays)."""

    def __init__(self, now: datetime) -> None:
        self.now = now
        self.sleeps: list[float] = []

    def __call__(self) -> datetime:
        return self.now

    def epoch(self) -> float:
        return self.now.timestamp()

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += timedelta(seconds=seconds)

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def applied_state(path: Path, created: datetime) -> None:
    """Apply the shipped manifests to a fresh SQLite state; events are created at ``created``."""
    provider = SqliteProvider(path, clock=lambda: created)
    try:
        result = make_plan([MANIFESTS], provider)
        assert result.plan is not None, result.diagnostics
        report = apply_plan(result.plan, provider, progress=lambda _: None, holder="test")
        assert report.ok
    finally:
        provider.close()


def expected_sent(provider: Provider, sources: list[tuple[str, str]]
                  ) -> set[tuple[str, str, str]]:
    """The (pixel, event name, event id) Meta must receive once each for CRM events ``sources``
    (("stage" | "form", source id)) of the shipped events; reads and closes ``provider``."""
    try:
        live = {e.name: e.id for e in provider.list_events("acme")}
    finally:
        provider.close()
    names = {"stage": ("Customer", live["funnel"]), "form": ("Lead", live["demo-request"])}
    return {(ACME_PIXEL, names[kind][0], event_id(names[kind][1], source))
            for kind, source in sources}


def resolve(ref: SecretRef) -> str:
    return TOKENS[ref.env or ref.file or ""]


def contact_line(cid: str, *, lead: str | None = "123456789012345", consent: str = "yes",
                 portal: int = ACME_PORTAL, ad: bool = False, **props: str) -> dict[str, Any]:
    properties = {"email": f" Person{cid}@Example.com ", "phone": "(650) 555-12" + cid[-2:],
                  "firstname": "Valéry", "lastname": "O'Brien", "country": "United States",
                  "fb_consent": consent, "hs_predictivecontactscore_v2": "42", **props}
    line: dict[str, Any] = {"type": "contact", "portalId": portal, "contactId": cid,
                            "properties": properties, "adInteraction": ad}
    if lead:
        line["metaLeadId"] = lead
    return line


def stage_line(cid: str, stage: str, at: datetime, portal: int = ACME_PORTAL) -> dict[str, Any]:
    return {"type": "lifecycleStageChange", "portalId": portal, "contactId": cid,
            "stage": stage, "occurredAt": at.isoformat().replace("+00:00", "Z")}


def form_line(sub: str, cid: str, at: datetime, form: str = DEMO_FORM,
              portal: int = ACME_PORTAL) -> dict[str, Any]:
    return {"type": "formSubmission", "portalId": portal, "formId": form, "submissionId": sub,
            "contactId": cid, "submittedAt": at.isoformat().replace("+00:00", "Z"),
            "pageUrl": "https://acme.example/demo", "ipAddress": "203.0.113.7",
            "userAgent": "Mozilla/5.0 (X11; Linux x86_64)"}


def write_jsonl(path: Path, lines: Iterable[dict[str, Any] | str]) -> Path:
    with path.open("a", encoding="utf-8") as out:
        for line in lines:
            out.write((line if isinstance(line, str) else json.dumps(line)) + "\n")
    return path


@dataclass
class Rig:
    """An agent over a temp state, its store, its clock and the fake Graph it sends to."""

    agent: Agent
    store: AgentStore
    provider: SqliteProvider
    clock: FakeClock
    state: Path
    closers: list[Any] = field(default_factory=list)

    def close(self) -> None:
        for closer in self.closers:
            closer()


def make_rig(tmp: Path, graph_url: str | None, clock: FakeClock, created: datetime,
             sender: Any = None, **config: Any) -> Rig:
    """``graph_url``: send there with a real ``GraphSender`` (Meta's destination); else
    ``sender``: Meta's destination (a recorder), or a mapping of network -> destination."""
    state = tmp / "state.db"
    if not state.exists():
        applied_state(state, created)
    provider = SqliteProvider(state, clock=clock)
    store = AgentStore(state, clock=clock)
    graph = GraphSender(graph_url, "v25.0", timeout=config.pop("timeout", 2.0),
                        clock=clock) if graph_url else None
    destinations = ({"meta": MetaDestination(graph)} if graph else
                    sender if isinstance(sender, dict) else {"meta": sender})
    agent = Agent(provider, store, EmbeddedContacts(store), destinations,
                  AgentConfig(**config), clock=clock, sleep=clock.sleep, rand=lambda: 0.5,
                  resolve=resolve)
    closers = [provider.close, store.close] + ([graph.close] if graph else [])
    return Rig(agent, store, provider, clock, state, closers)


T_CREATED = datetime.now(UTC).replace(microsecond=0) - timedelta(days=2)
START = T_CREATED + timedelta(days=1)  # "now" of the agent tests: a day after creation
