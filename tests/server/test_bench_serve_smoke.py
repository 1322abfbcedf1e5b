"""``bench/serve_load.py --quick`` still runs and prints its figures (no timing asserted)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "serve_load.py"


def test_serve_load_quick() -> None:
    done = subprocess.run([sys.executable, str(BENCH), "--quick"], capture_output=True,
                          text=True, timeout=180, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "| list |" in done.stdout and "| patch |" in done.stdout
    assert "convctl plan, 200 events in 10 accounts" in done.stdout
    assert "HTTP / embedded per round" in done.stdout and "load average" in done.stdout
