"""The ingest endpoints over a real ``convctl serve --no-agent`` (hubspot-contract.md): the v3
signature rules end to end, the URI decoding rule behind a proxy, size and shape limits,
duplicates, the forms endpoint's scopes; plus, in process, the URL the server sees by default
and the 503s of an unconfigured server."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from serverkit import Server, start_serve
from starlette.testclient import TestClient
from webhookkit import SECRET, creation_event, hmac_v3, now_ms, post, stage_event

from reconciler.adapters.agentstore import AgentStore
from reconciler.adapters.state.sqlite import SqliteProvider
from reconciler.adapters.state.tokens import SqliteTokenStore
from reconciler.core.crm import Ignored, StageChange
from reconciler.server.app import create_app
from reconciler.server.ingest import WebhookSettings

# Behind a proxy: HubSpot calls this URL (prefix and query included); the server sees
# /v1/webhooks/hubspot on 127.0.0.1. HubSpot signs it with %3A decoded and %20 kept.
PUBLIC_URL = "https://hooks.example.com/crm?tenant=a%20b&cb=x%3Ay"
SIGNED = "https://hooks.example.com/crm/v1/webhooks/hubspot?tenant=a%20b&cb=x:y"
DEMO_FORM = "0b8f6c9e-2c1a-4bd7-9e0b-6a1f1f9c2d10"


@pytest.fixture(scope="module")
def hooks(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start_serve(tmp_path_factory.mktemp("hooks"), "--no-agent",
                      env={"CONVCTL_HUBSPOT_CLIENT_SECRET": SECRET,
                           "CONVCTL_PUBLIC_URL": PUBLIC_URL})
    yield srv
    assert srv.stop() == 0, srv.output()
    log = srv.output()
    assert SECRET not in log and not any(t in log for t in srv.tokens.values())
    assert "jane@" not in log


@pytest.fixture
def client(hooks: Server) -> Iterator[httpx.Client]:
    with hooks.client(None) as c:
        yield c


@pytest.fixture
def inbox(hooks: Server) -> Iterator[AgentStore]:
    store = AgentStore(Path(hooks.state_url.removeprefix("sqlite:///")))
    yield store
    store.close()


def stored(inbox: AgentStore) -> int:
    return int(sum(inbox.status().as_json()["inbox"].values()))


def error(response: httpx.Response) -> tuple[int, str]:
    return response.status_code, response.json()["error"]["code"]


def test_valid_v3_is_stored_then_acknowledged(client: httpx.Client, inbox: AgentStore) -> None:
    body = [stage_event(101, "customer", event_id=11), creation_event(102, event_id=12)]
    response = post(client, SIGNED, body)
    assert response.status_code == 202, response.text
    assert response.json() == {"accepted": 2, "duplicates": 0}
    events = [row.event for row in inbox.pending(10_000)]
    change = next(e for e in events if isinstance(e, StageChange) and e.contact_id == "101")
    assert (change.portal_id, change.stage) == (4412345, "customer")
    assert any(isinstance(e, Ignored) and e.object_id == "102" for e in events)


@pytest.mark.parametrize(("case", "expected"), [
    ("stale", (401, "stale_signature")), ("future", (401, "stale_signature")),
    ("tampered", (401, "invalid_signature")), ("wrong_secret", (401, "invalid_signature")),
    ("missing", (401, "invalid_signature")), ("encoded_colon", (401, "invalid_signature")),
    ("decoded_space", (401, "invalid_signature")), ("legacy_v1", (401, "invalid_signature")),
])
def test_bad_signatures_are_refused_and_nothing_is_stored(
        client: httpx.Client, inbox: AgentStore, case: str, expected: tuple[int, str]) -> None:
    body = [stage_event(201, event_id=hash(case) % 10**6)]
    raw = orjson.dumps(body)
    before = stored(inbox)
    six_minutes = 6 * 60 * 1000
    response = {
        "stale": lambda: post(client, SIGNED, raw, timestamp=now_ms() - six_minutes),
        "future": lambda: post(client, SIGNED, raw, timestamp=now_ms() + six_minutes),
        "tampered": lambda: post(client, SIGNED, raw, sent_body=raw.replace(b"customer",
                                                                            b"evangelist")),
        "wrong_secret": lambda: post(client, SIGNED, raw, secret="not-the-secret"),
        "missing": lambda: client.post("/v1/webhooks/hubspot", content=raw),
        "encoded_colon": lambda: post(client, SIGNED.replace("x:y", "x%3Ay"), raw),
        "decoded_space": lambda: post(client, SIGNED.replace("a%20b", "a b"), raw),
        "legacy_v1": lambda: client.post("/v1/webhooks/hubspot", content=raw, headers={
            "X-HubSpot-Signature": "0" * 64, "X-HubSpot-Signature-Version": "v1"}),
    }[case]()
    assert error(response) == expected
    assert stored(inbox) == before
    message = response.json()["error"]["message"]
    assert SECRET not in message and "customer" not in message


def test_the_proxy_may_drop_the_query_public_url_wins(client: httpx.Client) -> None:
    response = post(client, SIGNED, [stage_event(301, event_id=31)],
                    target="/v1/webhooks/hubspot?tenant=other")
    assert response.status_code == 202


def test_size_and_shape(client: httpx.Client, inbox: AgentStore) -> None:
    before = stored(inbox)
    huge = b"[" + b",".join([orjson.dumps(stage_event(1))] * 5000) + b"]"
    assert len(huge) > 1 << 20
    assert error(post(client, SIGNED, huge)) == (413, "payload_too_large")
    assert error(post(client, SIGNED, b"[{not json")) == (400, "malformed_json")
    assert error(post(client, SIGNED, b'{"eventId": 1}')) == (400, "invalid_webhook")
    too_many = [stage_event(400 + i, event_id=i) for i in range(101)]
    response = post(client, SIGNED, too_many)
    assert error(response) == (400, "invalid_webhook")
    assert "at most 100" in response.json()["error"]["message"]
    bad_field = [{**stage_event(401), "portalId": "jane@example.com"}]
    response = post(client, SIGNED, bad_field)
    assert error(response) == (400, "invalid_webhook") and "jane@" not in response.text
    assert stored(inbox) == before


def test_an_unsigned_caller_gets_401_whatever_the_body(client: httpx.Client,
                                                       inbox: AgentStore) -> None:
    """The signature is checked before the body is parsed: garbage without a valid
    signature is 401 (not 400: an unauthenticated caller learns nothing about our parser),
    and a signed body that is not JSON is 400."""
    before = stored(inbox)
    for garbage in (b"[{not json", b"\xff\xfe", b'[{"portalId": NaN}]', b"[" * 2000):
        response = client.post("/v1/webhooks/hubspot", content=garbage,
                               headers={"content-type": "application/json"})
        assert error(response) == (401, "invalid_signature"), garbage
        assert error(post(client, SIGNED, garbage)) == (400, "malformed_json"), garbage
    assert stored(inbox) == before


def test_duplicates_are_acknowledged_once_stored_once(client: httpx.Client,
                                                      inbox: AgentStore) -> None:
    body = [stage_event(501, "lead", event_id=51, at_ms=1_790_000_000_000)]
    first, again = post(client, SIGNED, body), post(client, SIGNED, body)
    assert (first.status_code, first.json()) == (202, {"accepted": 1, "duplicates": 0})
    assert (again.status_code, again.json()) == (202, {"accepted": 0, "duplicates": 1})
    rows = [r for r in inbox.pending(10_000)
            if isinstance(r.event, StageChange) and r.event.contact_id == "501"]
    assert len(rows) == 1


def form(submission: str, **extra: Any) -> dict[str, Any]:
    return {"formId": DEMO_FORM, "portalId": 4412345, "submittedAt": now_ms(),
            "submissionId": submission, "contactId": "601",
            "fields": [{"name": "email", "value": "jane@example.com"},
                       {"name": "fb_consent", "value": "yes"}],
            "context": {"ipAddress": "203.0.113.9", "pageUri": "https://acme.example/demo"},
            "userAgent": "Mozilla/5.0", **extra}


def test_forms_need_an_ingest_token(hooks: Server, inbox: AgentStore) -> None:
    with hooks.client("ingest") as ingest, hooks.client("read") as read, \
            hooks.client(None) as anonymous:
        one = ingest.post("/v1/ingest/forms", json=form("s-1"))
        assert (one.status_code, one.json()) == (202, {"accepted": 1, "duplicates": 0})
        many = ingest.post("/v1/ingest/forms", json=[form("s-1"), form("s-2")])
        assert (many.status_code, many.json()) == (202, {"accepted": 1, "duplicates": 1})
        assert error(read.post("/v1/ingest/forms", json=form("s-3"))) == (403, "forbidden")
        assert error(anonymous.post("/v1/ingest/forms", json=form("s-4"))) == (401,
                                                                              "unauthorized")
    assert "601" in {c for c in inbox.contacts(4412345, ["601"])}


@pytest.mark.parametrize("body", [
    [form("s-5"), form("s-6", fields=[{"name": "phone", "value": 5551234567}])],
    form("s-7", email="jane@example.com"),
    form("s-8", submittedAt="jane@example.com"),
    [], "jane@example.com", [form(f"s-x{i}") for i in range(101)],
])
def test_malformed_forms_never_echo_values(hooks: Server, inbox: AgentStore,
                                           body: Any) -> None:
    before = stored(inbox)
    with hooks.client("ingest") as ingest:
        response = ingest.post("/v1/ingest/forms", json=body)
    assert error(response) == (422, "validation_error"), response.text
    for value in ("jane@", "5551234567"):
        assert value not in response.text
    assert stored(inbox) == before


def test_metrics_count_ingest_and_signature_failures(hooks: Server,
                                                     client: httpx.Client) -> None:
    # its own stale, mismatched and duplicate webhooks: the test passes in any order, alone
    # or on any xdist worker (it relied on earlier tests of the file sending them)
    raw = orjson.dumps([stage_event(901, event_id=91)])
    assert post(client, SIGNED, raw, timestamp=now_ms() - 6 * 60 * 1000).status_code == 401
    assert post(client, SIGNED, raw, secret="not-the-secret").status_code == 401
    for _ in range(2):
        assert post(client, SIGNED, raw).status_code == 202
    text = httpx.get(f"{hooks.url}/metrics", timeout=5).text
    assert 'convctl_webhook_signature_failures_total{reason="stale"}' in text
    assert 'convctl_webhook_signature_failures_total{reason="mismatch"}' in text
    assert 'convctl_ingest_events_total{result="duplicate",source="webhook"}' in text
    assert 'convctl_agent_inbox_events{state="new"}' in text
    assert "convctl_agent_running 0.0" in text


# -- in process: the URL the server sees, and an unconfigured server --------------------------

def _app(tmp: Path, webhooks: WebhookSettings | None) -> Any:
    state = tmp / "state.db"
    provider = SqliteProvider(state)
    return create_app(provider, SqliteTokenStore(state), inbox=AgentStore(state),
                      webhooks=webhooks)


def test_default_signed_url_is_the_one_the_server_sees(tmp_path: Path) -> None:
    app = _app(tmp_path, WebhookSettings(client_secret=SECRET))
    with TestClient(app, base_url="http://testserver") as c:
        target = "/v1/webhooks/hubspot?q=a%20b&r=%3A%2f"
        seen = "http://testserver/v1/webhooks/hubspot?q=a%20b&r=:/"
        assert post(c, seen, [stage_event(1)], target=target).status_code == 202
        assert post(c, seen.replace("a%20b", "a b"), [stage_event(2)],
                    target=target).status_code == 401


def test_base_url_prefix_and_legacy_when_allowed(tmp_path: Path) -> None:
    import hashlib

    settings = WebhookSettings(client_secret=SECRET, public_url="https://h.example/p/",
                               allow_legacy=True)
    with TestClient(_app(tmp_path, settings)) as c:
        assert post(c, "https://h.example/p/v1/webhooks/hubspot?x=1", [stage_event(1)],
                    target="/v1/webhooks/hubspot?x=1").status_code == 202
        raw = orjson.dumps([stage_event(2)])
        v1 = hashlib.sha256(SECRET.encode() + raw).hexdigest()
        legacy = c.post("/v1/webhooks/hubspot", content=raw,
                        headers={"X-HubSpot-Signature": v1, "Content-Type": "application/json"})
        assert legacy.status_code == 202
        assert hmac_v3(SECRET, "x", b"", 1) != hmac_v3("other", "x", b"", 1)


def test_unconfigured_webhooks_are_503(tmp_path: Path) -> None:
    with TestClient(_app(tmp_path, None)) as c:
        response = post(c, "http://testserver/v1/webhooks/hubspot", [stage_event(1)])
    assert error(response) == (503, "webhooks_not_configured")


def test_an_invalid_ip_or_user_agent_is_dropped_counted_never_stored(
        hooks: Server, inbox: AgentStore) -> None:
    """Issue 10, item 15: the form is stored, without the bad fields, which are counted."""
    before = inbox.status().as_json()["droppedFields"]
    body = form("s-ip", context={"ipAddress": "john.doe@example.com",
                                 "pageUri": "https://acme.example/demo"},
                userAgent="Mozilla/5.0\r\nX-Injected: 1")
    with hooks.client("ingest") as ingest:
        response = ingest.post("/v1/ingest/forms", json=body)
    assert (response.status_code, response.json()) == (202, {"accepted": 1, "duplicates": 0})
    after = inbox.status().as_json()["droppedFields"]
    for reason in ("invalid_ip_address", "invalid_user_agent"):
        assert after[reason] == before.get(reason, 0) + 1
    [row] = [r.event for r in inbox.pending(1000)
             if getattr(r.event, "submission_id", "") == "s-ip"]
    assert (row.ip_address, row.user_agent) == (None, None)  # type: ignore[union-attr]
    conn = sqlite3.connect(inbox.path)
    try:
        assert not any("john.doe" in line for line in conn.iterdump())
    finally:
        conn.close()
