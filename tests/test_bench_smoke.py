"""The benchmark scripts still run and print their figures (no timing is asserted here)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"


def run_script(name: str, *args: str) -> str:
    done = subprocess.run([sys.executable, str(BENCH / name), *args], capture_output=True,
                          text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(r"load average \(1 / 5 / 15 min\) \d+\.\d\d / ", done.stdout), done.stdout
    return done.stdout


def test_stats_spread_and_per_run_ratios() -> None:
    """The shared helper: min / median / max, and each run over its own peer (issue 17)."""
    sys.path.insert(0, str(BENCH))
    import _stats

    assert _stats.spread([3.0, 1.0, 2.0]) == "1.00 / 2.00 / 3.00"
    assert _stats.spread([0.0012, 0.0034, 0.0023], "{:.1f}", 1000) == "1.2 / 2.3 / 3.4"
    # per run: 2/1, 3/3, 8/2 -> 1, 2, 4 (not the ratio of the medians, 3/2)
    assert _stats.ratio_spread([2.0, 3.0, 8.0], [1.0, 3.0, 2.0]) == "1.00x / 2.00x / 4.00x"
    assert _stats.runs(1) == 3 and _stats.runs(5) == 5 and _stats.runs(5, quick=True) == 1
    with pytest.raises(ValueError, match="3 runs but 2 peer runs"):
        _stats.ratios([1.0, 2.0, 3.0], [1.0, 2.0])


def test_validate_scale_quick() -> None:
    out = run_script("validate_scale.py", "--quick")
    assert "| 2,000 | packed |" in out
    assert "| 2,000 | per-file |" in out
    assert "events/s" in out and "MiB" in out
    # the generated set is valid and within the quota, and the broken event is found exactly
    assert "20 accounts, 2000 events, 2000/2000 lifecycle-stage slots used: OK" in out
    assert out.count(": exact") == 2


def test_plan_scale_quick() -> None:
    """The set-up runs in child processes and the plan reports exactly the 1% changed, on
    SQLite and, beside it, on PostgreSQL when a server can be had (issue 11)."""
    out = run_script("plan_scale.py", "--quick")
    assert "| plan | sqlite |    500 |    5 updates |" in out
    assert "| apply (creates) | sqlite |    200 |" in out and "CPU" in out and "MiB" in out
    if "(no PostgreSQL" not in out:
        assert "| plan | postgresql |    500 |    5 updates |" in out
        assert "| apply (creates) | postgresql |    200 |" in out


def test_apply_scale_quick() -> None:
    """Each size applies every create (checked by the script) and prints CPU per create."""
    out = run_script("apply_scale.py", "--quick")
    assert "| 300 | 1 |" in out and "| 1,000 | 1 |" in out and "1.00x" in out
    assert "load average (1 / 5 / 15 min) " in out.splitlines()[0]
    assert "load average after: " in out


def test_startup_quick() -> None:
    out = run_script("startup.py", "--quick")
    for command in ("python -c pass", "import click", "convctl --help",
                    "convctl validate manifests/"):
        assert f"{command}" in out
    assert "convctl --help / import click: " in out and "of the medians" in out
    assert "| `convctl --help` | " in out and "x |" in out  # the ratio, per round


@pytest.mark.parametrize("loader", ["round-trip", "safe, C parser", "CSafeLoader",
                                    "parse_documents"])
def test_yaml_parsers_quick(loader: str, yaml_parsers_output: str) -> None:
    line = next(row for row in yaml_parsers_output.splitlines() if loader in row)
    assert line.count("|") == 5


@pytest.fixture(scope="module")
def yaml_parsers_output() -> str:
    return run_script("yaml_parsers.py", "--quick")


def test_policy_engines_quick() -> None:
    out = run_script("policy_engines.py", "--quick")
    rego = next(line for line in out.splitlines() if line.startswith("| Rego"))
    assert "form_email 7" in rego and "max_events_per_ad_account 0" in rego, out
