"""GraphSender and Meta's destination (httpx.MockTransport), secret resolution, and the
delivery pass's split, pause and backoff decisions against a recording destination, in zero
time."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from agentio import T_CREATED, FakeClock, Rig, contact_line, form_line, make_rig, write_jsonl
from agentkit import account_spec

from reconciler.adapters.meta import GraphSender
from reconciler.adapters.networks.meta import MetaDestination
from reconciler.adapters.secrets import SecretUnavailable, fingerprint, resolve_secret
from reconciler.core.models import AccountSpec, SecretRef
from reconciler.core.networks import Outcome

OK = {"events_received": 1, "messages": [], "fbtrace_id": "x"}


def answer(status: int, body: Any, headers: dict[str, str] | None = None) -> GraphSender:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json=body, headers=headers or {})
    return GraphSender("http://graph.test", "v25.0", transport=httpx.MockTransport(handler))


def graph_error(code: int, **extra: Any) -> dict[str, Any]:
    return {"error": {"message": "m", "type": "OAuthException", "code": code,
                      "error_user_msg": f"user message {code}", **extra}}


@pytest.mark.parametrize(("status", "body", "verdict"), [
    (200, OK, "ok"),
    (200, {"weird": True}, "retry"),
    (500, graph_error(2, is_transient=True), "retry"),
    (400, graph_error(613, is_transient=True), "retry"),
    (400, graph_error(17), "retry"),
    (400, graph_error(190), "token"),
    (400, graph_error(100, error_subcode=2804050), "permanent"),
    (403, graph_error(200), "permanent"),
    (502, "<html>bad gateway</html>", "retry"),
])
def test_answers_are_classified(status: int, body: Any, verdict: str) -> None:
    result = answer(status, body).send("1", [{"event_name": "x"}], "tok")
    assert result.verdict == verdict
    if verdict != "ok":
        assert result.describe().startswith(f"HTTP {status}")


def test_retry_after_and_meta_message_are_kept() -> None:
    result = answer(400, graph_error(613, is_transient=True), {"Retry-After": "42"}).send(
        "1", [], "tok")
    assert (result.retry_after, result.code, result.message) == (42.0, 613, "user message 613")


def test_request_shape_token_in_body_only() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=OK)
    sender = GraphSender("http://graph.test/", "v25.0", transport=httpx.MockTransport(handler))
    sender.send("123", [{"event_name": "Lead"}], "tok-SECRET")
    sender.send("123", [{"event_name": "Lead"}], "tok-SECRET", test_event_code="T1")
    assert str(seen[0].url) == "http://graph.test/v25.0/123/events"
    bodies = [json.loads(r.content) for r in seen]
    assert bodies[0] == {"data": [{"event_name": "Lead"}], "access_token": "tok-SECRET"}
    assert bodies[1]["test_event_code"] == "T1"


@pytest.mark.parametrize("exc", [httpx.ReadTimeout("slow"), httpx.ConnectError("refused")])
def test_transport_failures_are_retryable(exc: Exception) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc
    result = GraphSender("http://g", transport=httpx.MockTransport(handler)).send("1", [], "t")
    assert result.verdict == "retry" and result.status is None


def test_secrets_from_env_and_file(tmp_path: Path) -> None:
    assert resolve_secret(SecretRef(env="T"), {"T": " tok \n"}) == "tok"
    path = tmp_path / "token"
    path.write_text("file-tok\n")
    assert resolve_secret(SecretRef(file=str(path)), secrets_dir=str(tmp_path)) == "file-tok"
    with pytest.raises(SecretUnavailable, match="environment variable T is not set"):
        resolve_secret(SecretRef(env="T"), {})
    with pytest.raises(SecretUnavailable, match="cannot read the secret file"):
        resolve_secret(SecretRef(file=str(tmp_path / "missing")), secrets_dir=str(tmp_path))
    assert fingerprint("a") != fingerprint("b") and "a" not in fingerprint("a")


REFUSED = Outcome("reject", "bad event", 400, "100")


class Recorder:
    """Meta's destination as a recorder: it refuses any batch holding a poisoned event id (as
    Meta would) with ``refusal``, and keeps the events it was handed, as bytes."""

    network = "meta"

    def __init__(self, poisoned: set[str], refusal: Outcome = REFUSED) -> None:
        self.poisoned, self.refusal = poisoned, refusal
        self.batches: list[list[str]] = []
        self.raw: list[list[bytes]] = []

    def send(self, target: str, account: AccountSpec, events: Sequence[bytes],
             token: str) -> Outcome:
        ids = [str(json.loads(e)["event_id"]) for e in events]
        self.batches.append(ids)
        self.raw.append(list(events))
        if self.poisoned & set(ids):
            return self.refusal
        return Outcome("sent", status=200, received=len(events))

    def close(self) -> None:
        pass


def _rig_with(tmp_path: Path, sender: Recorder, n: int) -> Rig:
    clock = FakeClock(T_CREATED + timedelta(days=1))
    rig = make_rig(tmp_path, None, clock, T_CREATED, sender=sender)
    lines = [contact_line("900")]
    lines += [form_line(f"p{i}", "900", clock.now - timedelta(minutes=i)) for i in range(n)]
    rig.agent.ingest_jsonl(write_jsonl(tmp_path / "p.jsonl", lines))
    rig.agent.process_inbox()
    return rig


def test_split_isolates_the_bad_event_in_log2_requests(tmp_path: Path) -> None:
    recorder = Recorder(set())
    rig = _rig_with(tmp_path, recorder, 16)
    recorder.poisoned = {rig.store.due(rig.clock.epoch(), 100)[5].event_id}
    report = rig.agent.deliver_once()
    dead = rig.store.dead_letters()
    rig.close()
    assert report.sent == 15 and report.dead == {"rejected": 1}
    assert len(recorder.batches) == 1 + 2 * 4  # each level: the bad half splits, the good passes
    assert dead[0]["error"] == "HTTP 400, code 100: bad event"
    assert (dead[0]["network"], dead[0]["target"]) == ("meta", "123456789012345")


def test_named_refusals_dead_letter_only_those_events(tmp_path: Path) -> None:
    """A network that says which events it refused (``Outcome.rejected``, as LinkedIn's batch
    answers do, with how many it took): those are dead-lettered with its reason, the others
    sent, no split. (Without ``received`` the others go again: test_networks_agent.py.)"""
    recorder = Recorder(set(), Outcome("reject", "some refused", 400, "BATCH", received=4,
                                       rejected={1: "bad email", 3: "too old"}))
    rig = _rig_with(tmp_path, recorder, 6)
    recorder.poisoned = {row.event_id for row in rig.store.due(rig.clock.epoch(), 100)}
    report = rig.agent.deliver_once()
    errors = sorted(d["error"] for d in rig.store.dead_letters())
    rig.close()
    assert len(recorder.batches) == 1
    assert report.sent == 4 and report.dead == {"rejected": 2}
    assert errors == ["HTTP 400, code BATCH: some refused (bad email)",
                      "HTTP 400, code BATCH: some refused (too old)"]


def test_permission_error_pauses_instead_of_splitting(tmp_path: Path) -> None:
    recorder = Recorder(set(), Outcome("pause", "no permission", 403, "200",
                                       pause_reason="permission"))
    rig = _rig_with(tmp_path, recorder, 8)
    recorder.poisoned = {row.event_id for row in rig.store.due(rig.clock.epoch(), 100)}
    report = rig.agent.deliver_once()
    status = rig.agent.status().as_json()
    rig.close()
    assert len(recorder.batches) == 1 and report.paused == ["123456789012345"]
    assert status["paused"]["123456789012345"]["reason"] == "permission"
    assert status["paused"]["123456789012345"]["network"] == "meta"
    assert "Meta refused the token" in status["paused"]["123456789012345"]["message"]


def _graph_outcome(status: int, body: Any) -> Outcome:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json=body)
    graph = GraphSender("http://graph.test", "v25.0", transport=httpx.MockTransport(handler))
    destination = MetaDestination(graph)
    try:
        return destination.send("1", _account(), [b'{"event_name":"x"}'], "tok")
    finally:
        destination.close()


def _account() -> AccountSpec:
    return account_spec()


@pytest.mark.parametrize(("status", "body", "kind", "pause", "code"), [
    (200, OK, "sent", None, None),
    (500, graph_error(2, is_transient=True), "retry", None, "2"),
    (400, graph_error(613, is_transient=True), "retry", None, "613"),
    (400, graph_error(190), "pause", "token", "190"),
    (400, graph_error(102), "pause", "token", "102"),
    (403, graph_error(200), "pause", "permission", "200"),
    (400, graph_error(10), "pause", "permission", "10"),
    (400, graph_error(100, error_subcode=2804050), "reject", None, "100/2804050"),
])
def test_meta_destination_maps_every_answer_to_an_outcome(status: int, body: Any, kind: str,
                                                          pause: str | None,
                                                          code: str | None) -> None:
    """Meta's codes are read by its destination alone: delivery sees only the Outcome."""
    outcome = _graph_outcome(status, body)
    assert (outcome.kind, outcome.pause_reason, outcome.code) == (kind, pause, code)
    assert outcome.received == (1 if kind == "sent" else None)


def test_encoded_body_is_the_request_body_as_json() -> None:
    from reconciler.adapters.meta import encoded_body, request_body

    events = [{"event_name": "Lead", "event_id": "e1", "user_data": {"em": "é\"\\"}},
              {"event_name": "Other", "event_id": "e2", "custom_data": {"value": 1.5}}]
    for code in (None, "TEST123"):
        raw = encoded_body([json.dumps(e).encode() for e in events], "tok", code)
        assert json.loads(raw) == {**request_body(events, code), "access_token": "tok"}
    assert json.loads(encoded_body([], None, None)) == {"data": []}


def test_delivery_sends_the_stored_json_without_parsing_it(tmp_path: Path) -> None:
    recorder = Recorder(set())
    rig = _rig_with(tmp_path, recorder, 5)
    stored = {r.event_id: r.body for r in rig.store.due(rig.clock.epoch(), 100)}
    report = rig.agent.deliver_once()
    rig.close()
    assert report.sent == 5 and len(recorder.raw) == 1
    assert sorted(recorder.raw[0]) == sorted(stored.values())


def test_a_dead_letter_queued_again_is_checked_in_full_before_sending(tmp_path: Path) -> None:
    """Rows are checked once when queued; one brought back from the dead letters is checked
    again (here: no usable customer information), not sent to be refused by Meta."""
    recorder = Recorder(set())
    clock = FakeClock(T_CREATED + timedelta(days=1))
    rig = make_rig(tmp_path, None, clock, T_CREATED, sender=recorder)
    odd = contact_line("800", email="", phone="n/a", firstname="!!", lastname="??",
                       country="Atlantis")
    line = form_line("g-1", "800", clock.now - timedelta(minutes=5))
    del line["ipAddress"]
    rig.agent.ingest_jsonl(write_jsonl(tmp_path / "g.jsonl", [odd, line]))
    rig.agent.run(once=True)
    assert rig.agent.status().as_json()["deadLetters"] == {"no_customer_info": 1}
    assert rig.agent.retry_dead("no_customer_info") == 1
    report = rig.agent.deliver_once()
    status = rig.agent.status().as_json()
    rig.close()
    assert not recorder.batches and report.dead == {"no_customer_info": 1}
    assert status["deadLetters"] == {"no_customer_info": 1}
