"""Apply and the lock with real `convctl` processes on one SQLite state (issue 10 items 1-2).

An interactive apply holds the lock while it asks (on a pseudo-terminal); killed there, its
lock names a process that is gone, and the next apply says so (and does not break it); a saved
plan that waited for the lock while the state changed is refused as stale before any write.
"""

from __future__ import annotations

import os
import pty
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from serverkit import convctl, convctl_cmd

from reconciler.adapters.state.sqlite import SqliteProvider
from reconciler.core.provider import LockInfo
from reconciler.services.planning import load_manifests

ROOT = Path(__file__).resolve().parents[1]
PROMPT = "Do you want to perform these actions?"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "manifests", tmp_path / "manifests")
    return tmp_path


def _env(repo: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "NO_COLOR": "1",
            "CONVCTL_STATE": f"sqlite:///{repo / 'state.db'}", **extra}


class Interactive:
    """`convctl apply` with its stdin on a pseudo-terminal, so it plans, shows and asks."""

    def __init__(self, repo: Path) -> None:
        self.master, slave = pty.openpty()
        self.out = repo / "interactive.out"
        with self.out.open("w") as sink:
            self.proc = subprocess.Popen([*convctl_cmd(), "apply"], cwd=repo, stdin=slave,
                                         stdout=sink, stderr=subprocess.STDOUT,
                                         env=_env(repo, CONVCTL_LOCK_HOLDER="alice@tty"))
        os.close(slave)

    def wait_for(self, text: str, timeout: float = 60) -> str:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            seen = self.out.read_text()
            if text in seen:
                return seen
            assert self.proc.poll() is None, seen
            time.sleep(0.05)
        raise AssertionError(f"{text!r} not seen: {self.out.read_text()}")

    def answer(self, line: str) -> int:
        os.write(self.master, line.encode() + b"\n")
        return self.proc.wait(60)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        os.close(self.master)


@pytest.fixture
def interactive(repo: Path) -> Iterator[Interactive]:
    session = Interactive(repo)
    yield session
    session.close()


def _lock(repo: Path) -> LockInfo | None:
    provider = SqliteProvider(repo / "state.db")
    try:
        return provider.current_lock()
    finally:
        provider.close()


def test_interactive_apply_holds_the_lock_while_it_asks(repo: Path,
                                                        interactive: Interactive) -> None:
    interactive.wait_for(PROMPT)
    lock = _lock(repo)
    assert lock is not None and lock.holder == "alice@tty"
    blocked = convctl("apply", "--auto-approve", env=_env(repo), cwd=repo)
    assert blocked.returncode == 1, blocked.stderr
    assert "held by alice@tty" in blocked.stderr and "no longer running" not in blocked.stderr
    assert interactive.answer("yes") == 0
    assert "Apply complete: 9 step(s) done" in interactive.out.read_text()
    assert _lock(repo) is None
    again = convctl("plan", "--detailed-exitcode", env=_env(repo), cwd=repo)
    assert again.returncode == 0 and "No changes." in again.stdout


def test_answering_no_changes_nothing_and_releases(repo: Path,
                                                   interactive: Interactive) -> None:
    interactive.wait_for(PROMPT)
    assert interactive.answer("no") == 1
    assert "Apply cancelled." in interactive.out.read_text()
    assert _lock(repo) is None
    assert convctl("plan", "--detailed-exitcode", env=_env(repo), cwd=repo).returncode == 2


def test_a_killed_holder_is_noticed_but_its_lock_is_not_broken(repo: Path,
                                                               interactive: Interactive) -> None:
    """Issue 10 item 2: a holder whose pid is dead on this host is named as such, with the
    `convctl unlock ID` to run; the lock stays until the user breaks it."""
    interactive.wait_for(PROMPT)
    lock = _lock(repo)
    assert lock is not None
    pid = interactive.proc.pid
    interactive.proc.send_signal(signal.SIGKILL)
    interactive.proc.wait()
    blocked = convctl("apply", "--auto-approve", env=_env(repo), cwd=repo)
    assert blocked.returncode == 1
    assert blocked.stderr == (
        f"error: the state is locked: {lock.describe()}; its process {pid} on this host "
        f"is no longer running; if no apply is running, `convctl unlock {lock.id}`\n")
    assert _lock(repo) == lock, "never broken automatically"
    assert convctl("unlock", lock.id, env=_env(repo), cwd=repo).returncode == 0
    applied = convctl("apply", "--auto-approve", env=_env(repo), cwd=repo)
    assert applied.returncode == 0, applied.stderr


def test_saved_plan_that_waited_for_the_lock_is_refused_as_stale(repo: Path) -> None:
    """Issue 10 item 1: the freshness check runs once the lock is held; what another apply
    wrote while this one waited makes it refuse, with nothing written by it (not a mid-way
    "already exists")."""
    assert convctl("plan", "--out", "plan.json", env=_env(repo), cwd=repo).returncode == 0
    other = SqliteProvider(repo / "state.db")
    lock = other.acquire_lock("bob@ci", "apply", 600)
    log = repo / "waiting.err"
    with log.open("w") as sink:
        waiting = subprocess.Popen([*convctl_cmd(), "apply", "plan.json", "--lock-timeout",
                                    "60s"], cwd=repo, env=_env(repo), stdout=subprocess.PIPE,
                                   stderr=sink, text=True)
    end = time.monotonic() + 60
    while "Waiting up to 60s for the state lock" not in log.read_text():
        assert waiting.poll() is None and time.monotonic() < end, log.read_text()
        time.sleep(0.05)
    for account in load_manifests([repo / "manifests"]).manifests.accounts:  # bob applies
        model = account.model
        other.put_account(model.name, model.spec, dict(model.metadata.labels), None)
    before = (other.list_accounts(), other.list_events())
    other.release_lock(lock.id)
    out, _ = waiting.communicate(timeout=60)
    err = log.read_text()
    assert waiting.returncode == 1, out + err
    assert "saved plan is stale: live account acme appeared" in err, err
    assert "nothing was applied" in err and "already exists" not in out + err
    assert (other.list_accounts(), other.list_events()) == before
    assert other.current_lock() is None
    other.close()
