"""Property: a plan that removes network blocks from an account, together with (or after) the
events of those networks, applies through a real backend (the in-memory provider, which refuses
an account update stranding live events, E128, R1) and re-plans empty: the events are deleted
or moved off a network before its block goes, and an event needing a form the same account
change adds is created after it. Events are deleted, moved to a kept network (a replace), moved
to the new form (a replace that needs the account change first), or kept; new ones use any form.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.adapters.state.memory import MemoryProvider
from reconciler.core.models import Account, ConversionEvent
from reconciler.core.planner import build_plan
from reconciler.core.source import Located, SourceMap
from reconciler.core.validate import ManifestSet
from reconciler.services.apply import apply_plan

SRC = SourceMap("<generated>")
OLD_FORM, NEW_FORM = "form-old", "form-new"
BLOCKS = {"facebook": {"businessId": "112233", "pixelId": "123456789012345",
                       "adAccounts": ["act_111"], "accessToken": {"env": "T"}},
          "linkedin": {"adAccount": "urn:li:sponsoredAccount:5", "accessToken": {"env": "L"}},
          "google": {"customerId": "1234567890", "accessToken": {"env": "G"}}}
NETWORK_OF = {"facebook": "meta", "linkedin": "linkedin", "google": "google"}


def _account(blocks: list[str], forms: list[str]) -> Account:
    return Account.model_validate({
        "apiVersion": "convctl/v1", "kind": "Account", "metadata": {"name": "acme"},
        "spec": {"portalId": 7, "tier": "enterprise", "leadSync": True,
                 "forms": [{"id": f, "name": f} for f in forms],
                 **{b: BLOCKS[b] for b in blocks}}})


def _event(name: str, network: str, target: int, form: str | None) -> ConversionEvent:
    """A form event (``form``) or a one-stage lifecycle event (``form=None``) of ``network``."""
    dest: dict[str, Any] = {
        "meta": {"adAccount": "act_111"},
        "linkedin": {"network": "linkedin",
                     "conversionRule": f"urn:lla:llaPartnerConversion:{target}"},
        "google": {"network": "google", "conversionAction": str(target)}}[network]
    if form is None:
        trigger: dict[str, Any] = {"lifecycleStageChange": {"stages": ["customer"]}}
    else:
        trigger = {"formSubmission": {"formId": form, "consent": {"property": "c", "value": "y"},
                                      **({"facebookEvent": "Lead"} if network == "meta" else {})}}
    return ConversionEvent.model_validate({
        "apiVersion": "convctl/v1", "kind": "ConversionEvent", "metadata": {"name": name},
        "spec": {"account": "acme", **dest, "trigger": trigger}})


def _manifests(account: Account, events: list[ConversionEvent]) -> ManifestSet:
    ms = ManifestSet()
    ms.accounts.append(Located(account, SRC))
    ms.events.extend(Located(ev, SRC) for ev in events)
    return ms


@st.composite
def block_removals(draw: st.DrawFn) -> tuple[ManifestSet, ManifestSet]:
    """(first desired state, second): every block first, then some removed."""
    gone = draw(st.lists(st.sampled_from(list(BLOCKS)), min_size=1, max_size=2, unique=True))
    kept = [b for b in BLOCKS if b not in gone]
    adds_form = draw(st.booleans())
    first, second = [], []
    for i in range(draw(st.integers(1, 5))):
        network = NETWORK_OF[draw(st.sampled_from(list(BLOCKS)))]
        form = draw(st.sampled_from([OLD_FORM, None]))
        first.append(_event(f"e{i}", network, i, form))
        moved_off = network not in {NETWORK_OF[b] for b in kept}
        edit = draw(st.sampled_from(["delete", "move", "new-form", "keep"]))
        if edit == "delete" or (moved_off and edit != "move"):
            continue
        if edit == "move" or moved_off:  # a replace: network is immutable
            second.append(_event(f"e{i}", NETWORK_OF[draw(st.sampled_from(kept))], i, form))
        elif edit == "new-form" and adds_form and form is not None:  # a replace needing it
            second.append(_event(f"e{i}", network, i, NEW_FORM))
        else:
            second.append(first[-1])
    for j in range(draw(st.integers(0, 2))):
        network = NETWORK_OF[draw(st.sampled_from(kept))]
        form = draw(st.sampled_from([NEW_FORM if adds_form else OLD_FORM, None]))
        second.append(_event(f"n{j}", network, 100 + j, form))
    forms = [OLD_FORM, NEW_FORM] if adds_form else [OLD_FORM]
    return (_manifests(_account(list(BLOCKS), [OLD_FORM]), first),
            _manifests(_account(kept, forms), second))


def _apply(provider: MemoryProvider, ms: ManifestSet) -> None:
    plan = build_plan(ms, provider.list_accounts(), provider.list_events(),
                      allow_mass_delete=True)
    assert not plan.errors, plan.errors
    report = apply_plan(plan, provider, progress=lambda _: None, holder="test")
    assert report.ok, [(s.description, s.detail) for s in report.steps if s.detail]


@settings(max_examples=200)  # about 1 s: more cases of which event moves where
@given(block_removals())
def test_removing_blocks_with_their_events_applies_and_replans_empty(
        states: tuple[ManifestSet, ManifestSet]) -> None:
    first, second = states
    provider = MemoryProvider()
    _apply(provider, first)
    _apply(provider, second)
    [account] = provider.list_accounts()
    assert account.spec == second.accounts[0].model.spec
    assert sorted((e.name, e.spec.destination) for e in provider.list_events()) == sorted(
        (d.model.name, d.model.spec.destination) for d in second.events)
    assert build_plan(second, provider.list_accounts(), provider.list_events()).changes == ()
