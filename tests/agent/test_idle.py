"""An agent that can send nothing idles (issue 12, item 1): ``convctl agent run`` as a real
process with queued events it cannot deliver (the token variable unset, the token refused with
code 190, the HubSpot contact source answering 401) uses next to no CPU, logs the reason once,
and ``agent status`` (text and JSON) and the metrics show why.

CPU time is read from ``/proc/PID/stat`` (utime + stime) over a few seconds after start-up; the
log goes to a file, not a pipe, so a spinning agent cannot be slowed by a full pipe."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from agentio import ACME_PIXEL, applied_state, contact_line, form_line, stage_line, write_jsonl
from click.testing import CliRunner
from fakes.graph import FakeGraph
from fakes.hubspot_crm import FakeHubSpotCrm
from serverkit import start_serve

from reconciler.adapters.agentstore import AgentStore
from reconciler.cli.main import cli
from reconciler.server.agent_metrics import status_metrics
from reconciler.services.agent import agent_status, ingest_jsonl

TOKEN = "idle-token-SECRET"
CREATED = datetime.now(UTC) - timedelta(hours=2)
MEASURE_S = 3.0
RULE = "urn:lla:llaPartnerConversion:4242"
MAX_CPU_S = 0.3  # 10% of one core; a spinning agent used ~85% of a core in the issue
pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (fields 14 and 15 of /proc/PID/stat, after the name)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.fixture
def state(tmp_path: Path) -> Path:
    """A state with the shipped manifests and three acme events waiting in the inbox."""
    path = tmp_path / "state.db"
    applied_state(path, CREATED)
    at = datetime.now(UTC) - timedelta(minutes=30)
    store = AgentStore(path)
    try:
        ingest_jsonl(store, write_jsonl(tmp_path / "feed.jsonl", [
            contact_line("501"), stage_line("501", "customer", at),
            form_line("s-1", "501", at + timedelta(seconds=1))]))
    finally:
        store.close()
    return path


def run_idle(state: Path, env: dict[str, str], *args: str) -> list[str]:
    """Run ``convctl agent run`` for MEASURE_S seconds after its start-up and its first
    passes; assert it stayed near idle; stop it (SIGTERM) and return its log lines."""
    log = state.parent / "agent.log"
    full = {k: v for k, v in os.environ.items() if not k.startswith(("CONVCTL_", "ACME_"))}
    full.update(env, PYTHONUNBUFFERED="1")
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "reconciler.cli.main", "agent", "run", "--state",
             f"sqlite:///{state}", "--timeout", "5", *args],
            env=full, stdout=subprocess.DEVNULL, stderr=out)
    try:
        deadline = time.monotonic() + 30
        while b"agent running" not in log.read_bytes():
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        time.sleep(1.0)  # the first cycles: the pause or hold is found and recorded
        before = cpu_seconds(proc.pid)
        time.sleep(MEASURE_S)
        used = cpu_seconds(proc.pid) - before
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(15)
    lines = log.read_text().splitlines()
    assert used < MAX_CPU_S, (used, len(lines), lines[-3:])
    return lines


def problems(lines: list[str]) -> list[str]:
    return [line for line in lines if " WARNING " in line or " ERROR " in line]


def status(state: Path) -> tuple[str, dict[str, object]]:
    runner = CliRunner()
    text = runner.invoke(cli, ["agent", "status", "--state", f"sqlite:///{state}"])
    data = runner.invoke(cli, ["agent", "status", "--format", "json", "--state",
                               f"sqlite:///{state}"])
    assert text.exit_code == 0 and data.exit_code == 0, text.output + data.output
    return text.stdout, json.loads(data.stdout)


def test_a_pixel_without_its_token_is_held_off_and_the_agent_idles(state: Path) -> None:
    with FakeGraph(token=TOKEN) as graph:
        lines = run_idle(state, {}, "--meta-base-url", graph.base_url)
        assert not graph.requests
    [line] = problems(lines)
    assert f"pixel {ACME_PIXEL} paused (token_unavailable)" in line
    assert "ACME_META_TOKEN" in line
    text, data = status(state)
    assert f"Pixel {ACME_PIXEL}: PAUSED since" in text and "(token_unavailable)" in text
    paused = data["paused"]
    assert isinstance(paused, dict) and paused[ACME_PIXEL]["reason"] == "token_unavailable"
    assert data["outbox"] == {"queued": 2, "sent": 0, "dead": 0}


def test_a_pixel_paused_by_code_190_stays_idle(state: Path) -> None:
    with FakeGraph(token="another-token") as graph:
        lines = run_idle(state, {"ACME_META_TOKEN": TOKEN}, "--meta-base-url", graph.base_url)
        assert len(graph.requests) == 1  # one refusal, then no more tries
    [line] = problems(lines)
    assert f"pixel {ACME_PIXEL} paused (token)" in line and TOKEN not in "\n".join(lines)
    text, _ = status(state)
    assert "(token)" in text


def test_a_hubspot_401_holds_the_inbox_off_and_the_agent_idles(state: Path) -> None:
    with FakeHubSpotCrm(token="hs-right") as crm, FakeGraph(token=TOKEN) as graph:
        lines = run_idle(state, {"ACME_META_TOKEN": TOKEN, "CONVCTL_HUBSPOT_TOKEN": "hs-wrong",
                                 "CONVCTL_HUBSPOT_BASE_URL": crm.base_url},
                         "--contacts", "hubspot", "--meta-base-url", graph.base_url)
        assert not graph.requests and not crm.requests
    [line] = problems(lines)
    assert "inbox processing held off (contacts_refused)" in line and "HTTP 401" in line
    assert "hs-wrong" not in "\n".join(lines)
    text, data = status(state)
    assert "Inbox processing: HELD OFF since" in text and "(contacts_refused)" in text
    held = data["held"]
    assert isinstance(held, dict) and held["inbox"]["reason"] == "contacts_refused"
    assert data["inbox"] == {"new": 2, "processed": 0}


def test_inside_serve_the_pause_is_on_metrics_logged_once_and_the_server_idles(
        state: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ACME_META_TOKEN", raising=False)
    with FakeGraph(token=TOKEN) as graph:
        server = start_serve(state.parent, "--meta-base-url", graph.base_url, "--timeout", "5")
        try:
            paused = (f'convctl_agent_pixel_paused{{pixel="{ACME_PIXEL}",'
                      'reason="token_unavailable"} 1.0')
            deadline = time.monotonic() + 20
            while paused not in httpx.get(f"{server.url}/metrics", timeout=5).text:
                assert time.monotonic() < deadline, server.output()
                time.sleep(0.2)
            before = cpu_seconds(server.proc.pid)
            time.sleep(MEASURE_S)
            used = cpu_seconds(server.proc.pid) - before
        finally:
            server.stop()
        assert not graph.requests
    lines = server.output().splitlines()
    assert used < MAX_CPU_S, (used, len(lines))
    assert len([x for x in lines if "paused (token_unavailable)" in x]) == 1


def test_metrics_show_why_with_bounded_labels(state: Path) -> None:
    store = AgentStore(state)
    try:
        store.pause_target("meta", ACME_PIXEL, "token_unavailable", "no token", None)
        store.pause_target("meta", "999", "made-up reason", "?", None)
        store.pause_target("linkedin", RULE, "token", "LinkedIn refused the token", None)
        store.pause_target("made-up network", "x/1", "token", "?", None)
        store.hold("inbox", "contacts_refused", "HubSpot refused the CRM token (HTTP 401)")
        snapshot = agent_status(store, {RULE: 2e9, ACME_PIXEL: 2e9},
                                networks={RULE: "linkedin"}).as_json()
    finally:
        store.close()
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in status_metrics(snapshot, datetime.now(UTC))
               for s in family.samples}
    assert samples[("convctl_agent_pixel_paused", (("pixel", ACME_PIXEL),
                                                   ("reason", "token_unavailable")))] == 1
    assert samples[("convctl_agent_pixel_paused", (("pixel", "999"), ("reason", "other")))] == 1
    # every network's targets, with a network label from a bounded set; pixels stay Meta's
    assert samples[("convctl_agent_target_paused", (("network", "linkedin"), ("reason", "token"),
                                                    ("target", RULE)))] == 1
    assert samples[("convctl_agent_target_paused", (("network", "meta"),
                                                    ("reason", "token_unavailable"),
                                                    ("target", ACME_PIXEL)))] == 1
    assert samples[("convctl_agent_target_paused", (("network", "other"), ("reason", "token"),
                                                    ("target", "x/1")))] == 1
    assert not [k for k in samples if k[0] == "convctl_agent_pixel_paused" and ("pixel", RULE)
                in k[1]]
    assert samples[("convctl_agent_targets_held_off", (("network", "linkedin"),))] == 1
    assert samples[("convctl_agent_targets_held_off", (("network", "meta"),))] == 1
    assert samples[("convctl_agent_targets_held_off", (("network", "google"),))] == 0
    assert samples[("convctl_agent_pixels_held_off", ())] == 2
    assert samples[("convctl_agent_inbox_held", (("reason", "contacts_refused"),))] == 1


@pytest.fixture(autouse=True)
def _no_leftover_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for var in ("CONVCTL_STATE", "CONVCTL_AGENT_STORE"):
        monkeypatch.delenv(var, raising=False)
    yield


def test_a_contact_source_that_is_down_is_held_off_with_backoff_then_resumes(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """In process, on the fake clock: HubSpot rate-limits every try; the inbox is held off for
    growing delays (logged once), and the first chunk processed after it recovers ends it."""
    from agentio import FakeClock, make_rig

    from reconciler.adapters.contacts import EmbeddedContacts, HubSpotContacts, LayeredContacts
    from reconciler.services.agent import Agent
    from reconciler.services.agent_holds import RECHECK_SECONDS

    caplog.set_level(logging.INFO, "reconciler.agent")
    clock = FakeClock(datetime.now(UTC))
    with FakeHubSpotCrm(token="hs-right", contacts={"801": {
            "meta_lead_id": "123456789012345"}}) as crm:
        rig = make_rig(tmp_path, None, clock, CREATED, sender=object())
        remote = HubSpotContacts(crm.base_url, "hs-right", sleep=clock.sleep, max_tries=2)
        rig.agent = Agent(rig.provider, rig.store,
                          LayeredContacts(remote, EmbeddedContacts(rig.store)), object(),
                          clock=clock, sleep=clock.sleep)  # type: ignore[arg-type]
        try:
            rig.agent.ingest_jsonl(write_jsonl(tmp_path / "s.jsonl", [
                stage_line("801", "customer", clock() - timedelta(minutes=5))]))
            crm.rate_limit_next(8, retry_after=0)
            holds = []
            for _ in range(4):
                rig.agent.process_inbox()
                holds.append(rig.agent.inbox_hold.until - clock.epoch())
                assert rig.agent.process_inbox().processed == 0  # held: not even tried
                clock.advance(seconds=holds[-1])
            assert holds == [1.0, 2.0, 4.0, 8.0] and len(crm.rate_limited) == 0
            assert max(holds) <= RECHECK_SECONDS
            assert caplog.text.count("held off (contacts_unavailable)") == 1
            assert rig.agent.status().as_json()["held"]["inbox"]["reason"] == "contacts_unavailable"
            assert rig.agent.process_inbox().processed == 1
            assert rig.agent.status().as_json()["held"] == {}
            assert "inbox processing resumed" in caplog.text
        finally:
            remote.close()
            rig.close()
