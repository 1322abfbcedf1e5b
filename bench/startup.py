"""How long ``convctl`` takes to start: wall time of whole processes, min / median / max of many
rounds, each command's ratio to ``import click`` taken per round.

Compares ``convctl --help`` with a bare interpreter and with ``import click`` (the floor for a
click CLI; goal: ``--help`` within 1.3x of it), and times ``convctl validate`` on the shipped
``manifests/`` (a small repo). Runs are interleaved so a busy machine skews every command alike.

    python bench/startup.py            # 21 runs each
    python bench/startup.py --quick    # 1 run each (smoke test)
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _stats

REPO = Path(__file__).resolve().parent.parent


def convctl() -> str:
    exe = Path(sys.executable).parent / "convctl"
    if not exe.exists():
        sys.exit("convctl is not installed next to this interpreter (pip install -e .)")
    return str(exe)


def commands() -> dict[str, list[str]]:
    return {
        "python -c pass": [sys.executable, "-c", "pass"],
        "python -c 'import click'": [sys.executable, "-c", "import click"],
        "convctl --help": [convctl(), "--help"],
        "convctl validate manifests/": [convctl(), "validate", "manifests"],
    }


def wall(args: list[str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(args, cwd=REPO, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, check=False)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"{' '.join(args)} exited {done.returncode}: {done.stderr.decode()[-1000:]}")
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=21, help="runs per command (default 21)")
    parser.add_argument("--quick", action="store_true", help="1 run per command (smoke test)")
    args = parser.parse_args(argv)
    _stats.compiled()  # children load cached bytecode, as an installed copy does
    runs = _stats.runs(args.runs, args.quick)
    cmds = commands()
    for argv_ in cmds.values():  # warm the OS file cache and .pyc files
        wall(argv_)
    print(f"startup, {runs} interleaved rounds; {_stats.machine()}")
    times: dict[str, list[float]] = {name: [] for name in cmds}
    for _ in range(runs):
        for name, argv_ in cmds.items():
            times[name].append(wall(argv_))
    click_times = times["python -c 'import click'"]
    print()
    print("| command | min / median / max | vs `import click`, per round |")
    print("| --- | ---: | ---: |")
    for name, values in times.items():
        print(f"| `{name}` | {_stats.spread(values, '{:.0f}', 1000)} ms | "
              f"{_stats.ratio_spread(values, click_times)} |")
    medians = statistics.median(times["convctl --help"]) / statistics.median(click_times)
    worst = max(_stats.ratios(times["convctl --help"], click_times))
    print()
    print(f"convctl --help / import click: {medians:.2f}x of the medians (goal: within 1.3x), "
          f"worst single round {worst:.2f}x; load at the end: {_stats.load()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
