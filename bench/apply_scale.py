"""Is apply linear? CPU per create of ``convctl apply`` from an empty SQLite state, by size.

For each size N (default 1,000 / 10,000 / 50,000 events, 100 per account) it generates valid
manifests (bench/validate_scale.py's generator) once, then runs ``convctl apply --auto-approve``
as a whole process into a fresh state file ``--runs`` times (each create is its own durable
transaction, as in production) and prints the child's CPU time per create and wall time as
min / median / max, and the ratio of each size's median CPU per create to the smallest size's
(the goal: at most 1.2 at 50,000). ``--max-runs-50k`` caps the runs of the 50,000 size (slow on
a busy machine); the table says how many ran.

    python bench/apply_scale.py                    # 1,000 / 10,000 / 50,000, 3 runs each
    python bench/apply_scale.py --sizes 1000,10000 --runs 5
    python bench/apply_scale.py --quick            # 300 and 1,000 events, 1 run: smoke test
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _stats
import validate_scale as gen


def apply_once(folder: Path, state: Path, n_events: int) -> gen.Run:
    for stale in state.parent.glob(state.name + "*"):
        stale.unlink()
    result = gen.run([*gen.convctl(), "apply", "--path", str(folder), "--state",
                      f"sqlite:///{state}", "--auto-approve"])
    if result.exit_code != 0:
        sys.exit(f"apply exited {result.exit_code}:\n{result.stderr[-1500:]}")
    steps = n_events + -(-n_events // gen.EVENTS_PER_ACCOUNT)
    if f"Apply complete: {steps} step(s) done" not in result.stdout:
        sys.exit(f"expected {steps} steps:\n{result.stdout[-500:]}")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,50000")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--max-runs-50k", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="300 and 1,000 events, 1 run")
    args = parser.parse_args(argv)
    _stats.compiled()  # children load cached bytecode, as an installed copy does
    sizes = [300, 1000] if args.quick else [int(s) for s in args.sizes.split(",")]
    runs = _stats.runs(args.runs, args.quick)
    print(_stats.machine())
    print("| creates | runs | CPU per create (ms) min / median / max | wall (s) min / median "
          "/ max | median CPU per create vs smallest |")
    print("|---:|---:|---:|---:|---:|", flush=True)
    baseline: float | None = None
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            folder = Path(tmp) / f"m{n}"
            gen.write_packed(folder, n)
            count = min(runs, args.max_runs_50k) if n >= 50_000 else runs
            results = [apply_once(folder, Path(tmp) / f"s{n}.db", n) for _ in range(count)]
            per_create = [r.cpu_seconds * 1000 / n for r in results]
            baseline = baseline or statistics.median(per_create)
            print(f"| {n:,} | {count} | {_stats.spread(per_create, '{:.3f}')} | "
                  f"{_stats.spread([r.seconds for r in results], '{:.2f}')} | "
                  f"{statistics.median(per_create) / baseline:.2f}x |", flush=True)
    print(f"load average after: {_stats.load()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
