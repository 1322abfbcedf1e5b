"""How fast ``convctl plan`` is on a large live state, and how fast apply creates events.

For each size N (default 1,000 / 10,000 / 50,000 events, 100 per account, so up to 500 accounts)
it generates valid manifests (bench/validate_scale.py's generator), fills an embedded SQLite state
to match them, changes 1% of the events in the manifests, then times ``convctl plan`` as a whole
process (wall time and the child's peak RSS) and checks it reports exactly those updates: 3 runs,
min / median / max, each beside the floor measured just before it (the CPU time of libyaml's
event stream alone over the same files; ``validate_scale.event_floor``).
It also times ``convctl apply --auto-approve`` creating 1,000 events from an empty state (each
create is its own transaction, as in production; the apply syncs them to disk once, when it
releases the lock), as many runs, PostgreSQL's beside SQLite's. ``bench/apply_scale.py``
measures apply at 1k / 10k / 50k creates.

Filling the 10k/50k states goes through the same provider calls as apply, with SQLite's
``synchronous=OFF`` on the bench's own connection only, so set-up takes seconds, not minutes.

PostgreSQL runs beside SQLite (issue 11): the filled SQLite state is copied into a fresh
database (``convctl state copy``'s code), and the same plans and apply run against it. The
server is ``CONVCTL_BENCH_POSTGRES_URL`` (a role that may create databases), else a throwaway
one started from PostgreSQL's binaries with its durability settings left on (fsync, synchronous
commit), like SQLite's; without either the PostgreSQL rows are left out, saying so.

    python bench/plan_scale.py                 # 1,000 / 10,000 / 50,000
    python bench/plan_scale.py --sizes 10000
    python bench/plan_scale.py --quick         # 500 events, smoke test
    python bench/plan_scale.py --no-postgres   # SQLite only
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent / "tests"))

import _stats
import validate_scale as gen

Databases = Callable[[], str] | None  # a fresh PostgreSQL database's URL, per call


def fill_state(folder: Path, state: Path) -> None:
    """Make the live state match the manifests in ``folder`` (managed events, as after apply)."""
    from reconciler.adapters.manifests import load
    from reconciler.adapters.state.sqlite import SqliteProvider
    from reconciler.core.live import EventWrite

    manifests, diags = load([folder])
    if diags.has_errors:
        sys.exit(f"generated manifests are invalid: {diags.errors[0].render()}")
    provider = SqliteProvider(state)
    provider._conn.execute("PRAGMA synchronous=OFF")  # bench set-up only
    for acc in manifests.accounts:
        model = acc.model
        provider.put_account(model.name, model.spec, dict(model.metadata.labels), None)
    for ev in manifests.events:
        provider.create_event(EventWrite.from_manifest(ev.model))
    provider.close()


def change_one_percent(folder: Path) -> int:
    """Bump the value of every 100th form event in place; return how many changed."""
    changed = 0
    for path in sorted(folder.glob("events-*.yaml")):
        text = path.read_text()
        count = 0

        def bump(match: re.Match[str]) -> str:
            nonlocal count
            count += 1
            if count % 50:  # half the events are forms: every 50th form = 1% of all events
                return match.group(0)
            return f"amount: {int(match.group(1)) + 1}"

        path.write_text(re.sub(r"amount: (\d+)", bump, text))
        changed += count // 50
    return changed


def _in_child(*args: str) -> str:
    """Run a set-up step in a child process. On Linux a child's peak RSS (``wait4``) starts at
    its parent's size when it was spawned, so the bench process itself must stay small: the
    50,000-event set-up would otherwise show up as the plan's memory."""
    return subprocess.run([sys.executable, __file__, *args], check=True, text=True,
                          stdout=subprocess.PIPE).stdout


def bench_plan(tmp: Path, n_events: int, runs: int, databases: Databases) -> None:
    folder = tmp / f"m{n_events}"
    state = tmp / f"state{n_events}.db"
    _in_child("--prepare", str(n_events), str(folder), str(state))
    urls = {"sqlite": f"sqlite:///{state}"}
    if databases is not None:
        urls["postgresql"] = databases()
        _in_child("--copy", urls["sqlite"], urls["postgresql"])
    cleans = {}
    for backend, url in urls.items():
        cleans[backend] = gen.run([*gen.convctl(), "plan", str(folder), "--state", url])
        if "No changes." not in cleans[backend].stdout:
            sys.exit(f"expected no changes after filling the state:\n"
                     f"{cleans[backend].stdout[-1500:]}{cleans[backend].stderr[-1500:]}")
    changed = int(_in_child("--change", str(folder)))

    def updates(result: gen.Run) -> None:
        if result.exit_code != 2 or f"{changed} to update" not in result.stdout:
            sys.exit(f"plan exited {result.exit_code}; expected {changed} updates:\n"
                     f"{result.stderr[-1500:]}{result.stdout[-500:]}")

    for backend, url in urls.items():
        timed = gen.timed([*gen.convctl(), "plan", str(folder), "--state", url,
                           "--detailed-exitcode"], folder, runs, updates)
        best = timed.best()
        print(f"| plan | {backend} | {n_events:>6,} | {changed:>4} updates | "
              f"{cleans[backend].seconds:6.2f} s | {timed.wall()} s | {timed.cpu()} s | "
              f"{timed.floor()} s | {timed.ratio()} | {n_events / best.seconds:>8,.0f} | "
              f"{best.max_rss_mib:6.0f} MiB |", flush=True)


def bench_apply(tmp: Path, n_events: int, runs: int, databases: Databases) -> None:
    """``runs`` applies per backend into fresh states, interleaved so SQLite and PostgreSQL see
    the same load; PostgreSQL's row gives each run's CPU over SQLite's in the same round."""
    folder = tmp / f"apply{n_events}"
    gen.write_packed(folder, n_events)
    results: dict[str, list[gen.Run]] = {"sqlite": []}
    if databases is not None:
        results["postgresql"] = []
    for i in range(runs):
        for backend, done in results.items():
            url = (databases() if backend == "postgresql" and databases is not None
                   else f"sqlite:///{tmp / f'apply{n_events}-{i}.db'}")
            result = gen.run([*gen.convctl(), "apply", "--path", str(folder), "--state", url,
                              "--auto-approve"])
            if result.exit_code != 0:
                sys.exit(f"apply exited {result.exit_code}:\n{result.stderr[-1500:]}")
            done.append(result)
    sqlite_cpu = [r.cpu_seconds for r in results["sqlite"]]
    for backend, done in results.items():
        cpu = [r.cpu_seconds for r in done]
        ratio = "-" if backend == "sqlite" else _stats.ratio_spread(cpu, sqlite_cpu) + " SQLite"
        best = min(done, key=lambda r: r.seconds)
        print(f"| apply (creates) | {backend} | {n_events:>6,} | - | - | "
              f"{_stats.spread([r.seconds for r in done])} s | {_stats.spread(cpu)} s | - | "
              f"{ratio} | {n_events / best.seconds:>8,.0f} | {best.max_rss_mib:6.0f} MiB |",
              flush=True)


@contextmanager
def postgres(wanted: bool) -> Iterator[Databases]:
    """Fresh databases on ``CONVCTL_BENCH_POSTGRES_URL`` or on a throwaway durable server."""
    if not wanted:
        yield None
        return
    from pgserver import find_bindir, server_from_env, start_server

    url = os.environ.get("CONVCTL_BENCH_POSTGRES_URL")
    bindir = None if url else find_bindir()
    if not url and bindir is None:
        print("(no PostgreSQL: set CONVCTL_BENCH_POSTGRES_URL or install PostgreSQL for its "
              "rows)", flush=True)
        yield None
        return
    server = server_from_env(url) if url else start_server(bindir, durable=True)  # type: ignore[arg-type]
    try:
        yield lambda: server.fresh_database()[0]
    finally:
        server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,50000")
    parser.add_argument("--apply-size", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=_stats.MIN_RUNS,
                        help="plan and apply runs per size (at least 3)")
    parser.add_argument("--quick", action="store_true", help="500 events: a smoke test")
    parser.add_argument("--prepare", nargs=3, metavar=("N", "FOLDER", "STATE"),
                        help=argparse.SUPPRESS)
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    parser.add_argument("--change", metavar="FOLDER", help=argparse.SUPPRESS)
    parser.add_argument("--copy", nargs=2, metavar=("FROM", "TO"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    _stats.compiled()  # children load cached bytecode, as an installed copy does
    if args.copy:  # child: the SQLite state into PostgreSQL, as `convctl state copy` does
        from reconciler.adapters.state.snapshot import copy_state

        copy_state(*args.copy)
        return 0
    if args.prepare:  # child: generate the manifests and fill the state to match
        gen.write_packed(Path(args.prepare[1]), int(args.prepare[0]))
        fill_state(Path(args.prepare[1]), Path(args.prepare[2]))
        return 0
    if args.change:  # child: change 1% of the events
        print(change_one_percent(Path(args.change)))
        return 0
    sizes = [500] if args.quick else [int(s) for s in args.sizes.split(",")]
    apply_size = 200 if args.quick else args.apply_size
    runs = _stats.runs(args.runs, args.quick)
    print(f"{_stats.machine()}\nplan: min / median / max of {runs} run(s) with 1% changed; floor: "
          "libyaml's event stream alone over the same files, measured before each run")
    print("| what | state | events | change | plan, no changes | plan, 1% changed | "
          "CPU (1% changed) | floor (CPU) | CPU / floor | events/s (best) | peak RSS |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|", flush=True)
    with tempfile.TemporaryDirectory() as tmp, postgres(not args.no_postgres) as databases:
        for n in sizes:
            bench_plan(Path(tmp), n, runs, databases)
        bench_apply(Path(tmp), apply_size, runs, databases)
    print(f"load at the end: {_stats.load()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
