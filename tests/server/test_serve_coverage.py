"""Match-key coverage through a real ``convctl serve`` with its agent and the strict fake Graph
API: ``GET /v1/agent/coverage`` (read scope) and the coverage gauges on ``/metrics`` show what
the agent sent, per event and key, with bounded labels."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from agentio import applied_state, contact_line, form_line, stage_line, write_jsonl
from fakes.graph import FakeGraph
from serverkit import Server, convctl, start_serve

TOKEN = "serve-coverage-token-SECRET"
CREATED = datetime.now(UTC) - timedelta(hours=2)


@pytest.fixture(scope="module")
def graph() -> Iterator[FakeGraph]:
    with FakeGraph(token=TOKEN) as fake:
        yield fake


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, graph: FakeGraph) -> Iterator[Server]:
    work = tmp_path_factory.mktemp("serve-coverage")
    state = work / "state.db"
    applied_state(state, CREATED)
    at = CREATED + timedelta(minutes=30)
    feed = write_jsonl(work / "feed.jsonl", [
        contact_line("701"), contact_line("702", phone=""),
        form_line("s-1", "701", at), form_line("s-2", "702", at),
        stage_line("701", "customer", at)])
    done = convctl("agent", "ingest", str(feed), "--state", f"sqlite:///{state}")
    assert done.returncode == 0, done.stderr
    srv = start_serve(work, "--meta-base-url", graph.base_url, "--poll-interval", "0.1",
                      "--timeout", "5", env={"ACME_META_TOKEN": TOKEN})
    yield srv
    srv.stop()
    assert TOKEN not in srv.output()


def poll(check: Any, seconds: float = 15.0) -> Any:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        result = check()
        if result:
            return result
        time.sleep(0.1)
    return check()


def coverage(server: Server, **params: str) -> dict[str, Any]:
    with server.client("read") as client:
        response = client.get("/v1/agent/coverage", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_the_api_shows_per_event_key_shares(served: Server, graph: FakeGraph) -> None:
    body = poll(lambda: (lambda b: b if len(b["events"]) == 2 else None)(coverage(served)))
    assert body is not None, served.output()[-2000:]
    assert body["windows"] == {"24h": 24, "7d": 168} and body["keys"][0] == "em"
    demo, funnel = body["events"]
    assert (demo["event"], funnel["event"]) == ("acme/demo-request", "acme/funnel")
    day = demo["windows"]["24h"]
    assert day["sent"] == 2 and demo["live"] is True
    assert day["keys"]["em"] == {"count": 2, "share": 1.0}
    assert day["keys"]["ph"] == {"count": 1, "share": 0.5}  # contact 702 has no phone
    assert day["keys"]["lead_id"] == {"count": 0, "share": 0.0}
    assert funnel["windows"]["7d"]["keys"]["lead_id"] == {"count": 1, "share": 1.0}
    sent = {key[2] for key in graph.unique}
    assert len(sent) == 3  # what coverage counted is what Meta received
    assert coverage(served, account="globex")["events"] == []


def test_the_api_needs_a_read_token(served: Server) -> None:
    assert httpx.get(f"{served.url}/v1/agent/coverage", timeout=5).status_code == 401
    with served.client("ingest") as client:
        assert client.get("/v1/agent/coverage").status_code == 403


def test_metrics_carry_coverage_with_bounded_labels(served: Server) -> None:
    def text() -> str:
        body = httpx.get(f"{served.url}/metrics", timeout=5).text
        return body if 'convctl_agent_coverage_sent_events{event="acme/demo-request",' \
                       'window="24h"} 2.0' in body else ""

    metrics = poll(text)
    assert metrics, served.output()[-2000:]
    assert ('convctl_agent_match_key_coverage_ratio{event="acme/demo-request",key="ph",'
            'window="24h"} 0.5') in metrics
    assert ('convctl_agent_match_key_coverage_ratio{event="acme/funnel",key="lead_id",'
            'window="7d"} 1.0') in metrics
    ratios = [line for line in metrics.splitlines()
              if line.startswith("convctl_agent_match_key_coverage_ratio{")]
    assert len(ratios) == 2 * 16 * 2  # events x keys x windows, nothing else
