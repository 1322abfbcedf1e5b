"""The sync agent benchmark still runs and prints its figures (no timing is asserted here)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "bench" / "agent_throughput.py"


def test_agent_throughput_quick() -> None:
    done = subprocess.run([sys.executable, str(SCRIPT), "--quick"], capture_output=True,
                          text=True, timeout=120, check=False)
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    assert "### (a) Payload building, 2,000 contacts" in out
    assert "| ours: `core.capi.PayloadBuilder.form` + orjson |" in out
    assert "### (b) End to end, 2,000 events to a loopback receiver" in out
    lines = out.splitlines()
    ours = next(line for line in lines if line.startswith("| ours: JSONL ingest"))
    header = next(line for line in lines if line.startswith("| path |"))
    assert ours.count("|") == header.count("|"), "the end-to-end row has every column"
    assert "events/s" in header and "ms |" in ours
    assert "outbox sent 2,000, queued 0, dead 0; expected 2,000" in out
    assert "MISMATCH" not in out
    if "facebook-business is not installed" not in out:  # the SDK columns, when it is there
        assert "| facebook-business: `Event.normalize()` + json |" in out
        assert "build ratio ours/SDK:" in out and "end-to-end ratio ours (durable)" in out
        assert "events_received 2,000; expected 2,000" in out
