"""Hypothesis properties of the planner (architecture rule 9) over 1-3 accounts with tiers and
random lifecycle-stage and form events of the three networks (Meta, LinkedIn, Google Ads: R9 is
the CRM's limit, every network's stages count), live states derived from the desired one by random
edits (missing, changed, immutable field changed, legacy, unmanaged, drifted, renamed, extra).
"""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from planner_sim import apply_plan, live_account, live_event, live_from, walk

from reconciler.core.live import LiveAccount, LiveEvent
from reconciler.core.models import Account, ConversionEvent
from reconciler.core.plan import Plan
from reconciler.core.planner import build_plan
from reconciler.core.quota import limit_for
from reconciler.core.source import Located, SourceMap
from reconciler.core.validate import ManifestSet
from reconciler.core.vocabulary import STANDARD_STAGES

CUSTOM = [str(1000 + i) for i in range(40)]
STAGES = [*STANDARD_STAGES, *CUSTOM]
FORMS = ["form-a", "form-b"]
ADS = ["act_111", "act_222"]
NETWORKS = ["meta", "linkedin", "google"]
# Each network's own target (the key and two values), as events name it.
TARGETS = {"meta": ("adAccount", ADS),
           "linkedin": ("conversionRule", ["urn:lla:llaPartnerConversion:1",
                                           "urn:lla:llaPartnerConversion:2"]),
           "google": ("conversionAction", ["601", "602"])}
NAMES = ["e0", "e1", "e2", "e3", "e4", "e5"]
SRC = SourceMap("<generated>")


def account(name: str, tier: str, portal: int) -> Account:
    return Account.model_validate({
        "apiVersion": "convctl/v1", "kind": "Account", "metadata": {"name": name},
        "spec": {"portalId": portal, "tier": tier, "leadSync": True,
                 "customLifecycleStages": [{"id": c, "label": f"S{c}"} for c in CUSTOM],
                 "forms": [{"id": f, "name": f} for f in FORMS],
                 "facebook": {"businessId": "112233", "pixelId": "123456789012345",
                              "adAccounts": ADS, "accessToken": {"env": "TOKEN"}},
                 "linkedin": {"adAccount": "urn:li:sponsoredAccount:5",
                              "accessToken": {"env": "LI_TOKEN"}},
                 "google": {"customerId": "1234567890", "accessToken": {"env": "G_TOKEN"}}}})


@st.composite
def triggers(draw: st.DrawFn, network: str = "meta") -> dict[str, Any]:
    if draw(st.booleans()):
        size = draw(st.integers(1, 30))
        stages = draw(st.lists(st.sampled_from(STAGES), min_size=size, max_size=size, unique=True))
        contacts = draw(st.sampled_from(["all", "adInteractions"] if network == "meta"
                                        else ["all"]))
        return {"lifecycleStageChange": {"stages": stages, "contacts": contacts}}
    form: dict[str, Any] = {"formId": draw(st.sampled_from(FORMS)),
                            "consent": {"property": "c", "value": "yes"}}
    if network == "meta":
        form["facebookEvent"] = draw(st.sampled_from(["Lead", "Contact"]))
    return {"formSubmission": form}


@st.composite
def destinations(draw: st.DrawFn) -> dict[str, str]:
    """``network`` (unset for most Meta events: the default) and the network's target."""
    network = draw(st.sampled_from(NETWORKS))
    key, values = TARGETS[network]
    out = {key: draw(st.sampled_from(values))}
    if network != "meta" or draw(st.booleans()):
        out["network"] = network
    return out


@st.composite
def events(draw: st.DrawFn, acc: str, name: str) -> ConversionEvent:
    metadata: dict[str, Any] = {"name": name,
                                "labels": draw(st.sampled_from([{}, {"team": "growth"}]))}
    if draw(st.integers(0, 2)) == 0:
        metadata["renamedFrom"] = draw(st.sampled_from(["old-" + name, *NAMES]))
    dest = draw(destinations())
    return ConversionEvent.model_validate({
        "apiVersion": "convctl/v1", "kind": "ConversionEvent", "metadata": metadata,
        "spec": {"account": acc, **dest, "enabled": draw(st.booleans()),
                 "protect": draw(st.integers(0, 9)) == 0,
                 "trigger": draw(triggers(dest.get("network", "meta")))}})


@st.composite
def desired_states(draw: st.DrawFn) -> ManifestSet:
    ms = ManifestSet()
    for i in range(draw(st.integers(1, 3))):
        name = f"acct-{i}"
        ms.accounts.append(Located(account(name, draw(st.sampled_from(
            ["professional", "enterprise"])), 100 + i), SRC))
        for ev_name in draw(st.lists(st.sampled_from(NAMES), max_size=4, unique=True)):
            ms.events.append(Located(draw(events(name, ev_name)), SRC))
    return ms


EDITS = ["same", "absent", "stages", "ad", "form", "labels", "legacy", "unmanaged", "drift",
         "renamed", "network"]
_TARGET_FIELDS = ("ad_account", "conversion_rule", "conversion_action")


def _with_destination(spec: Any, dest: dict[str, str]) -> Any:
    """``spec`` moved to another network and/or target (the others' targets cleared)."""
    data = spec.model_dump(by_alias=True, exclude={"network", *_TARGET_FIELDS})
    return spec.model_validate({**data, **dest})


@st.composite
def live_variant(draw: st.DrawFn, ev: ConversionEvent, event_id: str) -> list[LiveEvent]:
    edit = draw(st.sampled_from(EDITS))
    spec, meta = ev.spec, ev.metadata
    if edit == "absent":
        return []
    if edit == "stages" and spec.trigger.lifecycle_stage_change is not None:
        trig = draw(triggers(spec.destination))
        spec = spec.model_validate({**spec.model_dump(by_alias=True), "trigger": trig})
    elif edit == "ad":  # another target on the same network
        key, values = TARGETS[spec.destination]
        spec = _with_destination(spec, {**({"network": spec.network} if spec.network else {}),
                                        key: draw(st.sampled_from(values))})
    elif edit == "network":
        spec = _with_destination(spec, draw(destinations()))
    elif edit == "form":
        spec = spec.model_validate({**spec.model_dump(by_alias=True),
                                    "trigger": draw(triggers(spec.destination))})
    elif edit in ("labels", "drift"):
        meta = meta.model_copy(update={"labels": {"team": "other"}})
    elif edit == "renamed" and meta.renamed_from:
        meta = meta.model_copy(update={"name": meta.renamed_from})
    changed = ev.model_copy(update={"spec": spec, "metadata": meta})
    if edit == "drift":
        return [live_event(changed, event_id, last_applied_hash="0" * 64)]
    return [live_event(changed, event_id, managed=edit != "unmanaged",
                       api="legacy" if edit == "legacy" else "enhanced",
                       last_applied_hash=None)]


@st.composite
def live_states(draw: st.DrawFn, ms: ManifestSet) -> tuple[list[LiveAccount], list[LiveEvent]]:
    accounts: list[LiveAccount] = []
    for acc in ms.accounts:
        if draw(st.integers(0, 5)) == 0:
            continue
        tier = draw(st.sampled_from(["professional", "enterprise", acc.model.spec.tier]))
        accounts.append(live_account(acc.model.model_copy(update={
            "spec": acc.model.spec.model_copy(update={"tier": tier})})))
    if draw(st.integers(0, 4)) == 0:
        accounts.append(live_account(account("live-only", "professional", 999)))
    evs: list[LiveEvent] = []
    for i, doc in enumerate(ms.events):
        evs.extend(draw(live_variant(doc.model, f"id-{i}")))
    for acc in accounts:
        for j, name in enumerate(draw(st.lists(st.sampled_from(NAMES), max_size=2, unique=True))):
            extra = draw(events(acc.name, "x-" + name))
            evs.append(live_event(extra, f"x-{acc.name}-{j}", managed=draw(st.booleans())))
    return accounts, _fit(accounts, evs)


def _fit(accounts: list[LiveAccount], evs: list[LiveEvent]) -> list[LiveEvent]:
    """Keep only what a backend could hold: events of live accounts, unique keys, <= limit."""
    limits = {a.name: a.limit for a in accounts}
    used = dict.fromkeys(limits, 0)
    kept, keys = [], set()
    for e in evs:
        if e.account in limits and e.key not in keys and (
                used[e.account] + e.stage_count <= limits[e.account]):
            kept.append(e)
            keys.add(e.key)
            used[e.account] += e.stage_count
    return kept


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[ManifestSet, list[LiveAccount], list[LiveEvent],
                                        dict[str, bool]]:
    ms = draw(desired_states())
    accounts, evs = draw(live_states(ms))
    options = {"prune_unmanaged": draw(st.booleans()), "allow_mass_delete": draw(st.booleans())}
    return ms, accounts, evs, options


@given(desired_states())
def test_plan_against_matching_live_is_empty(ms: ManifestSet) -> None:
    accounts, evs = live_from(ms)
    assert build_plan(ms, accounts, evs).changes == ()


@given(scenarios())
def test_replan_after_apply_is_empty(scenario: Any) -> None:
    ms, accounts, evs, options = scenario
    plan = build_plan(ms, accounts, evs, **options)
    if plan.errors:
        return
    after = apply_plan(plan, accounts, evs)
    again = build_plan(ms, *after, **options)
    assert again.changes == (), [c.address for c in again.changes]


@given(scenarios())
def test_no_step_exceeds_the_limit_and_peak_is_the_walks_maximum(scenario: Any) -> None:
    ms, accounts, evs, options = scenario
    plan = build_plan(ms, accounts, evs, **options)
    steps = walk(plan, accounts, evs)
    over = {acc for acc, trail in steps.items()
            if any(delta > 0 and used > limit for delta, used, limit in trail)}
    flagged = {q.account for q in plan.quotas if any(
        e.code == "E313" and f"'{q.account}'" in e.message for e in plan.errors)}
    assert over <= flagged
    if not plan.errors:
        assert not over
    for quota in plan.quotas:
        trail = [used for _, used, _ in steps.get(quota.account, [])]
        assert quota.peak == max([quota.before, *trail])
        assert quota.after == (trail[-1] if trail else quota.before)
        assert quota.limit == limit_for(quota.tier)


@given(scenarios(), st.randoms(use_true_random=False))
def test_plans_are_deterministic(scenario: Any, rnd: Any) -> None:
    ms, accounts, evs, options = scenario
    plan = build_plan(ms, accounts, evs, **options)
    shuffled_accounts, shuffled_events = list(accounts), list(evs)
    rnd.shuffle(shuffled_accounts)
    rnd.shuffle(shuffled_events)
    assert build_plan(ms, shuffled_accounts, shuffled_events, **options) == plan
    assert Plan.from_json(plan.to_json()) == plan


@given(desired_states())
def test_lifecycle_events_of_every_network_use_the_accounts_slots(ms: ManifestSet) -> None:
    """R9 is the CRM's limit (R7: one slot a stage): LinkedIn and Google Ads lifecycle events
    count toward it with Meta's; a plan over it is refused with E313."""
    accounts = [live_account(a.model) for a in ms.accounts]
    plan = build_plan(ms, accounts, [])
    for quota in plan.quotas:
        used = sum(e.model.stage_count for e in ms.events if e.model.spec.account == quota.account)
        assert quota.after == quota.peak == used
        flagged = any(e.code == "E313" and f"'{quota.account}'" in e.message for e in plan.errors)
        assert flagged == (used > quota.limit)
