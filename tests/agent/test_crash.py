"""Crash safety (issue 5, item 8): ``convctl agent run`` in a subprocess, killed with SIGKILL at
random moments while events flow in, restarted; in the end every eligible event reached the
fake Graph API, each (event_name, event_id) counted once, none lost.

Meta deduplicates the same (event_name, event_id) within 48 hours, so a raw re-send after a kill
between "sent" and "marked sent" is expected and harmless; the test reports how many there were.
The default run (CI) makes 20 kills, and 10 rounds killing a ``--role process`` and a
``--role deliver`` agent running side by side; ``-m slow`` runs the 100-kill soak.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from agentio import (
    applied_state,
    contact_line,
    expected_sent,
    form_line,
    stage_line,
    write_jsonl,
)
from clikit import wait_running
from fakes.graph import FakeGraph

from reconciler.adapters.agentstore import AgentStore
from reconciler.adapters.state.sqlite import SqliteProvider
from reconciler.core.crm import stage_source_id
from reconciler.services.agent import ingest_jsonl

TOKEN = "crash-token-SECRET"
CREATED = datetime.now(UTC) - timedelta(hours=2)
BASE = datetime.now(UTC) - timedelta(hours=1)


@pytest.fixture
def graph() -> Iterator[FakeGraph]:
    with FakeGraph(token=TOKEN, latency=0.01) as fake:
        yield fake


def _chunk(tmp: Path, n: int, size: int) -> tuple[Path, list[tuple[str, str]]]:
    """``size`` contacts, each with a stage change and a form submission (both eligible);
    returns the file and the (kind, source id) of every event."""
    lines: list[dict[str, object]] = []
    sources: list[tuple[str, str]] = []
    for i in range(size):
        cid, at = f"c{n}-{i}", BASE + timedelta(milliseconds=10 * (n * size + i))
        lines += [contact_line(cid), stage_line(cid, "customer", at),
                  form_line(f"sub-{n}-{i}", cid, at)]
        sources += [("stage", stage_source_id(4412345, cid, "customer", at)),
                    ("form", f"form:sub-{n}-{i}")]
    return write_jsonl(tmp / f"chunk-{n}.jsonl", lines), sources


def _agent(state: Path, graph: FakeGraph, *extra: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "ACME_META_TOKEN": TOKEN, "PYTHONUNBUFFERED": "1"}
    env.pop("CONVCTL_STORE", None)
    cmd = [sys.executable, "-m", "reconciler.cli.main", "agent", "run",
           "--state", f"sqlite:///{state}", "--meta-base-url", graph.base_url,
           "--batch-size", "25", "--poll-interval", "0.05", "--timeout", "5", *extra]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)



def _soak(tmp: Path, graph: FakeGraph, kills: int, chunk: int, seed: int,
          roles: tuple[str, ...] = ("all",)) -> None:
    """``roles``: the agent processes run side by side (``--role``), each killed at its own
    random moment."""
    rng = random.Random(seed)
    state = tmp / "state.db"
    applied_state(state, CREATED)
    store = AgentStore(state)
    sources: list[tuple[str, str]] = []
    try:
        for n in range(kills):
            path, more = _chunk(tmp, n, chunk)
            sources += more
            ingest_jsonl(store, path)  # events flow in while the agent runs and dies
            procs = [_agent(state, graph, "--role", role) for role in roles]
            for proc in procs:  # killed at random moments of their work, not of their start
                wait_running(proc)
            time.sleep(rng.uniform(0.1, 1.0))
            for proc in rng.sample(procs, len(procs)):
                proc.send_signal(signal.SIGKILL)
                time.sleep(rng.uniform(0.0, 0.3))
                assert proc.wait(timeout=10) == -signal.SIGKILL, proc.stderr
        assert graph.unique, "the agents sent nothing before the last kill: kills too early"
        for _ in range(10):  # restart until drained (each run is bounded by --once)
            final = _agent(state, graph, "--once")
            _, err = final.communicate(timeout=120)
            assert final.returncode == 0, err.decode()
            status = store.status().as_json()
            if status["inbox"]["new"] == 0 and status["outbox"]["queued"] == 0:
                break
            due = store.next_due()  # a retry scheduled after a failed request
            time.sleep(min(5.0, max(0.0, (due or 0) - time.time())))
    finally:
        store.close()
    expected = expected_sent(SqliteProvider(state), sources)
    assert status["outbox"] == {"queued": 0, "sent": len(expected), "dead": 0}
    assert graph.unique == expected, "lost or unexpected events"
    print(f"\ncrash soak: {kills} kills, {len(expected)} events, each received once after "
          f"dedup; {graph.duplicates} raw re-send(s) (deduplicated by Meta)")


def test_kill_9_twenty_times_loses_nothing(tmp_path: Path, graph: FakeGraph) -> None:
    _soak(tmp_path, graph, kills=20, chunk=30, seed=5)


def test_kill_9_with_the_work_split_between_two_roles_loses_nothing(
        tmp_path: Path, graph: FakeGraph) -> None:
    """``--role process`` and ``--role deliver`` side by side, both killed every round."""
    _soak(tmp_path, graph, kills=10, chunk=30, seed=7, roles=("process", "deliver"))


@pytest.mark.slow
def test_kill_9_soak(tmp_path: Path, graph: FakeGraph) -> None:
    _soak(tmp_path, graph, kills=100, chunk=40, seed=11)
