"""What every bench prints (issue 17): min / median / max of its runs, each run's ratio to a peer
or floor measured in the same run, and the machine's load while it ran.

The reference machine has 2 cores shared with other work, so one run says little: a bench runs
each case at least ``MIN_RUNS`` times, interleaving a case with its peer (or floor) so both see
the same load, and divides each run by its own peer. ``load()`` is ``os.getloadavg`` (1, 5 and 15
minutes); print it before and after the measurements.
"""

from __future__ import annotations

import compileall
import os
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path

MIN_RUNS = 3
PACKAGE = Path(__file__).resolve().parent.parent / "reconciler"


def runs(requested: int, quick: bool = False) -> int:
    """How many runs: 1 for a ``--quick`` smoke test, else at least ``MIN_RUNS``."""
    return 1 if quick else max(requested, MIN_RUNS)


def spread(values: Sequence[float], fmt: str = "{:.2f}", scale: float = 1.0) -> str:
    """``min / median / max`` of ``values`` (times ``scale``), each formatted with ``fmt``."""
    if not values:
        return "-"
    return " / ".join(fmt.format(v * scale) for v in (min(values), statistics.median(values),
                                                      max(values)))


def ratios(values: Sequence[float], peers: Sequence[float]) -> list[float]:
    """Each run over the peer (or floor) measured beside it in the same run."""
    if len(values) != len(peers):
        raise ValueError(f"{len(values)} runs but {len(peers)} peer runs")
    return [v / p for v, p in zip(values, peers, strict=True)]


def ratio_spread(values: Sequence[float], peers: Sequence[float]) -> str:
    """``min / median / max`` of the per-run ratios, as ``1.23x / ...``."""
    return spread(ratios(values, peers), "{:.2f}x")


def load() -> str:
    """The machine's load average over 1, 5 and 15 minutes."""
    try:
        one, five, fifteen = os.getloadavg()
    except OSError:
        return "unknown"
    return f"{one:.2f} / {five:.2f} / {fifteen:.2f}"


def machine() -> str:
    """CPUs, Python and the load now: the first line of every bench's output."""
    return (f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}; load average (1 / 5 / 15 "
            f"min) {load()}")


def compiled() -> None:
    """Write the bytecode of ``reconciler`` once, as an installed package has it.

    With ``PYTHONDONTWRITEBYTECODE`` set (some shells and CI set it) an editable install is never
    cached, so every ``convctl`` child would compile about 50 modules from source (some 40 ms a
    process) that no installed copy pays; the bench would measure the compiler."""
    compileall.compile_dir(str(PACKAGE), quiet=1)
