"""Where one agent process spends its time: per-phase timers (and optionally cProfile) of the
one-process path of ``agent_throughput.py`` (b): per 1,000 CRM events ``agent ingest`` then
``agent run --once``, to the same loopback receiver, on SQLite or on PostgreSQL.

Each phase (a method of the agent, its store, the state or the sender) is wrapped with a timer
of wall and CPU time; the table shows microseconds per Meta event (phases nest: ``process_inbox``
includes ``store.commit_processed``). A first round of 1,000 events warms the process (imports,
caches) and is not counted. With PostgreSQL the server's own CPU (the bench server's processes
only, from /proc: its postmaster, the children it reaped and those alive, so other servers on a
shared machine are not counted) is shown beside the agent's, in all and during each call of the
store. Each run starts from a new state (``--runs``, at least 3); the table shows the median
wall time and the min / median / max of the CPU times. Figures are printed, never asserted.

    python bench/agent_phases.py                  # SQLite, 20,000 events, 3 runs
    python bench/agent_phases.py --postgres       # a throwaway PostgreSQL server (durable)
    python bench/agent_phases.py --profile        # also cProfile the first run (top 30)
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent / "tests"))

import _stats
import agent_throughput as at
import pg_agents

Timers = defaultdict[str, list[float]]
Server = list[Callable[[], float]]  # the current run's server CPU clock, in a list of one


def timed(timers: Timers, server: Server | None = None) -> None:
    """Wrap the agent's phases with wall / CPU timers (class attributes, this process only,
    once for every run); with ``server``, the store's calls also count the database server's
    CPU (``server[0]``, set by each run)."""
    from reconciler.adapters.agentstore import AgentStore
    from reconciler.adapters.agentstore_pg import PostgresAgentStore
    from reconciler.adapters.meta import GraphSender
    from reconciler.services.agent import Agent
    from reconciler.services.agent_chunk import Chunk

    stores = (AgentStore, PostgresAgentStore)
    order: list[tuple[tuple[Any, ...], str, str]] = [
        ((Agent,), "ingest_jsonl", "ingest_jsonl"), (stores, "ingest", "  store.ingest"),
        ((Agent,), "process_inbox", "process_inbox"), (stores, "pending", "  store.pending"),
        ((Agent,), "_fetch_contacts", "  contacts"), ((Chunk,), "match", "  Chunk.match"),
        (stores, "known_event_ids", "  store.known_event_ids"),
        ((Chunk,), "enqueue", "  Chunk.enqueue"),
        (stores, "commit_processed", "  store.commit_processed"),
        ((Agent,), "deliver_once", "deliver_once"), (stores, "due", "  store.due"),
        ((GraphSender,), "send_encoded", "  GraphSender.send"),
        (stores, "mark_sent", "  store.mark_sent")]
    phases = [(owner, name, label) for owners, name, label in order for owner in owners]
    for owner, name, label in phases:
        counts_server = server if label.strip().startswith("store.") else None
        setattr(owner, name, _timer(getattr(owner, name), timers[label], counts_server))


def _timer(inner: Callable[..., Any], slot: list[float],
           server: Server | None) -> Callable[..., Any]:
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        before = server[0]() if server is not None else 0.0
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            return inner(*args, **kwargs)
        finally:
            if not slot:
                slot.extend((0.0, 0.0, 0.0))
            slot[0] += time.perf_counter() - wall
            slot[1] += time.process_time() - cpu
            if server is not None:
                slot[2] += server[0]() - before
    return wrapped


def _stat(pid: int | str) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def server_cpu_of(url: str) -> Callable[[], float]:
    """CPU seconds so far of the PostgreSQL server behind ``url`` (0 without /proc or when it
    runs elsewhere): its postmaster (with the children it reaped) and its live children."""
    import psycopg

    with psycopg.connect(url) as conn:  # its backend's parent, read while it runs
        row = conn.execute("SELECT pg_backend_pid()").fetchone()
        try:
            postmaster = int(_stat(row[0] if row else 0)[1])
        except (OSError, ValueError, IndexError):
            print("(the PostgreSQL server runs elsewhere: its CPU is not counted)")
            return lambda: 0.0
    tick = os.sysconf("SC_CLK_TCK")

    def total() -> float:
        fields = _stat(postmaster)
        ticks = sum(int(f) for f in fields[11:15])  # utime stime, and of its reaped children
        for pid in Path(f"/proc/{postmaster}/task/{postmaster}/children").read_text().split():
            try:
                child = _stat(pid)
            except OSError:  # it ended: counted in the postmaster's children once reaped
                continue
            ticks += int(child[11]) + int(child[12])
        return ticks / tick
    return total


@contextmanager
def state_url(postgres: bool, folder: Path) -> Iterator[str]:
    if not postgres:
        yield f"sqlite:///{folder / 'state.db'}"
        return
    with pg_agents.databases() as fresh:
        if fresh is None:
            raise SystemExit("no PostgreSQL server (install it or set CONVCTL_BENCH_POSTGRES_URL)")
        yield fresh()


class Run(NamedTuple):
    events: int
    phases: dict[str, tuple[float, ...]]  # label -> (wall, CPU, server CPU) in seconds
    totals: tuple[float, float, float]
    sent: dict[str, int]


def run(n: int, postgres: bool, timers: Timers, server: Server,
        prof: cProfile.Profile | None) -> Run:
    from reconciler.adapters.contacts import EmbeddedContacts
    from reconciler.adapters.meta import GraphSender
    from reconciler.adapters.networks.meta import MetaDestination
    from reconciler.adapters.state import open_provider
    from reconciler.services.agent import Agent, AgentConfig
    from reconciler.services.agent_setup import AgentSettings, open_store

    now = datetime.now(UTC)
    receiver = at.Receiver(at.RECEIVER_DEADLINE)
    try:
        with tempfile.TemporaryDirectory(prefix="convctl-agent-phases-") as tmp, \
                state_url(postgres, Path(tmp)) as url:
            files = pg_agents.chunk_files(n + 2000, now, Path(tmp))
            pg_agents.applied(url, now - timedelta(days=2))
            server_cpu = server[0] = server_cpu_of(url) if postgres else (lambda: 0.0)
            store, provider = open_store(AgentSettings(state=url)), open_provider(url)
            graph = GraphSender(receiver.base_url, "v25.0", timeout=30.0)
            agent = Agent(provider, store, EmbeddedContacts(store),
                          {"meta": MetaDestination(graph)}, AgentConfig(poll_interval=0.0),
                          resolve=lambda ref: at.TOKEN)
            try:
                for path, _ in files[:2]:  # warm-up, not counted
                    agent.ingest_jsonl(path)
                    agent.run(once=True)
                for slot in timers.values():  # the wrappers hold these lists
                    slot.clear()
                start, wall, cpu = server_cpu(), time.perf_counter(), time.process_time()
                if prof is not None:
                    prof.enable()
                for path, _ in files[2:]:
                    agent.ingest_jsonl(path)
                    agent.run(once=True)
                if prof is not None:
                    prof.disable()
                totals = (time.perf_counter() - wall, time.process_time() - cpu,
                          server_cpu() - start)
                sent = agent.status().as_json()["outbox"]
            finally:
                graph.close()
                store.close()
                provider.close()
    finally:
        receiver.stop()
    return Run(sum(k for _, k in files[2:]),
               {label: tuple(slot) for label, slot in timers.items() if slot}, totals, sent)


def report(runs: list[Run], postgres: bool, prof: cProfile.Profile | None) -> None:
    """Per phase: the median wall, the CPU's min / median / max, the server's median (µs an
    event over the runs)."""
    print(f"### One agent process on {'PostgreSQL' if postgres else 'SQLite'}, "
          f"{runs[0].events:,} events, per 1,000: ingest, then run --once; {len(runs)} runs\n")
    server = " server CPU us/event (median) |" if postgres else ""
    print(f"| phase | wall us/event (median) | CPU us/event (min / median / max) |{server}")
    print("|---|---:|---:|" + ("---:|" if postgres else ""))
    rows = [("all (this process)", [r.totals for r in runs], True)]
    rows += [(label, [r.phases.get(label, (0.0, 0.0, 0.0)) for r in runs],
              label.strip().startswith("store.")) for label in runs[0].phases]
    for label, values, on_server in rows:
        per = [[v * 1e6 / r.events for v in times] for r, times in zip(runs, values, strict=True)]
        cpu = _stats.spread([p[1] for p in per], "{:.1f}")
        shown = (f" {statistics.median(p[2] for p in per):.1f} |" if on_server else " - |"
                 ) if postgres else ""
        wall = statistics.median(p[0] for p in per)
        print(f"| {label.replace('  ', '&nbsp;&nbsp;')} | {wall:.1f} | {cpu} |{shown}")
    print(f"\noutbox of each run: {'; '.join(str(r.sent) for r in runs)}; load average after: "
          f"{_stats.load()}")
    if prof is not None:
        print("\n```")
        pstats.Stats(prof, stream=sys.stdout).sort_stats("cumulative").print_stats(30)
        print("```")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000, help="CRM events counted")
    parser.add_argument("--postgres", action="store_true", help="on a PostgreSQL server")
    parser.add_argument("--profile", action="store_true",
                        help="also cProfile the first run (CPU time)")
    parser.add_argument("--runs", type=int, default=_stats.MIN_RUNS)
    args = parser.parse_args(argv)
    print(f"{_stats.machine()}\n")
    timers: Timers = defaultdict(list)
    server: Server = [lambda: 0.0]
    timed(timers, server if args.postgres else None)
    prof = cProfile.Profile(time.process_time) if args.profile else None
    runs = [run(args.n, args.postgres, timers, server, prof if i == 0 else None)
            for i in range(_stats.runs(args.runs))]
    report(runs, args.postgres, prof)
    return 0


if __name__ == "__main__":
    sys.exit(main())
