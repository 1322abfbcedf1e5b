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
