"""The sync agent end to end with 1, 2 and 4 agent processes on PostgreSQL, beside one on SQLite,
in the same run (issue 11 item 9). Figures are printed, never asserted.

Each run: the shipped manifests applied to a fresh state (a SQLite file, or a fresh database on
``CONVCTL_BENCH_POSTGRES_URL`` or on a throwaway durable PostgreSQL server started here: fsync
and synchronous commits on), K ``convctl agent run`` processes started on it (role ``all``,
polling every 10 ms; the clock starts once every one logs that it runs), then the CRM events of
``bench/agent_throughput.py`` (half form submissions, half lifecycle-stage changes, each firing
one Meta event) ingested here in chunks of 1,000 while the agents process and deliver them to the
loopback receiver of that script; the clock stops when the receiver has answered for every
event. Each configuration runs ``--runs`` times, the configurations taking turns, and the table
shows min / median / max events per second.

    python bench/pg_agents.py                # 20,000 events, 3 runs
    python bench/pg_agents.py --n 50000
    python bench/pg_agents.py --quick        # 2,000 events, 1 run (smoke test)
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent / "tests"))

import _stats
import agent_throughput as at

CONFIGS = (("sqlite", 1), ("postgresql", 1), ("postgresql", 2), ("postgresql", 4))
GOAL_SCALE = 1.6  # 2 agents over 1, on PostgreSQL
GOAL_PG = 0.7  # 1 agent on PostgreSQL over 1 on SQLite


def applied(url: str, created: datetime) -> None:
    from reconciler.adapters.state import open_provider
    from reconciler.services.apply import apply_plan
    from reconciler.services.planning import make_plan

    provider = open_provider(url, clock=lambda: created)
    try:
        result = make_plan([at.MANIFESTS], provider)
        if result.plan is None or not apply_plan(result.plan, provider, progress=lambda _: None,
                                                 holder="bench").ok:
            raise SystemExit("cannot apply the shipped manifests")
    finally:
        provider.close()


def chunk_files(n: int, now: datetime, folder: Path) -> list[tuple[Path, int]]:
    files = []
    for index, lines in enumerate(at.chunk_lines(at.people(n // 2), now)):
        path = folder / f"chunk-{index:04d}.jsonl"
        path.write_bytes(b"".join(orjson.dumps(x) + b"\n" for x in lines))
        files.append((path, sum(1 for x in lines if x["type"] != "contact")))
    return files


def start_agents(url: str, k: int, receiver: at.Receiver) -> list[subprocess.Popen[bytes]]:
    env = {**os.environ, at.TOKEN_ENV: at.TOKEN, "CONVCTL_META_BASE_URL": receiver.base_url,
           "CONVCTL_AGENT_POLL_INTERVAL": "0.01"}
    env.pop("CONVCTL_AGENT_STORE", None)
    agents = [subprocess.Popen([sys.executable, "-m", "reconciler.cli.main", "agent", "run",
                                "--state", url], env=env, stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
              for _ in range(k)]
    for agent in agents:
        _wait_running(agent)
    return agents


def _wait_running(agent: subprocess.Popen[bytes]) -> None:
    assert agent.stderr is not None
    for line in agent.stderr:
        if b"agent running" in line:
            threading.Thread(target=agent.stderr.read, daemon=True).start()  # keep draining
            return
    raise SystemExit(f"convctl agent run exited {agent.wait()} before it ran")


def one_run(url: str, k: int, files: list[tuple[Path, int]], receiver: at.Receiver) -> float:
    """Events per second of ``k`` agents on the state at ``url`` (fresh, manifests applied)."""
    from reconciler.services.agent import ingest_jsonl
    from reconciler.services.agent_setup import AgentSettings, open_store

    store = open_store(AgentSettings(state=url))
    agents = start_agents(url, k, receiver)
    total = sum(n for _, n in files)
    try:
        receiver.stats(reset=True)
        begin = time.perf_counter()
        for path, _ in files:
            ingest_jsonl(store, path)
        receiver.wait_for(total, begin + 600)
        seconds = time.perf_counter() - begin
    finally:
        for agent in agents:
            agent.send_signal(signal.SIGTERM)
        for agent in agents:
            agent.wait(timeout=60)
    try:
        sent = store.status().outbox["sent"]
    finally:
        store.close()
    unique = receiver.stats()["unique"]
    if sent != total or unique != total:
        print(f"  MISMATCH: {k} agent(s) on {url.split(':')[0]}: sent {sent}, received {unique}, "
              f"expected {total}", flush=True)
    return total / seconds


@contextmanager
def databases() -> Iterator[Callable[[], str] | None]:
    from pgserver import find_bindir, server_from_env, start_server

    url = os.environ.get("CONVCTL_BENCH_POSTGRES_URL")
    bindir = None if url else find_bindir()
    if not url and bindir is None:
        print("(no PostgreSQL: set CONVCTL_BENCH_POSTGRES_URL or install PostgreSQL for its rows)")
        yield None
        return
    server = server_from_env(url) if url else start_server(bindir, durable=True)  # type: ignore[arg-type]
    try:
        yield lambda: server.fresh_database()[0]
    finally:
        server.stop()


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # a stopped run cleans up too
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000, help="CRM events per run")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="2,000 events, one run")
    args = parser.parse_args(argv)
    n, runs = (2000, 1) if args.quick else (args.n, args.runs)
    now = datetime.now(UTC)
    rates: dict[tuple[str, int], list[float]] = {c: [] for c in CONFIGS}
    receiver = at.Receiver(at.RECEIVER_DEADLINE)
    try:
        with tempfile.TemporaryDirectory(prefix="convctl-pg-agents-") as tmp, \
                databases() as fresh:
            files = chunk_files(n, now, Path(tmp))
            for run in range(runs):
                for backend, k in CONFIGS:
                    if backend == "postgresql" and fresh is None:
                        continue
                    url = fresh() if fresh else ""
                    if backend == "sqlite":
                        url = f"sqlite:///{Path(tmp) / f'state-{run}.db'}"
                    applied(url, now - timedelta(days=2))
                    rates[(backend, k)].append(one_run(url, k, files, receiver))
    finally:
        receiver.stop()
    report(n, runs, rates)
    return 0


def report(n: int, runs: int, rates: dict[tuple[str, int], list[float]]) -> None:
    print(f"\n### Agent end to end on PostgreSQL and SQLite, {n:,} events, {runs} run(s)\n")
    print(f"{_stats.machine()}\n")
    print("| store | agent processes | events/s min / median / max |")
    print("|---|---:|---:|")
    for (backend, k), got in rates.items():
        if got:
            print(f"| {backend} | {k} | {_stats.spread(got, '{:,.0f}')} |")
    if not rates[("postgresql", 1)]:
        return
    one = rates[("postgresql", 1)]
    each = {"2 agents / 1 agent on PostgreSQL": (_stats.ratios(rates[("postgresql", 2)], one),
                                                 GOAL_SCALE),
            "4 agents / 1 agent on PostgreSQL": (_stats.ratios(rates[("postgresql", 4)], one),
                                                 None),
            "1 agent on PostgreSQL / 1 on SQLite": (_stats.ratios(one, rates[("sqlite", 1)]),
                                                    GOAL_PG)}
    print()
    for label, (values, goal) in each.items():
        verdict = "" if goal is None else (
            f"; goal {goal}x in every run: {'met' if min(values) >= goal else 'NOT met'}")
        print(f"{label}, per run: {_stats.spread(values, '{:.2f}x')} (min / median / max)"
              f"{verdict}")
    print(f"load average (1 / 5 / 15 min) after: {_stats.load()}")

if __name__ == "__main__":
    sys.exit(main())
