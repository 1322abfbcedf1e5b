"""Property (issue 10 item 9): for generated events, ``convctl validate`` accepts the manifest
exactly when the backend accepts the write, and a refusal carries validate's first code. Events
of the three networks (Meta, LinkedIn, Google Ads: issue 16) on an account with all three blocks.

Validate runs the real loader on real files (account.yaml next to event.yaml); the write goes to
every backend (memory, sqlite, http, a real ``convctl serve``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from statekit import account_spec

from reconciler.adapters.manifests import load
from reconciler.core.live import EventWrite
from reconciler.core.models import EventSpec
from reconciler.core.provider import Provider
from reconciler.errors import RuleViolationError

FORM = "0b8f6c9e-2c1a-4bd7-9e0b-6a1f1f9c2d10"
TOKENS = ("EAAG" + "x1Y2z3" * 6, "cvt_" + "Q7-vK_2m" * 4)

def _lifecycle(stages: list[str]) -> dict[str, Any]:
    return {"lifecycleStageChange": {"stages": stages}}


def _form(**fields: Any) -> dict[str, Any]:
    base = {"formId": FORM, "facebookEvent": "Lead", "consent": {"property": "fb_consent",
                                                                  "value": "yes"}}
    return {"formSubmission": {k: v for k, v in {**base, **fields}.items() if v is not None}}


# Valid events, each then broken by zero to two of these edits (name, spec, labels).
NAMES = ["demo", "demo-2", "a1"]
BAD_NAMES = ["Demo", "../../etc/x\n\u202e", "-x", "a" * 64, "ok\u202e", "x.replaced-ev_1"]
TRIGGERS = [_lifecycle(["lead"]), _lifecycle(["customer", "1452450030", "1000001"]),
            _form(), _form(facebookEvent="custom:Big Deal", value={"amount": 12, "currency":
                                                                   "EUR"})]
BAD_TRIGGERS = [_lifecycle(s) for s in (["lead", "other"], ["Lead"], ["lead", "lead "],
                                        ["LEAD"], ["9999"], [], ["lead", "lead"])] + [
    _form(formId="external-form"), _form(facebookEvent="lead"), _form(facebookEvent="custom:"),
    _form(consent=None), _form(consent={"property": " ", "value": "yes"}),
    _form(value={"amount": 0.0, "currency": "EUR"}), _form(value={"amount": 5, "currency": "eur"})]
EDITS: list[tuple[str, Any]] = [
    *(("name", n) for n in BAD_NAMES), *(("trigger", t) for t in BAD_TRIGGERS),
    ("adAccount", "act_999"), ("adAccount", "1234"),
    ("dataSharing", {"properties": ["nosuch"]}), ("dataSharing", {"userAgent": False}),
    ("dataSharing", {"properties": [{"property": "x", "as": "bogus"}]}),
    *(("labels", {"note": v}) for v in (*TOKENS, f"see {TOKENS[1]}"))]


# The networks' blocks of the account, and what breaks a LinkedIn or Google Ads event (R1, R8,
# R13): another network's target, a malformed one, Meta-only options.
BLOCKS = {"linkedin": {"adAccount": "urn:li:sponsoredAccount:5123",
                       "accessToken": {"env": "ACME_LINKEDIN_TOKEN"}},
          "google": {"customerId": "1234567890", "accessToken": {"env": "ACME_GOOGLE_TOKEN"}}}
TARGETS = {"linkedin": ("conversionRule", "urn:lla:llaPartnerConversion:7001"),
           "google": ("conversionAction", "6601")}
NETWORK_EDITS: list[tuple[str, Any]] = [
    ("adAccount", "act_1234567890"), ("conversionRule", "urn:lla:llaPartnerConversion:7"),
    ("conversionRule", "urn:li:x:1"), ("conversionAction", "AW-6601"),
    ("conversionAction", "6602"), ("network", "linkedin"), ("network", "google"),
    ("network", "meta"), ("dataProcessingOptions", {"options": []}), ("trigger", _form()),
    ("trigger", {"lifecycleStageChange": {"stages": ["lead"], "contacts": "adInteractions"}})]
ALL_EDITS = EDITS + NETWORK_EDITS


def _on_network(spec: dict[str, Any], network: str) -> dict[str, Any]:
    """The valid Meta event ``spec`` as an event of ``network``."""
    if network == "meta":
        return spec
    key, target = TARGETS[network]
    trigger = spec["trigger"]
    if "formSubmission" in trigger:  # facebookEvent is Meta's (E314)
        form = {k: v for k, v in trigger["formSubmission"].items() if k != "facebookEvent"}
        trigger = {"formSubmission": form}
    rest = {k: v for k, v in spec.items() if k not in ("adAccount", "trigger")}
    return {**rest, "network": network, key: target, "trigger": trigger}


@st.composite
def events(draw: st.DrawFn) -> tuple[str, dict[str, Any], dict[str, str]]:
    name = draw(st.sampled_from(NAMES))
    spec: dict[str, Any] = {"account": "acme", "adAccount": "act_1234567890",
                            "trigger": draw(st.sampled_from(TRIGGERS)),
                            "dataSharing": {"properties": ["email"]}}
    spec = _on_network(spec, draw(st.sampled_from(["meta", "linkedin", "google"])))
    labels = {"team": "growth"}
    picks = draw(st.lists(st.integers(0, len(ALL_EDITS) - 1), max_size=2, unique=True))
    for field, value in (ALL_EDITS[i] for i in picks):
        if field == "name":
            name = value
        elif field == "labels":
            labels = dict(value)
        else:
            spec[field] = value
    return name, spec, labels


def _validate_codes(folder: Path, name: str, spec: dict[str, Any],
                    event_labels: dict[str, str]) -> list[str]:
    """Error codes ``validate`` reports for the event's file, in the order it finds them."""
    account = {"apiVersion": "convctl/v1", "kind": "Account", "metadata": {"name": "acme"},
               "spec": account_spec(**BLOCKS).model_dump(mode="json", by_alias=True)}
    event = {"apiVersion": "convctl/v1", "kind": "ConversionEvent",
             "metadata": {"name": name, "labels": event_labels}, "spec": spec}
    (folder / "account.yaml").write_bytes(orjson.dumps(account))  # JSON is YAML
    (folder / "event.yaml").write_bytes(orjson.dumps(event))
    _, diags = load([folder])
    return [d.code for d in diags.errors if d.location is not None
            and d.location.file.endswith("event.yaml") and d.code != "E313"]


@pytest.fixture
def acme(provider: Provider) -> Provider:
    provider.put_account("acme", account_spec(**BLOCKS), {}, None)
    return provider


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
          max_examples=40)
@given(case=events())
def test_validate_accepts_exactly_what_the_backend_accepts(
        acme: Provider, tmp_path: Path, case: tuple[str, dict[str, Any], dict[str, str]]) -> None:
    name, spec, event_labels = case
    expected = _validate_codes(tmp_path, name, spec, event_labels)
    write = EventWrite(account="acme", name=name, spec=EventSpec.model_validate(spec, strict=True),
                       labels=event_labels)
    event("validate refuses" if expected else "validate accepts")
    event(f"network {spec.get('network') or 'meta'}")
    try:
        created = acme.create_event(write)
    except RuleViolationError as exc:
        assert expected, f"validate accepts {name!r} {spec} but the backend refused: {exc}"
        assert exc.code == expected[0]
        assert not any(token in str(exc) for token in TOKENS)
    else:
        assert not expected, f"validate refuses ({expected}) what the backend accepted"
        acme.delete_event(created.id)
    assert acme.list_events() == []
