"""Per network, for ``agent_throughput.py --part networks`` (issue 16 item 7):

* **(c) payload building per network**, single thread, on the generated contacts of (a): each
  network's builder (``core.networks.<network>.RULES.builder``) for a form event sharing the
  same properties, + ``orjson.dumps``; best of ``repeat`` passes, passes taking turns.
* **(d) delivering to three networks at once vs Meta alone**, one process, in-process agent:
  the same CRM events (half form submissions, half lifecycle changes) ingested, matched,
  queued and delivered (``Agent.ingest_jsonl`` then ``Agent.run(once=True)`` per 1,000 CRM
  events) to the loopback receiver of ``agent_throughput`` (which answers Graph's, LinkedIn's
  and Google's success bodies), through the real destinations (``MetaDestination``,
  ``LinkedInDestination``, ``GoogleDestination``). "Meta alone": an account with Meta's two
  events; "three networks": the same account with a form and a lifecycle event on each of
  Meta, LinkedIn and Google Ads, so every CRM event fires three network events. The cost is
  this process's CPU time, per delivered network event; the runs take turns, and min /
  median / max of the runs are printed with the ratio three/Meta of each run.
"""

from __future__ import annotations

import gc
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import _stats
import orjson
from agent_throughput import (
    DEMO_FORM,
    PAGE_URL,
    PIXEL,
    PORTAL,
    USER_AGENT,
    Person,
    Receiver,
    iso,
    our_builder,
    people,
)

SHARED = ["email", "phone", "firstname", "lastname", "city", "zip", "country"]
LINKEDIN_RULE = "urn:lla:llaPartnerConversion:111"
CUSTOMER = "1234567890"
TOKENS = {"BENCH_META": "bench-meta", "BENCH_LINKEDIN": "bench-linkedin",
          "BENCH_GOOGLE": "bench-google"}
BLOCKS = {"facebook": {"businessId": "1122334455", "pixelId": PIXEL,
                       "adAccounts": ["act_1234567890"], "accessToken": {"env": "BENCH_META"}},
          "linkedin": {"adAccount": "urn:li:sponsoredAccount:5550001",
                       "accessToken": {"env": "BENCH_LINKEDIN"}},
          "google": {"customerId": CUSTOMER, "accessToken": {"env": "BENCH_GOOGLE"}}}
TARGETS = {"meta": {"adAccount": "act_1234567890"},
           "linkedin": {"network": "linkedin", "conversionRule": LINKEDIN_RULE},
           "google": {"network": "google", "conversionAction": "222"}}


def _account(networks: Sequence[str]) -> dict[str, Any]:
    blocks = {"facebook" if n == "meta" else n: BLOCKS["facebook" if n == "meta" else n]
              for n in networks}
    return {"portalId": PORTAL, "tier": "professional", "leadSync": True,
            "defaultCountryCode": "1", "forms": [{"id": DEMO_FORM, "name": "Demo request"}],
            **blocks}


def _form_trigger(network: str) -> dict[str, Any]:
    trigger: dict[str, Any] = {"formId": DEMO_FORM, "value": {"amount": 40, "currency": "EUR"},
                               "consent": {"property": "fb_consent", "value": "yes"}}
    if network == "meta":
        trigger["facebookEvent"] = "Lead"
    return trigger


def clear_caches() -> None:
    """Forget what earlier passes normalized, hashed and parsed, Meta's and the networks'."""
    import agent_throughput

    from reconciler.core.networks import google_normalize, linkedin

    agent_throughput.clear_caches()
    linkedin.clear_caches()
    google_normalize.clear_caches()


# -- (c) payload building per network ---------------------------------------------------------

def network_builder(network: str, now: datetime) -> Callable[[Person, int], bytes]:
    """``network``'s builder for a form event sharing ``SHARED``, as the agent makes it."""
    from reconciler.core.crm import Contact, FormSubmission
    from reconciler.core.live import LiveEvent
    from reconciler.core.models import AccountSpec, EventSpec
    from reconciler.core.networks import rules_for

    account = AccountSpec.model_validate(_account(["meta", "linkedin", "google"]))
    spec = EventSpec.model_validate({
        "account": "acme", **TARGETS[network],
        "trigger": {"formSubmission": _form_trigger(network)},
        "dataSharing": {"properties": SHARED, "ipAddress": True}})
    live = LiveEvent(id=f"ev-{network}", account="acme", name=network, spec=spec,
                     created_at=now - timedelta(days=2), updated_at=now - timedelta(days=2))
    build_one = rules_for(network).builder(live, account).build
    dumps = orjson.dumps

    def build(p: Person, ago: int) -> bytes:
        contact = Contact(PORTAL, p.cid, {
            "email": p.email, "phone": p.phone, "firstname": p.first, "lastname": p.last,
            "city": p.city, "zip": p.zip, "country": p.country, "fb_consent": "yes"})
        submission = FormSubmission(PORTAL, DEMO_FORM, f"sub-{p.cid}", p.cid,
                                    now - timedelta(seconds=ago), PAGE_URL, p.ip, USER_AGENT)
        return dumps(build_one(submission, contact))

    return build


def rules_costs(network: str, inputs: Sequence[Person], now: datetime) -> tuple[float, float]:
    """µs per event of ``network``'s own matching rule (``skip_reason``, on a lifecycle
    change: where each network has one) and of its check (``validate``) of a built form
    payload: the per-event work beside building that each network adds."""
    from reconciler.core.crm import Contact, FormSubmission, StageChange
    from reconciler.core.live import LiveEvent
    from reconciler.core.models import AccountSpec, EventSpec
    from reconciler.core.networks import rules_for

    rules = rules_for(network)
    account = AccountSpec.model_validate(_account(["meta", "linkedin", "google"]))
    spec = EventSpec.model_validate({
        "account": "acme", **TARGETS[network], "dataSharing": {"properties": SHARED},
        "trigger": {"lifecycleStageChange": {"stages": ["customer"]}}})
    live = LiveEvent(id=f"ev-{network}-stage", account="acme", name=network, spec=spec,
                     created_at=now - timedelta(days=2), updated_at=now - timedelta(days=2))
    build = network_builder(network, now)
    contacts = [Contact(PORTAL, p.cid, {"email": p.email, "phone": p.phone,
                                        "firstname": p.first, "lastname": p.last},
                        meta_lead_id=p.lead_id) for p in inputs]
    changes = [StageChange(PORTAL, p.cid, "customer", now, f"stage:{p.cid}") for p in inputs]
    payloads = [orjson.loads(build(p, i % 3600)) for i, p in enumerate(inputs)]
    assert all(isinstance(c, StageChange | FormSubmission) for c in changes)
    clear_caches()
    start = time.perf_counter()
    for change, contact in zip(changes, contacts, strict=True):
        rules.skip_reason(live, account, change, contact)
    skip = (time.perf_counter() - start) / len(inputs) * 1e6
    start = time.perf_counter()
    for payload in payloads:
        rules.validate(payload, now)
    return skip, (time.perf_counter() - start) / len(inputs) * 1e6


def part_c(n: int, repeat: int) -> dict[str, float]:
    now = datetime.now(UTC)
    inputs = people(n)
    builders = [("meta, (a)'s event (with the lead score): `PayloadBuilder.form`",
                 our_builder(now))]
    builders += [(f"{net}: `{net}.RULES.builder(...).build`", network_builder(net, now))
                 for net in ("meta", "linkedin", "google")]
    for _, build in builders:
        build(inputs[0], 0)
    times: dict[str, list[float]] = {name: [] for name, _ in builders}
    sizes: dict[str, int] = {}
    for _ in range(repeat):  # passes take turns: a busy moment hurts every builder alike
        for name, build in builders:
            seconds, sizes[name] = _one_pass(build, inputs)
            times[name].append(seconds)
    meta = times[builders[1][0]]
    print(f"\n### (c) Payload building per network, {n:,} form events, single thread "
          f"({repeat} run(s) taking turns; min / median / max)\n")
    print(f"load average (1 / 5 / 15 min) at the start: {_stats.load()}\n")
    print("| builder | events/s | bytes | rate vs Meta's, per run |")
    print("| --- | ---: | ---: | ---: |")
    figures: dict[str, float] = {}
    for name, _ in builders:
        rates = [n / t for t in times[name]]
        figures[name.split(":")[0]] = statistics.median(rates)
        print(f"| {name} | {_stats.spread(rates, '{:,.0f}')} | {sizes[name]:,} | "
              f"{_stats.ratio_spread(meta, times[name])} |")
    sample = inputs[:min(n, 20_000)]
    print(f"\nThe networks' other per-event work ({len(sample):,} events): their own matching "
          "rule and their payload check\n")
    print("| network | `skip_reason` (lifecycle) | `validate` |")
    print("| --- | ---: | ---: |")
    for net in ("meta", "linkedin", "google"):
        skip, check = rules_costs(net, sample, now)
        figures[f"{net}_skip_us"], figures[f"{net}_check_us"] = skip, check
        print(f"| {net} | {skip:.1f} µs | {check:.1f} µs |")
    return figures


def _one_pass(build: Callable[[Person, int], bytes], inputs: Sequence[Person]
              ) -> tuple[float, int]:
    """Wall time of one pass over the inputs (our caches cleared first), and its bytes."""
    clear_caches()
    gc.collect()
    start, size = time.perf_counter(), 0
    for i, p in enumerate(inputs):
        size += len(build(p, i % 3600))
    return time.perf_counter() - start, size


# -- (d) three networks at once vs Meta alone -------------------------------------------------

def _manifests(folder: Path, networks: Sequence[str]) -> Path:
    """An account on ``networks`` with a form and a lifecycle event on each."""
    folder.mkdir(parents=True)
    docs = [{"apiVersion": "convctl/v1", "kind": "Account", "metadata": {"name": "acme"},
             "spec": _account(networks)}]
    for net in networks:
        sharing = {"properties": SHARED}
        docs.append({"apiVersion": "convctl/v1", "kind": "ConversionEvent",
                     "metadata": {"name": f"{net}-demo"},
                     "spec": {"account": "acme", **TARGETS[net], "dataSharing": sharing,
                              "trigger": {"formSubmission": _form_trigger(net)}}})
        stage_target = dict(TARGETS[net])
        if net == "linkedin":
            stage_target["conversionRule"] = LINKEDIN_RULE[:-1] + "2"
        if net == "google":
            stage_target["conversionAction"] = "223"
        docs.append({"apiVersion": "convctl/v1", "kind": "ConversionEvent",
                     "metadata": {"name": f"{net}-customer"},
                     "spec": {"account": "acme", **stage_target, "dataSharing": sharing,
                              "trigger": {"lifecycleStageChange": {"stages": ["customer"]}}}})
    for i, doc in enumerate(docs):  # JSON is YAML: one document a file
        (folder / f"{i:02d}.yaml").write_bytes(orjson.dumps(doc))
    return folder


def _applied(state: Path, manifests: Path, created: datetime) -> None:
    from reconciler.adapters.state.sqlite import SqliteProvider
    from reconciler.services.apply import apply_plan
    from reconciler.services.planning import make_plan

    provider = SqliteProvider(state, clock=lambda: created)
    try:
        result = make_plan([manifests], provider)
        assert result.plan is not None, result.diagnostics
        assert apply_plan(result.plan, provider, progress=lambda _: None, holder="bench").ok
    finally:
        provider.close()


def _chunks(persons: Sequence[Person], now: datetime, folder: Path) -> list[Path]:
    """JSONL files of 1,000 CRM events: per person a contact, then half of them submit the
    demo form and half become customers."""
    files = []
    for start in range(0, len(persons), 1000):
        lines = []
        for i, p in enumerate(persons[start:start + 1000], start):
            at = iso(now - timedelta(minutes=30, seconds=i))
            lines.append({"type": "contact", "portalId": PORTAL, "contactId": p.cid,
                          "metaLeadId": p.lead_id, "properties": {
                              "email": p.email, "phone": p.phone, "firstname": p.first,
                              "lastname": p.last, "city": p.city, "zip": p.zip,
                              "country": p.country, "fb_consent": "yes"}})
            if i % 2:
                lines.append({"type": "lifecycleStageChange", "portalId": PORTAL,
                              "contactId": p.cid, "stage": "customer", "occurredAt": at})
            else:
                lines.append({"type": "formSubmission", "portalId": PORTAL,
                              "formId": DEMO_FORM, "submissionId": f"s-{p.cid}",
                              "contactId": p.cid, "submittedAt": at, "pageUrl": PAGE_URL,
                              "ipAddress": p.ip, "userAgent": USER_AGENT})
        path = folder / f"chunk-{start // 1000:04d}.jsonl"
        path.write_bytes(b"".join(orjson.dumps(x) + b"\n" for x in lines))
        files.append(path)
    return files


def _run(networks: Sequence[str], persons: Sequence[Person], now: datetime,
         receiver: Receiver, work: Path) -> tuple[float, int, int]:
    """CPU seconds of this process, network events delivered, unique at the receiver."""
    from reconciler.adapters.agentstore import AgentStore
    from reconciler.adapters.contacts import EmbeddedContacts
    from reconciler.adapters.meta import GraphSender
    from reconciler.adapters.networks.google import GoogleDestination
    from reconciler.adapters.networks.linkedin import LinkedInDestination
    from reconciler.adapters.networks.meta import MetaDestination
    from reconciler.adapters.state.sqlite import SqliteProvider
    from reconciler.services.agent import Agent, AgentConfig

    state = work / "state.db"
    _applied(state, _manifests(work / "manifests", networks), now - timedelta(days=2))
    files = _chunks(persons, now, work)
    url = receiver.base_url
    destinations: dict[str, Any] = {
        "meta": MetaDestination(GraphSender(url, "v25.0", timeout=30.0)),
        "linkedin": LinkedInDestination(url, timeout=30.0),
        "google": GoogleDestination(url, timeout=30.0)}
    provider, store = SqliteProvider(state), AgentStore(state)
    agent = Agent(provider, store, EmbeddedContacts(store), destinations,
                  AgentConfig(poll_interval=0.0), resolve=lambda ref: TOKENS[ref.env or ""])
    try:
        receiver.stats(reset=True)
        clear_caches()
        gc.collect()
        cpu = time.process_time()
        for path in files:
            agent.ingest_jsonl(path)
            agent.run(once=True)
        cpu = time.process_time() - cpu
        sent = store.status().outbox["sent"]
    finally:
        store.close()
        provider.close()
        for destination in destinations.values():
            destination.close()
    return cpu, sent, int(receiver.stats()["unique"])


def part_d(n: int, runs: int, builds: dict[str, float] | None = None) -> dict[str, float]:
    """``builds``: (c)'s events/s per network, to split the three networks' extra cost into
    the extra payloads' building and the rest (queueing, sending, marking them)."""
    persons = people(n)
    now = datetime.now(UTC)
    receiver = Receiver(1800.0)
    paths = {"Meta alone": ("meta",), "three networks": ("meta", "linkedin", "google")}
    per_event: dict[str, list[float]] = {name: [] for name in paths}
    ratios: list[float] = []
    notes: list[str] = []
    try:
        with tempfile.TemporaryDirectory(prefix="convctl-networks-bench-") as tmp:
            for run in range(runs):
                order = list(paths) if run % 2 == 0 else list(reversed(paths))
                costs: dict[str, float] = {}
                for name in order:
                    work = Path(tmp) / f"{run}-{name.replace(' ', '-')}"
                    work.mkdir()
                    cpu, sent, unique = _run(paths[name], persons, now, receiver, work)
                    expected = n * len(paths[name])
                    if sent != expected or unique != expected:
                        notes.append(f"run {run} {name}: sent {sent}, unique {unique}, "
                                     f"expected {expected} (MISMATCH)")
                    costs[name] = cpu / sent * 1e6
                    per_event[name].append(costs[name])
                ratios.append(costs["three networks"] / costs["Meta alone"])
    finally:
        receiver.stop()
    print(f"\n### (d) Delivering {n:,} CRM events to three networks at once vs Meta alone, "
          f"one process, {runs} runs taking turns\n")
    print("| path | network events | CPU per network event: min | median | max |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, costs in per_event.items():
        print(f"| {name} | {n * len(paths[name]):,} | {min(costs):.1f} µs | "
              f"{statistics.median(costs):.1f} µs | {max(costs):.1f} µs |")
    print("\nratio three networks / Meta alone, per network event, each run: "
          + ", ".join(f"{r:.2f}x" for r in ratios)
          + f" (min {min(ratios):.2f}x, median {statistics.median(ratios):.2f}x, "
          f"max {max(ratios):.2f}x)")
    meta = statistics.median(per_event["Meta alone"])
    three = 3 * statistics.median(per_event["three networks"])
    print(f"\nper CRM event (median): Meta alone {meta:.1f} µs; three networks {three:.1f} µs "
          f"= Meta's + {three - meta:.1f} µs for its LinkedIn and Google Ads events")
    if builds and "linkedin" in builds and "google" in builds:
        extra = 1e6 / builds["linkedin"] + 1e6 / builds["google"]
        print(f"  of which building their payloads ((c)): {extra:.1f} µs; queueing, sending "
              f"and marking them: {three - meta - extra:.1f} µs (Meta's own: "
              f"{meta - 1e6 / builds['meta']:.1f} µs)")
        _budget(per_event, builds)
    for note in notes:
        print(f"- {note}")
    return {"ratio_median": statistics.median(ratios), "meta_us": meta, "three_us": three}


def _budget(per_event: dict[str, list[float]], builds: dict[str, float]) -> None:
    """Issue 16 item 7's goal per run: three networks per CRM event <= 3 x Meta alone's cost
    per network event + what building LinkedIn's and Google's payloads costs beyond Meta's
    ((c)'s medians)."""
    beyond = 1e6 / builds["linkedin"] + 1e6 / builds["google"] - 2e6 / builds["meta"]
    budgets = [3 * m + beyond for m in per_event["Meta alone"]]
    costs = [3 * t for t in per_event["three networks"]]
    met = [c <= b for c, b in zip(costs, budgets, strict=True)]
    print(f"\nbudget per CRM event: 3 x Meta alone's per network event + {beyond:.1f} µs "
          "(building LinkedIn's and Google's payloads beyond Meta's, (c))")
    print(f"- budget: {_stats.spread(budgets, '{:.1f} µs')}; three networks: "
          f"{_stats.spread(costs, '{:.1f} µs')} (min / median / max)")
    print("- each run, three networks / budget: "
          + ", ".join(f"{c:.1f}/{b:.1f} µs {'meets' if ok else 'OVER'}"
                      for c, b, ok in zip(costs, budgets, met, strict=True))
          + f"; met in {sum(met)} of {len(met)} runs")
