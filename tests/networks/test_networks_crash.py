"""Crash safety over three networks (issue 16 item 6): ``convctl agent run`` in a subprocess,
sending to the strict fakes of Meta, LinkedIn and Google Ads at once, killed with SIGKILL at
random moments while events flow in, restarted; in the end every event reached its network,
each under one id only (each fake's ``unique``: Meta by (pixel, name, event_id), LinkedIn by
(conversion rule, eventId), Google by transactionId), none lost, none extra.

A kill between "sent" and "marked sent" re-sends under the same id, which each network
deduplicates (the test prints how many raw re-sends there were)."""

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
from agentnetkit import (
    TOKENS,
    Fakes,
    applied_three,
    contact,
    form,
    form_ids,
    stage,
    stage_ids,
    three_fakes,
    write_jsonl,
)
from clikit import wait_running

from reconciler.adapters.agentstore import AgentStore
from reconciler.services.agent import ingest_jsonl

CREATED = datetime.now(UTC) - timedelta(hours=2)
BASE = datetime.now(UTC) - timedelta(hours=1)


@pytest.fixture
def fakes() -> Iterator[Fakes]:
    with three_fakes(latency=0.01) as running:
        yield running


def _agent(state: Path, fakes: Fakes, *extra: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, **TOKENS, "PYTHONUNBUFFERED": "1"}
    env.pop("CONVCTL_STORE", None)
    urls = fakes.urls()
    cmd = [sys.executable, "-m", "reconciler.cli.main", "agent", "run",
           "--state", f"sqlite:///{state}", "--meta-base-url", urls["meta_base_url"],
           "--linkedin-url", urls["linkedin_url"], "--google-url", urls["google_url"],
           "--batch-size", "10", "--poll-interval", "0.05", "--timeout", "5", *extra]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)



def _drain(state: Path, fakes: Fakes, store: AgentStore) -> dict[str, object]:
    """Run ``--once`` until nothing is left (a retry may be scheduled after a failure)."""
    for _ in range(10):
        final = _agent(state, fakes, "--once")
        _, err = final.communicate(timeout=120)
        assert final.returncode == 0, err.decode()
        status = store.status().as_json()
        if status["inbox"]["new"] == 0 and status["outbox"]["queued"] == 0:
            return status
        due = store.next_due()
        time.sleep(min(5.0, max(0.0, (due or 0) - time.time())))
    raise AssertionError(f"not drained: {status}")


def test_kill_9_while_three_networks_receive_loses_nothing(tmp_path: Path,
                                                            fakes: Fakes) -> None:
    rng = random.Random(16)
    state = tmp_path / "state.db"
    live = applied_three(state, CREATED)
    store = AgentStore(state)
    expected: dict[str, set[tuple[str, str]]] = {"meta": set(), "linkedin": set(),
                                                 "google": set()}
    try:
        for n in range(8):
            lines = []
            for i in range(15):
                cid, at = f"c{n}-{i}", BASE + timedelta(milliseconds=10 * (n * 15 + i))
                lines += [contact(cid), form(f"sub-{n}-{i}", cid, at), stage(cid, at)]
                for fired in (form_ids(live, f"sub-{n}-{i}"), stage_ids(live, cid, at)):
                    for network, ids in fired.items():
                        expected[network].add(ids)
            ingest_jsonl(store, write_jsonl(tmp_path / f"chunk-{n}.jsonl", lines))
            proc = _agent(state, fakes)
            wait_running(proc)
            time.sleep(rng.uniform(0.1, 0.8))  # killed at a random moment of its work
            proc.send_signal(signal.SIGKILL)
            assert proc.wait(timeout=10) == -signal.SIGKILL
        assert any(fakes.received().values()), "nothing was sent before the last kill"
        status = _drain(state, fakes, store)
    finally:
        store.close()
    total = sum(len(ids) for ids in expected.values())
    assert status["outbox"] == {"queued": 0, "sent": total, "dead": 0}
    assert fakes.received() == expected, "lost, extra or doubly identified events"
    # one id per event on each network: the fakes count each id once, and no event came
    # under a second id (the sets are equal, and there are as many ids as events)
    assert [len(ids) for ids in expected.values()] == [240, 240, 240]
    print(f"\nthree-network crash: 8 kills, {total} events; raw re-sends (deduplicated): "
          f"Meta {fakes.graph.duplicates}, LinkedIn {fakes.linkedin.duplicates}, Google "
          f"{sum(n - 1 for n in fakes.google.receipts.values())}")
