"""Audit of issue 5, item 1 (in process): a 2xx only once the events are committed. When the
inbox cannot be written both ingest endpoints answer ``503 ingest_unavailable`` with a
``Retry-After`` (HubSpot and the form relay retry) and leak nothing; a webhook of exactly 100
events is taken whole; events of a portal no account manages are acknowledged, not refused."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient
from webhookkit import SECRET, now_ms, post, stage_event

from reconciler.adapters.agentstore import AgentStore, IngestResult
from reconciler.adapters.state.sqlite import SqliteProvider
from reconciler.adapters.state.tokens import SqliteTokenStore
from reconciler.server.app import create_app
from reconciler.server.ingest import WebhookSettings

URL = "http://testserver/v1/webhooks/hubspot"
DEMO_FORM = "0b8f6c9e-2c1a-4bd7-9e0b-6a1f1f9c2d10"


class BrokenInbox(AgentStore):
    """An agent store whose writes fail the way a locked or full disk does."""

    broken = True

    def ingest(self, items: Sequence[Any], contacts: Sequence[Any] = (),
               drops: Any = None) -> IngestResult:
        if self.broken:
            from reconciler.errors import StateError
            raise StateError("database is locked (jane@example.com)")
        return super().ingest(items, contacts, drops)


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[tuple[TestClient, BrokenInbox, str]]:
    state = tmp_path / "state.db"
    tokens = SqliteTokenStore(state)
    _, secret = tokens.create(["ingest"], name="relay")
    inbox = BrokenInbox(state)
    app = create_app(SqliteProvider(state), tokens, inbox=inbox,
                     webhooks=WebhookSettings(client_secret=SECRET))
    with TestClient(app, base_url="http://testserver") as client:
        yield client, inbox, secret
    inbox.close()


def form(submission: str, portal: int = 4412345) -> dict[str, Any]:
    return {"formId": DEMO_FORM, "portalId": portal, "submittedAt": now_ms(),
            "submissionId": submission, "contactId": "601",
            "fields": [{"name": "email", "value": "jane@example.com"}],
            "context": {"ipAddress": "203.0.113.9", "pageUri": "https://acme.example/demo"},
            "userAgent": "Mozilla/5.0"}


def test_a_store_that_cannot_be_written_is_503_with_retry_after(
        rig: tuple[TestClient, BrokenInbox, str]) -> None:
    client, inbox, secret = rig
    hook = post(client, URL, [stage_event(101, event_id=1)])
    forms = client.post("/v1/ingest/forms", json=form("s-1"),
                        headers={"Authorization": f"Bearer {secret}"})
    for response in (hook, forms):
        assert response.status_code == 503, response.text
        assert response.json()["error"]["code"] == "ingest_unavailable"
        assert response.headers["retry-after"] == "5"
        assert "jane@" not in response.text and "locked" not in response.text
    assert inbox.status().as_json()["inbox"] == {"new": 0, "processed": 0}
    inbox.broken = False  # the retry of the very same requests is then taken
    assert post(client, URL, [stage_event(101, event_id=1)]).json() == {
        "accepted": 1, "duplicates": 0}
    again = client.post("/v1/ingest/forms", json=form("s-1"),
                        headers={"Authorization": f"Bearer {secret}"})
    assert (again.status_code, again.json()) == (202, {"accepted": 1, "duplicates": 0})


def test_a_webhook_of_exactly_100_events_is_taken_whole(
        rig: tuple[TestClient, BrokenInbox, str]) -> None:
    client, inbox, _ = rig
    inbox.broken = False
    response = post(client, URL, [stage_event(200 + i, event_id=i) for i in range(100)])
    assert (response.status_code, response.json()) == (202, {"accepted": 100, "duplicates": 0})
    assert len(inbox.pending(1000)) == 100


def test_events_of_an_unknown_portal_are_acknowledged(
        rig: tuple[TestClient, BrokenInbox, str]) -> None:
    client, inbox, secret = rig
    inbox.broken = False
    hook = post(client, URL, [stage_event(301, event_id=3, portal=1)])
    forms = client.post("/v1/ingest/forms", json=form("s-9", portal=1),
                        headers={"Authorization": f"Bearer {secret}"})
    assert (hook.status_code, forms.status_code) == (202, 202)
    assert len(inbox.pending(10)) == 2
