"""How long ``convctl`` takes to start: wall time of whole processes, median of many runs.

Compares ``convctl --help`` with a bare interpreter and with ``import click`` (the floor for a
click CLI; goal: ``--help`` within 1.3x of it), and times ``convctl validate`` on the shipped
``manifests/`` (a small repo). Runs are interleaved so a busy machine skews every command alike.

    python bench/startup.py            # 21 runs each
    python bench/startup.py --quick    # 3 runs each (smoke test)
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

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
    parser.add_argument("--quick", action="store_true", help="3 runs per command (smoke test)")
    args = parser.parse_args(argv)
    runs = 3 if args.quick else max(args.runs, 1)
    cmds = commands()
    for argv_ in cmds.values():  # warm the OS file cache and .pyc files
        wall(argv_)
    times: dict[str, list[float]] = {name: [] for name in cmds}
    for _ in range(runs):
        for name, argv_ in cmds.items():
            times[name].append(wall(argv_))
    medians = {name: statistics.median(values) for name, values in times.items()}
    print(f"startup, median of {runs} runs; {os.cpu_count()} CPUs, Python "
          f"{sys.version.split()[0]}")
    print()
    print("| command | median | min |")
    print("| --- | ---: | ---: |")
    for name, values in times.items():
        print(f"| `{name}` | {medians[name] * 1000:.0f} ms | {min(values) * 1000:.0f} ms |")
    ratio = medians["convctl --help"] / medians["python -c 'import click'"]
    print()
    print(f"convctl --help / import click: {ratio:.2f}x (goal: within 1.3x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
