"""The HubSpot CRM contact source against a loopback fake of the batch-read API."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fakes.hubspot_crm import FakeHubSpotCrm

from reconciler.adapters.agentstore import AgentStore
from reconciler.adapters.contacts import EmbeddedContacts, HubSpotContacts, LayeredContacts
from reconciler.core.crm import Contact
from reconciler.core.live import LiveAccount
from reconciler.core.models import AccountSpec
from reconciler.errors import PermanentError, TransientError

ACCOUNT = LiveAccount(name="globex", updated_at=datetime(2026, 1, 1, tzinfo=UTC),
                      spec=AccountSpec.model_validate({
                          "portalId": 9087321, "tier": "enterprise", "facebook": {
                              "businessId": "5566778899", "pixelId": "987654321098765",
                              "adAccounts": ["act_1"], "accessToken": {"env": "X"},
                              "leadIdProperty": "fb_lead_id",
                              "adInteractionProperty": "fb_ad_clicked"}}))


@pytest.fixture
def crm() -> Iterator[FakeHubSpotCrm]:
    contacts = {str(i): {"email": f"p{i}@x.com", "fb_lead_id": "123456789012345",
                         "fb_ad_clicked": "true" if i % 2 else "false",
                         "gdpr_ads_consent": "true", "hs_predictivecontactscore_v2": "12.5"}
                for i in range(250)}
    with FakeHubSpotCrm(token="hs-SECRET", contacts=contacts) as fake:
        yield fake


def source(crm: FakeHubSpotCrm, token: str = "hs-SECRET",
           sleeps: list[float] | None = None) -> HubSpotContacts:
    record = sleeps if sleeps is not None else []
    return HubSpotContacts(crm.base_url, token, sleep=record.append, max_tries=3)


def test_batch_read_in_chunks_of_100_with_the_account_properties(crm: FakeHubSpotCrm) -> None:
    found = source(crm).fetch(ACCOUNT, [str(i) for i in range(250)], ["gdpr_ads_consent"])
    assert [len(r["ids"]) for r in crm.requests] == [100, 100, 50]
    props = set(crm.requests[0]["properties"])
    assert {"fb_lead_id", "fb_ad_clicked", "gdpr_ads_consent", "email", "phone",
            "hs_predictivecontactscore_v2"} <= props
    assert len(found) == 250
    one = found["1"]
    assert (one.portal_id, one.meta_lead_id, one.ad_interaction) == (9087321, "123456789012345",
                                                                      True)
    assert not found["2"].ad_interaction
    assert one.properties["gdpr_ads_consent"] == "true"
    assert "phone" not in one.properties  # unset (null) properties are left out


def test_unknown_ids_are_absent(crm: FakeHubSpotCrm) -> None:
    assert list(source(crm).fetch(ACCOUNT, ["1", "nope"])) == ["1"]


def test_429_honours_retry_after_through_the_injected_sleep(crm: FakeHubSpotCrm) -> None:
    crm.rate_limit_next(2, retry_after=3)
    sleeps: list[float] = []
    assert len(source(crm, sleeps=sleeps).fetch(ACCOUNT, ["1", "2"])) == 2
    assert sleeps == [3.0, 3.0]


def test_429_without_retry_after_backs_off_then_gives_up(crm: FakeHubSpotCrm) -> None:
    crm.rate_limit_next(5)
    sleeps: list[float] = []
    with pytest.raises(TransientError, match="after 3 tries"):
        source(crm, sleeps=sleeps).fetch(ACCOUNT, ["1"])
    assert sleeps == [1.0, 2.0]


def test_wrong_token_is_permanent_and_not_echoed(crm: FakeHubSpotCrm) -> None:
    with pytest.raises(PermanentError) as info:
        source(crm, token="wrong-SECRET").fetch(ACCOUNT, ["1"])
    assert "401" in str(info.value) and "SECRET" not in str(info.value)


def test_layered_source_lays_received_fields_over_the_crm(crm: FakeHubSpotCrm,
                                                          tmp_path: Path) -> None:
    store = AgentStore(tmp_path / "s.db")
    try:
        store.upsert_contacts([Contact(9087321, "1", {"phone": "+44 20 7946 0000"}),
                               Contact(9087321, "submission:abc", {"email": "f@x.com"})])
        layered = LayeredContacts(source(crm), EmbeddedContacts(store))
        found = layered.fetch(ACCOUNT, ["1", "3", "submission:abc"])
    finally:
        store.close()
    assert found["1"].properties["phone"] == "+44 20 7946 0000"
    assert found["1"].properties["email"] == "p1@x.com"
    assert found["submission:abc"].properties == {"email": "f@x.com"}
    assert "submission:abc" not in crm.requests[0]["ids"]
