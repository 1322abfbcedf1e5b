"""The CLI test helpers most test files share: the shipped repository in a temp folder, and
``run`` (the CLI in-process through click's runner, exceptions not swallowed)."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from reconciler.cli.main import cli

ROOT = Path(__file__).resolve().parents[1]


def shipped_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *folders: str) -> Path:
    """``manifests/`` (and ``folders``, e.g. ``schemas``) copied to ``tmp_path``, which becomes
    the working folder; the embedded default state; no colour; no settings from the caller's
    environment that would change what the CLI does."""
    for folder in ("manifests", *folders):
        shutil.copytree(ROOT / folder, tmp_path / folder)
    monkeypatch.chdir(tmp_path)
    for var in ("CONVCTL_STATE", "CONVCTL_POLICIES"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_COLOR", "1")
    return tmp_path


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def wait_running(proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    """Until a ``convctl agent run`` started with ``stderr=PIPE`` logs that it is running (its
    imports and set-up done)."""
    assert proc.stderr is not None
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        line = proc.stderr.readline()
        if b"agent running" in line:
            return
        if not line and proc.poll() is not None:
            break
    raise AssertionError(f"the agent did not start: {proc.poll()}")
