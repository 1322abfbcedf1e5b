"""The control plane checks an account's LinkedIn and Google Ads blocks on write, with
validate's codes, against a real ``convctl serve`` (events of every network: the property in
tests/contract/test_rules_property.py, on every backend)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from serverkit import Server
from statekit import account_spec

ACCOUNT = "nets"
BLOCKS = {"linkedin": {"adAccount": "urn:li:sponsoredAccount:5123",
                       "accessToken": {"env": "NETS_LINKEDIN_TOKEN"}},
          "google": {"customerId": "1234567890", "accessToken": {"env": "NETS_GOOGLE_TOKEN"}}}


def _spec() -> dict[str, Any]:
    return {**account_spec().model_dump(mode="json", by_alias=True), **BLOCKS}


@pytest.fixture(scope="module")
def admin(server: Server) -> Iterator[httpx.Client]:
    with server.client("write") as client:
        response = client.put(f"/v1/accounts/{ACCOUNT}", json={"spec": _spec()})
        assert response.status_code == 201, response.text
        yield client


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


LIVE = "nets-live"


def test_removing_a_block_live_events_use_is_422_e128_and_changes_nothing(
        admin: httpx.Client) -> None:
    """PUT of an account without its linkedin block while a LinkedIn event lives: validate's
    E128 (R1), one line, no partial write; deleting the event first lets the block go."""
    event = {"name": "li-demo", "spec": {
        "account": LIVE, "network": "linkedin",
        "conversionRule": "urn:lla:llaPartnerConversion:7001",
        "trigger": {"formSubmission": {"formId": "0b8f6c9e-2c1a-4bd7-9e0b-6a1f1f9c2d10",
                                       "consent": {"property": "ads_consent", "value": "yes"}}},
        "dataSharing": {"properties": ["email"]}}}
    put = admin.put(f"/v1/accounts/{LIVE}", json={"spec": {**_spec(), "portalId": 98}})
    assert put.status_code == 201, put.text
    created = admin.post(f"/v1/accounts/{LIVE}/events", json=event)
    assert created.status_code == 201, created.text
    before = admin.get("/v1/accounts").json()
    spec = {k: v for k, v in _spec().items() if k != "linkedin"}
    response = admin.put(f"/v1/accounts/{LIVE}", json={"spec": spec},
                         headers={"If-Match": "1"})
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert (error["code"], error["rule"]) == ("E128", "R1")
    assert error["message"] == (
        f"account '{LIVE}' has no linkedin block: LinkedIn events need "
        "their account to set up LinkedIn; delete its live LinkedIn events first ('li-demo')")
    assert admin.get("/v1/accounts").json() == before  # nothing written
    deleted = admin.delete(f"/v1/events/{created.json()['id']}")
    assert deleted.status_code == 204, deleted.text
    response = admin.put(f"/v1/accounts/{LIVE}", json={"spec": spec},
                         headers={"If-Match": "1"})
    assert response.status_code == 200, response.text
    assert "linkedin" not in response.json()["spec"]
