"""``bench/webhook_ingest.py --quick`` still runs and prints its figures (no timing asserted)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "webhook_ingest.py"


def test_webhook_ingest_quick() -> None:
    done = subprocess.run([sys.executable, str(BENCH), "--quick", "--requests", "10"],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "| 1 client(s) |" in done.stdout and "| 10 client(s) |" in done.stdout
    assert "floor (/livez p50):" in done.stdout
    assert "Goal: p99 under 50 ms for one client, in every round:" in done.stdout
