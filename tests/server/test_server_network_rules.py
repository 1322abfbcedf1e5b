"""The control plane refuses a LinkedIn or Google Ads write exactly when ``convctl validate``
refuses the same manifest, with one of validate's codes (R1, R8, R13), against a real
``convctl serve``; the account's network blocks are checked on write too."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from serverkit import Server
from statekit import account_spec

from reconciler.adapters.manifests import load

ACCOUNT = "nets"
FORM = "0b8f6c9e-2c1a-4bd7-9e0b-6a1f1f9c2d10"
BLOCKS = {"linkedin": {"adAccount": "urn:li:sponsoredAccount:5123",
                       "accessToken": {"env": "NETS_LINKEDIN_TOKEN"}},
          "google": {"customerId": "1234567890", "accessToken": {"env": "NETS_GOOGLE_TOKEN"}}}
NAMES = (f"ev-{i}" for i in itertools.count())


def _spec() -> dict[str, Any]:
    return {**account_spec().model_dump(mode="json", by_alias=True), **BLOCKS}


@pytest.fixture(scope="module")
def admin(server: Server) -> Iterator[httpx.Client]:
    with server.client("write") as client:
        response = client.put(f"/v1/accounts/{ACCOUNT}", json={"spec": _spec()})
        assert response.status_code == 201, response.text
        yield client


@st.composite
def event_specs(draw: st.DrawFn) -> dict[str, Any]:
    """A LinkedIn or Google Ads event, right or with Meta-only options / wrong targets."""
    network = draw(st.sampled_from(["linkedin", "google"]))
    spec: dict[str, Any] = {"account": ACCOUNT, "network": network}
    key, good, bad = (("conversionRule", "urn:lla:llaPartnerConversion:7001", "urn:li:x:1")
                      if network == "linkedin" else ("conversionAction", "6601", "AW-6601"))
    spec[key] = draw(st.sampled_from([good, good, bad]))
    if draw(st.integers(0, 3)) == 0:
        spec["adAccount"] = "act_1234567890"  # Meta's target (E121)
    if draw(st.booleans()):
        form: dict[str, Any] = {"formId": FORM, "consent": {"property": "c", "value": "yes"}}
        if draw(st.integers(0, 3)) == 0:
            form["facebookEvent"] = "Lead"  # E314
        spec["trigger"] = {"formSubmission": form}
    else:
        spec["trigger"] = {"lifecycleStageChange": {
            "stages": ["customer"],
            "contacts": draw(st.sampled_from(["all", "all", "adInteractions"]))}}  # E316
    if draw(st.integers(0, 4)) == 0:
        spec["dataProcessingOptions"] = {"options": []}  # E315
    spec["dataSharing"] = {"properties": ["email"]}
    return spec


def _validate_codes(tmp: Path, name: str, spec: dict[str, Any]) -> set[str]:
    """The errors ``convctl validate`` reports for this event next to its account."""
    docs = [{"apiVersion": "convctl/v1", "kind": "Account", "metadata": {"name": ACCOUNT},
             "spec": _spec()},
            {"apiVersion": "convctl/v1", "kind": "ConversionEvent", "metadata": {"name": name},
             "spec": spec}]
    path = tmp / "m.yaml"
    path.write_text(yaml.safe_dump_all(docs), encoding="utf-8")
    _, diags = load([path])
    return {d.code for d in diags.errors}


@given(spec=event_specs())
def test_a_write_is_refused_exactly_when_validate_refuses_it(
        admin: httpx.Client, tmp_path_factory: pytest.TempPathFactory,
        spec: dict[str, Any]) -> None:
    name = next(NAMES)
    expected = _validate_codes(tmp_path_factory.mktemp("v"), name, spec)
    body = {"name": name, "spec": spec}
    response = admin.post(f"/v1/accounts/{ACCOUNT}/events", json=body)
    if not expected:
        assert response.status_code == 201, response.text
        created = response.json()
        assert created["spec"]["network"] == spec["network"]
        assert admin.delete(f"/v1/events/{created['id']}").status_code in (200, 204)
    else:
        assert response.status_code == 422, response.text
        assert response.json()["error"]["code"] in expected


@pytest.mark.parametrize(("block", "field", "value", "code"), [
    ("linkedin", "adAccount", "urn:li:organization:5", "E122"),
    ("linkedin", "version", "209901", "E123"),
    ("google", "customerId", "123-456-7890", "E125"),
    ("google", "loginCustomerId", "42", "E126"),
])
def test_an_account_with_a_bad_network_block_is_422(admin: httpx.Client, block: str,
                                                    field: str, value: str, code: str) -> None:
    spec = _spec()
    spec[block] = {**spec[block], field: value}
    response = admin.put("/v1/accounts/nets-bad", json={"spec": {**spec, "portalId": 99}})
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == code
    assert "nets-bad" not in admin.get("/v1/accounts").text  # nothing written
