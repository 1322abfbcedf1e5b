"""``convctl serve`` with its agent, end to end: the shipped manifests applied, contacts
ingested with ``convctl agent ingest``, a signed HubSpot webhook in, the strict fake Graph API
receives the conversion; ``/metrics`` shows the agent's counts; SIGTERM lets an in-flight
webhook finish and stops server and agent promptly. Plus the agent loop in process: it
survives a failing cycle and stops at once."""

from __future__ import annotations

import signal
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from agentio import ACME_PIXEL, applied_state, contact_line, write_jsonl
from fakes.graph import FakeGraph
from serverkit import Server, convctl, start_serve
from webhookkit import SECRET, hmac_v3, now_ms, stage_event

from reconciler.adapters.agentrows import AgentStatus, QueueStatus
from reconciler.adapters.state.sqlite import SqliteProvider
from reconciler.core.capi import event_id
from reconciler.core.crm import from_epoch_ms, stage_source_id
from reconciler.services.agent_loop import AgentLoop, Stopper, describe

TOKEN = "serve-agent-token-SECRET"
CREATED = datetime.now(UTC) - timedelta(hours=2)


@pytest.fixture(scope="module")
def graph() -> Iterator[FakeGraph]:
    with FakeGraph(token=TOKEN) as fake:
        yield fake


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, graph: FakeGraph) -> Iterator[Server]:
    work = tmp_path_factory.mktemp("serve-agent")
    state = work / "state.db"
    applied_state(state, CREATED)
    feed = write_jsonl(work / "contacts.jsonl", [contact_line("701"),
                                                 contact_line("702", lead=None)])
    done = convctl("agent", "ingest", str(feed), "--state", f"sqlite:///{state}")
    assert done.returncode == 0, done.stderr
    srv = start_serve(work, "--meta-base-url", graph.base_url, "--poll-interval", "0.1",
                      "--timeout", "5", env={"CONVCTL_HUBSPOT_CLIENT_SECRET": SECRET,
                                             "ACME_META_TOKEN": TOKEN})
    yield srv
    srv.stop()
    log = srv.output()
    assert SECRET not in log and TOKEN not in log
    assert not any(t in log for t in srv.tokens.values())


def signed(server: Server, body: bytes) -> dict[str, str]:
    ts = now_ms()
    url = f"POST{server.url}/v1/webhooks/hubspot"  # no public URL: the one the server sees
    return {"Content-Type": "application/json", "X-HubSpot-Request-Timestamp": str(ts),
            "X-HubSpot-Signature-v3": hmac_v3(SECRET, url, body, ts)}


def poll(check: Any, seconds: float = 15.0) -> Any:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        result = check()
        if result:
            return result
        time.sleep(0.1)
    return check()


def test_a_signed_stage_change_reaches_the_fake_graph(served: Server, graph: FakeGraph) -> None:
    at = now_ms()
    body = orjson.dumps([stage_event(701, "customer", event_id=1, at_ms=at),
                         stage_event(702, "customer", event_id=2, at_ms=at),
                         stage_event(703, "customer", event_id=3, portal=1, at_ms=at)])
    response = httpx.post(f"{served.url}/v1/webhooks/hubspot", content=body,
                          headers=signed(served, body), timeout=10)
    assert (response.status_code, response.json()) == (202, {"accepted": 3, "duplicates": 0})
    provider = SqliteProvider(Path(served.state_url.removeprefix("sqlite:///")))
    funnel = next(e.id for e in provider.list_events("acme") if e.name == "funnel")
    provider.close()
    source = stage_source_id(4412345, "701", "customer", from_epoch_ms(at))
    expected = (ACME_PIXEL, "Customer", event_id(funnel, source))
    assert poll(lambda: expected in graph.unique), (graph.unique, served.output()[-2000:])
    assert graph.unique == {expected}


def test_metrics_show_the_agent_counts(served: Server) -> None:
    def text() -> str:
        body = httpx.get(f"{served.url}/metrics", timeout=5).text
        return body if 'convctl_agent_outbox_events{state="sent"} 1.0' in body else ""

    metrics = poll(text)
    assert 'convctl_agent_skips_total{reason="unknown_portal"} 1.0' in metrics
    assert 'convctl_agent_skips_total{reason="no_lead_id"}' in metrics
    assert f'convctl_agent_pixel_outbox_events{{pixel="{ACME_PIXEL}",state="sent"}} 1.0' \
        in metrics
    target = f'network="meta",state="sent",target="{ACME_PIXEL}"'
    assert f"convctl_agent_target_outbox_events{{{target}}} 1.0" in metrics
    assert 'convctl_agent_inbox_events{state="processed"} 3.0' in metrics
    assert "convctl_agent_running 1.0" in metrics
    assert "convctl_agent_store_up 1.0" in metrics
    assert 'convctl_ingest_events_total{result="accepted",source="webhook"} 3.0' in metrics


def test_sigterm_finishes_the_in_flight_webhook_then_stops(served: Server) -> None:
    body = orjson.dumps([stage_event(701, "lead", event_id=9)])
    head = "".join(f"{k}: {v}\r\n" for k, v in signed(served, body).items())
    port = int(served.url.rsplit(":", 1)[1])
    sock = socket.create_connection(("127.0.0.1", port), timeout=20)
    sock.sendall(f"POST /v1/webhooks/hubspot HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{head}"
                 f"Content-Length: {len(body)}\r\n\r\n".encode() + body[:10])
    time.sleep(0.3)
    started = time.monotonic()
    served.proc.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    assert served.proc.poll() is None  # waiting for the request
    sock.sendall(body[10:])
    answer = sock.recv(65536)
    sock.close()
    assert answer.startswith(b"HTTP/1.1 202"), answer[:300]
    assert served.proc.wait(15) == 0
    assert time.monotonic() - started < 10
    log = served.output()
    assert "agent stopped" in log and "Traceback" not in log


# -- the loop in process ------------------------------------------------------------------------

class Flaky:
    """An agent whose first run fails (with data in the message), then runs until stopped."""

    def __init__(self) -> None:
        self.runs = 0
        self.stopped = threading.Event()

    def run(self) -> None:
        self.runs += 1
        if self.runs == 1:
            raise ValueError("jane@example.com")
        self.stopped.wait(30)

    def stop(self) -> None:
        self.stopped.set()

    def status(self) -> AgentStatus:
        return AgentStatus(QueueStatus())


def test_the_loop_survives_a_failure_and_stops_at_once(caplog: pytest.LogCaptureFixture
                                                       ) -> None:
    agent = Flaky()
    loop = AgentLoop(agent, Stopper(), restart_base=0.01)  # type: ignore[arg-type]
    loop.start()
    assert poll(lambda: agent.runs == 2, 5)
    assert loop.running and loop.failures == 1
    started = time.monotonic()
    assert loop.stop(5) and time.monotonic() - started < 1
    assert loop.status()["loop"] == {"running": False, "failures": 1}
    assert "jane@" not in caplog.text and "ValueError at test_serve_agent.py" in caplog.text


def test_describe_keeps_foreign_messages_out() -> None:
    from reconciler.errors import StateError

    assert describe(StateError("agent store busy")) == "StateError: agent store busy"
    assert describe(KeyError("jane@example.com")) == "KeyError"


def test_a_stopper_wakes_a_sleeper() -> None:
    stopper = Stopper()
    threading.Timer(0.05, stopper.set).start()
    started = time.monotonic()
    stopper.sleep(10)
    assert time.monotonic() - started < 2
