"""Every backend refuses the writes ``convctl validate`` refuses, with validate's code and R-rule
(issue 10 item 9, item 12): one attack per test, run on memory, sqlite and http (the server app
behind the test harness). A refused write changes nothing. The real ``convctl serve`` gets the
same attacks in ``tests/server/test_server_rules.py`` and the property in
``test_rules_property.py`` (one server each, not one per case)."""

from __future__ import annotations

from typing import Any

import pytest
from statekit import account_spec, form_event, lifecycle_event

from reconciler.core.live import EventWrite
from reconciler.core.models import EventSpec
from reconciler.core.provider import Provider
from reconciler.errors import RuleViolationError

META_TOKEN = "EAAG" + "x1Y2z3" * 6
CVT_TOKEN = "cvt_" + "Q7-vK_2m" * 4


@pytest.fixture(autouse=True)
def _no_server_per_case(request: pytest.FixtureRequest) -> None:
    if request.node.callspec.params.get("provider") == "serve":
        pytest.skip("one `convctl serve` per case is slow: see tests/server/test_server_rules.py")


def _acme(provider: Provider) -> None:
    provider.put_account("acme", account_spec(), {}, None)


def _refused(provider: Provider, write: EventWrite, code: str, rule: str | None) -> str:
    with pytest.raises(RuleViolationError) as caught:
        provider.create_event(write)
    assert (caught.value.code, caught.value.rule) == (code, rule)
    assert provider.list_events() == []  # nothing written
    text = str(caught.value)
    assert "\n" not in text and "\u202e" not in text  # one safe line, whatever the input
    return text


def _with_stages(stages: list[str]) -> EventWrite:
    return lifecycle_event("funnel", 0, trigger={"lifecycleStageChange": {"stages": stages}})


def test_stage_other_is_refused_r6(provider: Provider) -> None:
    _acme(provider)
    text = _refused(provider, _with_stages(["lead", "other"]), "E304", "R6")
    assert "'other' is not supported" in text


def test_unknown_stage_is_refused_r6(provider: Provider) -> None:
    _acme(provider)
    _refused(provider, _with_stages(["nosuchstage"]), "E305", "R6")


@pytest.mark.parametrize("variant", ["Lead", "LEAD", "lead "])
def test_stage_spellings_are_not_stages(provider: Provider, variant: str) -> None:
    """`Lead`, `LEAD`, `lead ` are not the stage `lead` (validate refuses them too): they can
    no longer take extra quota slots."""
    _acme(provider)
    text = _refused(provider, _with_stages(["lead", variant]), "E305", "R6")
    assert "did you mean 'lead'?" in text or variant != "Lead"


def test_stage_four_spellings_never_take_four_slots(provider: Provider) -> None:
    _acme(provider)
    _refused(provider, _with_stages(["lead", "lead ", "Lead", "LEAD"]), "E305", "R6")
    provider.create_event(_with_stages(["lead"]))
    assert [e.stage_count for e in provider.list_events()] == [1]


def test_stage_selected_twice_is_refused(provider: Provider) -> None:
    _acme(provider)
    _refused(provider, _with_stages(["lead", "lead"]), "E306", "R6")


def test_ad_account_of_another_account_is_refused_r1(provider: Provider) -> None:
    _acme(provider)
    _refused(provider, form_event("demo", adAccount="act_999"), "E202", "R1")


def test_external_form_is_refused_r12(provider: Provider) -> None:
    _acme(provider)
    write = form_event("demo")
    spec = write.spec.model_dump(by_alias=True)
    spec["trigger"]["formSubmission"]["formId"] = "not-a-form-of-acme"
    _refused(provider, write.model_copy(update={"spec": EventSpec.model_validate(spec)}),
             "E203", "R12")


@pytest.mark.parametrize("name", ["../../etc/x\n\u202e", "Demo", "demo\u202egnp", "-demo", ""])
def test_hostile_names_are_refused(provider: Provider, name: str) -> None:
    _acme(provider)
    text = _refused(provider, form_event("x").model_copy(update={"name": name}), "E106", None)
    assert "\\n" in text or "\n" not in name


@pytest.mark.parametrize("token", [META_TOKEN, CVT_TOKEN])
def test_token_in_a_label_is_refused_and_not_echoed(provider: Provider, token: str) -> None:
    _acme(provider)
    write = form_event("demo").model_copy(update={"labels": {"note": f"key {token}"}})
    text = _refused(provider, write, "E104", None)
    assert token not in text


def test_lifecycle_event_without_lead_sync_is_refused_r5(provider: Provider) -> None:
    provider.put_account("acme", account_spec(leadSync=False), {}, None)
    _refused(provider, lifecycle_event("funnel", 2), "E302", "R5")


def test_update_is_checked_like_a_create(provider: Provider) -> None:
    _acme(provider)
    live = provider.create_event(_with_stages(["lead"]))
    with pytest.raises(RuleViolationError) as caught:
        provider.update_event(live.id, _with_stages(["lead", "other"]), live.version)
    assert (caught.value.code, caught.value.rule) == ("E304", "R6")
    assert provider.get_event(live.id) == live


def test_replace_may_park_the_old_event_under_its_parked_name(provider: Provider) -> None:
    """apply's create-first replace renames the old event ``NAME.replaced-ID`` (a name no
    manifest can use) with its old spec, even when the account has moved on."""
    _acme(provider)
    live = provider.create_event(form_event("demo"))
    provider.put_account("acme", account_spec(facebook={
        **account_spec().facebook.model_dump(by_alias=True), "adAccounts": ["act_42"]}), {}, 1)
    parked = live.name + ".replaced-" + live.id
    write = EventWrite(account="acme", name=parked, spec=live.spec, labels=live.labels)
    assert provider.update_event(live.id, write, live.version).name == parked
    with pytest.raises(RuleViolationError):  # but only that event, unchanged
        provider.update_event(live.id, write.model_copy(update={"name": "x.replaced-ev_1"}), 2)


@pytest.mark.parametrize(("overrides", "code", "rule"), [
    ({"facebook": {"businessId": "12", "pixelId": "123456789012345", "adAccounts": ["act_1"],
                   "accessToken": {"env": "T"}}}, "E110", "R2"),
    ({"facebook": {"businessId": "1122334455", "pixelId": "42", "adAccounts": ["act_1"],
                   "accessToken": {"env": "T"}}}, "E111", "R3"),
    ({"facebook": {"businessId": "1122334455", "pixelId": "123456789012345",
                   "adAccounts": ["1234"], "accessToken": {"env": "T"}}}, "E112", "R2"),
    ({"facebook": {"businessId": "1122334455", "pixelId": "123456789012345",
                   "adAccounts": ["act_1"], "accessToken": {"env": META_TOKEN}}}, "E104", None),
    ({"customLifecycleStages": [{"id": "7", "label": "a"}, {"id": "7", "label": "b"}]},
     "E207", "R6"),
])
def test_account_writes_are_checked(provider: Provider, overrides: dict[str, Any], code: str,
                                    rule: str | None) -> None:
    with pytest.raises(RuleViolationError) as caught:
        provider.put_account("acme", account_spec(**overrides), {}, None)
    assert (caught.value.code, caught.value.rule) == (code, rule)
    assert META_TOKEN not in str(caught.value)
    assert provider.list_accounts() == []


@pytest.mark.parametrize("name", ["Acme", "../acme", "acme\n"])
def test_account_names_are_checked(provider: Provider, name: str) -> None:
    with pytest.raises(RuleViolationError) as caught:
        provider.put_account(name, account_spec(), {}, None)
    assert caught.value.code == "E106"
    assert provider.list_accounts() == []


@pytest.mark.parametrize("token", [META_TOKEN, CVT_TOKEN])
def test_token_in_an_account_label_is_refused(provider: Provider, token: str) -> None:
    with pytest.raises(RuleViolationError) as caught:
        provider.put_account("acme", account_spec(), {"owner": token}, None)
    assert caught.value.code == "E104" and token not in str(caught.value)
    assert provider.list_accounts() == []


def test_an_event_the_rules_now_refuse_can_still_be_switched_off(provider: Provider) -> None:
    """R19: switching off stops sending at once, even for an event whose account has moved on
    (its ad account removed); switching it back on is a write like any other (E202)."""
    _acme(provider)
    live = provider.create_event(form_event("demo"))
    provider.put_account("acme", account_spec(facebook={
        **account_spec().facebook.model_dump(by_alias=True), "adAccounts": ["act_42"]}), {}, 1)
    off = EventWrite(account="acme", name="demo", labels=live.labels,
                     spec=live.spec.model_copy(update={"enabled": False}))
    stored = provider.update_event(live.id, off, live.version)
    assert stored.spec.enabled is False
    on = off.model_copy(update={"spec": live.spec})
    with pytest.raises(RuleViolationError) as caught:
        provider.update_event(live.id, on, stored.version)
    assert (caught.value.code, caught.value.rule) == ("E202", "R1")
    renamed = off.model_copy(update={"name": "demo-2"})
    with pytest.raises(RuleViolationError):  # only the switch is exempt
        provider.update_event(live.id, renamed, stored.version)



_NETWORK_BLOCKS = {"linkedin": {"adAccount": "urn:li:sponsoredAccount:5123",
                                "accessToken": {"env": "ACME_LINKEDIN_TOKEN"}},
                   "google": {"customerId": "1234567890",
                              "accessToken": {"env": "ACME_GOOGLE_TOKEN"}}}
_LABELS = {"linkedin": "LinkedIn", "google": "Google Ads"}


def _on(network: str, name: str, target: int) -> EventWrite:
    """A form event of ``network``: a LinkedIn conversion rule or a Google conversion action."""
    data = form_event(name).spec.model_dump(mode="json", by_alias=True, exclude_none=True)
    del data["adAccount"], data["trigger"]["formSubmission"]["facebookEvent"]
    data |= ({"conversionRule": f"urn:lla:llaPartnerConversion:{target}"}
             if network == "linkedin" else {"conversionAction": str(target)})
    return EventWrite(account="acme", name=name,
                      spec=EventSpec.model_validate({**data, "network": network}))


@pytest.mark.parametrize("network", ["linkedin", "google"])
def test_removing_a_block_its_live_events_use_is_refused_r1(provider: Provider,
                                                           network: str) -> None:
    """E128 (R1), validate's words: an account update may not strand live events of a network
    by removing its block; nothing is written. Another block no event uses may go, and once
    the network's events are deleted so may its block."""
    provider.put_account("acme", account_spec(**_NETWORK_BLOCKS), {}, None)
    events = [provider.create_event(_on(network, name, n)) for n, name in ((1, "b"), (2, "a"))]
    provider.create_event(form_event("meta"))
    without = account_spec(**{k: v for k, v in _NETWORK_BLOCKS.items() if k != network})
    with pytest.raises(RuleViolationError) as caught:
        provider.put_account("acme", without, {}, 1)
    assert (caught.value.code, caught.value.rule) == ("E128", "R1")
    label = _LABELS[network]
    assert caught.value.detail == (
        f"account 'acme' has no {network} block: {label} events need their "
        f"account to set up {label}; delete its live {label} events first ('a' and 1 more)")
    [live] = provider.list_accounts()
    assert live.version == 1 and live.spec == account_spec(**_NETWORK_BLOCKS)  # nothing written
    other = "google" if network == "linkedin" else "linkedin"
    narrower = account_spec(**{network: _NETWORK_BLOCKS[network]})
    assert getattr(provider.put_account("acme", narrower, {}, 1).spec, other) is None
    for event in events:
        provider.delete_event(event.id)
    assert getattr(provider.put_account("acme", without, {}, 2).spec, network) is None


def test_removing_the_facebook_block_of_live_meta_events_is_refused_r1(
        provider: Provider) -> None:
    provider.put_account("acme", account_spec(**_NETWORK_BLOCKS), {}, None)
    provider.create_event(form_event("demo"))
    with pytest.raises(RuleViolationError) as caught:
        provider.put_account("acme", account_spec(facebook=None, **_NETWORK_BLOCKS), {}, 1)
    assert (caught.value.code, caught.value.rule) == ("E128", "R1")
    assert "no facebook block: Meta events" in caught.value.detail
    assert "('demo')" in caught.value.detail
    assert provider.list_accounts()[0].version == 1
