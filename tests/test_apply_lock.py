"""Apply and the state lock (issue 10 items 1-2), in process on real SQLite files.

The plan or the saved plan's freshness is decided under the lock; a held lock is waited for up to
a timeout; the lock is renewed while apply runs; an apply that lost its lock stops before its
next write. Faults are injected by wrapping a real provider and acting before a given write.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from reconciler.adapters.state.memory import MemoryProvider
from reconciler.adapters.state.sqlite import SqliteProvider
from reconciler.core.provider import LockInfo
from reconciler.errors import LockedError, StalePlanError
from reconciler.services.apply import (
    ApplyReport,
    FromManifests,
    SavedPlan,
    StepResult,
    apply,
)
from reconciler.services.locking import LockPolicy, acquire, explain_holder
from reconciler.services.planning import load_manifests, make_plan

ROOT = Path(__file__).resolve().parents[1]
MANIFESTS = str(ROOT / "manifests")
WRITES = ("put_account", "create_event", "update_event", "delete_event")


class BeforeWrite:
    """A real provider that runs ``hook(n)`` before its n-th write (fault injection)."""

    def __init__(self, inner: Any, hook: Callable[[int], None]) -> None:
        self.inner, self.hook, self.writes = inner, hook, 0

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.inner, name)
        if name not in WRITES:
            return attr

        def write(*args: Any, **kwargs: Any) -> Any:
            self.writes += 1
            self.hook(self.writes)
            return attr(*args, **kwargs)

        return write


def _from_manifests() -> FromManifests:
    return FromManifests(load_manifests([MANIFESTS]))


def _apply(provider: Any, source: Any = None, **kw: Any) -> Any:
    return apply(provider, source or _from_manifests(), holder="test", progress=lambda _: None,
                 **kw)


def test_ok_costs_the_same_at_any_length() -> None:
    """Issue 17 item 1: ``ok`` rescanned every finished step on each iteration (50M calls at
    10k creates); now it is a counter, so 1,000 checks on 100,000 steps take no time."""
    report = ApplyReport("run")
    for i in range(100_000):
        report.add(StepResult(i, f"create event.a/e{i}", "done"))
    started = time.perf_counter()
    assert all(report.ok for _ in range(1_000))
    assert time.perf_counter() - started < 0.5  # a rescan would take about 5 s here
    report.add(StepResult(100_001, "create event.a/x", "failed", "boom"))
    report.add(StepResult(100_002, "create event.a/y", "pending"))
    assert not report.ok
    assert (report.count("done"), report.count("failed"), report.count("pending")) == (
        100_000, 1, 1)


def test_the_plan_is_made_under_the_lock(tmp_path: Path) -> None:
    """The live state an apply plans against is read once it holds the lock: what another
    apply wrote while this one waited is seen (planned before the lock, the creates below
    would fail with "already exists")."""
    state = tmp_path / "state.db"
    provider, other = SqliteProvider(state), SqliteProvider(state)
    lock = other.acquire_lock("other", "apply", 60)

    def other_applies_accounts_then_releases() -> None:
        for account in load_manifests([MANIFESTS]).manifests.accounts:
            model = account.model
            other.put_account(model.name, model.spec, dict(model.metadata.labels), None)
        other.release_lock(lock.id)

    timer = threading.Timer(0.3, other_applies_accounts_then_releases)
    timer.start()
    outcome = _apply(provider, policy=LockPolicy(timeout_seconds=10))
    timer.join()
    assert outcome.report is not None and outcome.report.ok, outcome.report
    assert not [c for c in outcome.plan.changes if c.kind == "account"]
    assert make_plan([MANIFESTS], provider).plan.is_empty  # type: ignore[union-attr]


def test_saved_plan_is_checked_under_the_lock(tmp_path: Path) -> None:
    """Issue 10 item 1: a saved plan whose lock request was delayed (another apply changed the
    state meanwhile) is refused as stale before any write, never a mid-way 409."""
    provider = SqliteProvider(tmp_path / "state.db")
    plan = make_plan([MANIFESTS], provider).plan
    assert plan is not None

    class ChangedWhileWaiting(BeforeWrite):
        def acquire_lock(self, *args: Any, **kwargs: Any) -> LockInfo:
            _apply(self.inner)  # someone else applied the same manifests first
            return self.inner.acquire_lock(*args, **kwargs)  # type: ignore[no-any-return]

    racing = ChangedWhileWaiting(provider, lambda n: None)
    with pytest.raises(StalePlanError, match=r"saved plan is stale: live account .* appeared"):
        _apply(racing, SavedPlan(plan, [MANIFESTS]))
    assert racing.writes == 0, "refused before any write of its own"
    assert provider.current_lock() is None


def test_lock_timeout_waits_then_names_the_holder() -> None:
    """A held lock is retried with backoff until the timeout, then refused naming the holder
    and `convctl unlock ID` (the clock and sleep are injected: no real waiting)."""
    provider = MemoryProvider()
    held = provider.acquire_lock("alice@ci", "apply", 600)
    now = [0.0]
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        now[0] += seconds

    policy = LockPolicy(timeout_seconds=30, clock=lambda: now[0], sleep=sleep)
    lines: list[str] = []
    with pytest.raises(LockedError) as refused:
        acquire(provider, "bob", "apply", policy, lines.append)
    message = str(refused.value)
    assert message.startswith("still locked after 30s: the state is locked: lock ")
    assert "alice@ci" in message and f"`convctl unlock {held.id}`" in message
    assert now[0] == pytest.approx(30) and 10 < len(sleeps) < 40 and max(sleeps) <= 3
    assert lines == [f"Waiting up to 30s for the state lock ({held.describe()})..."]


def test_lock_timeout_zero_fails_at_once() -> None:
    provider = MemoryProvider()
    held = provider.acquire_lock("alice@ci", "apply", 600)
    policy = LockPolicy(sleep=lambda s: pytest.fail("slept with --lock-timeout 0"))
    with pytest.raises(LockedError, match=f"held by alice@ci.*`convctl unlock {held.id}`"):
        _apply(provider, policy=policy)
    assert provider.list_events() == []


def test_a_waiting_apply_gets_the_lock_when_it_is_released() -> None:
    provider = MemoryProvider()
    held = provider.acquire_lock("alice@ci", "apply", 600)
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds
        if now[0] > 5:
            provider.release_lock(held.id)

    policy = LockPolicy(timeout_seconds=60, clock=lambda: now[0], sleep=sleep)
    assert acquire(provider, "bob", "apply", policy, lambda _: None).holder == "bob"
    assert 5 < now[0] < 10


def _lock(pid: int, host: str) -> LockInfo:
    at = datetime(2026, 3, 1, tzinfo=UTC)
    return LockInfo(id="abc123", holder="bob@ci", pid=pid, host=host, operation="apply",
                    created_at=at, expires_at=at + timedelta(minutes=15))


def test_holder_notice_depends_on_its_process() -> None:
    dead = explain_holder(_lock(4242, "box"), host="box", running=lambda pid: False)
    assert dead.endswith("its process 4242 on this host is no longer running; if no apply is "
                         "running, `convctl unlock abc123`")
    alive = explain_holder(_lock(4242, "box"), host="box", running=lambda pid: True)
    elsewhere = explain_holder(_lock(4242, "other"), host="box", running=lambda pid: False)
    for text in (alive, elsewhere):
        assert "no longer running" not in text and "`convctl unlock abc123`" in text
        assert "--lock-timeout" in text


def test_lock_is_renewed_while_apply_runs(tmp_path: Path) -> None:
    """Issue 10 item 2, with a 1 s TTL (renewed every 1/3 s in the background): one step of the
    apply takes 2.5 s, well past the TTL; another process's attempts meanwhile are refused."""
    state = tmp_path / "state.db"
    slow = BeforeWrite(SqliteProvider(state), lambda n: time.sleep(2.5 if n == 3 else 0))
    other = SqliteProvider(state)
    refusals: list[str] = []

    def contend() -> None:
        time.sleep(1.5)  # past the first TTL, inside the long step
        for _ in range(5):
            try:
                other.release_lock(other.acquire_lock("intruder", "apply", 60).id)
                refusals.append("TAKEN")
            except LockedError as exc:
                refusals.append(str(exc))
            time.sleep(0.2)

    thread = threading.Thread(target=contend)
    thread.start()
    outcome = _apply(slow, policy=LockPolicy(ttl_seconds=1.0))
    thread.join()
    assert outcome.report.ok, outcome.report.steps
    assert len(refusals) == 5 and all("held by test" in r for r in refusals), refusals
    assert other.current_lock() is None, "released at the end"


def _unlock_before_write(state: Path, k: int) -> Callable[[int], None]:
    def hook(n: int) -> None:
        if n == k:
            breaker = SqliteProvider(state)  # `convctl unlock ID` from another process
            lock = breaker.current_lock()
            assert lock is not None
            breaker.release_lock(lock.id)
            breaker.close()

    return hook


def test_apply_that_lost_its_lock_stops_before_its_next_write(tmp_path: Path) -> None:
    """Broken with `convctl unlock` between two writes: the write under way lands, nothing
    after it; the rest is reported pending, and the report says why."""
    state = tmp_path / "state.db"
    flaky = BeforeWrite(SqliteProvider(state), _unlock_before_write(state, 3))
    lines: list[str] = []
    outcome = apply(flaky, _from_manifests(), holder="test", progress=lines.append)
    report = outcome.report
    assert not report.ok and flaky.writes == 3
    assert (report.count("done"), report.count("failed")) == (3, 0)
    assert report.count("pending") == len(report.steps) - 3 > 0
    assert "lost the state lock" in report.stopped and "stopped before its next write" in (
        report.stopped)
    assert any(line.startswith("error: lost the state lock") for line in lines)
    journal = flaky.inner.journal(report.run_id)
    assert [j["status"] for j in journal] == ["done"] * 3 + ["pending"] * (len(journal) - 3)


def test_apply_whose_expired_lock_was_taken_stops_and_leaves_it() -> None:
    class Clock:
        now = datetime(2026, 3, 1, tzinfo=UTC)

        def __call__(self) -> datetime:
            return self.now

    clock = Clock()
    provider = MemoryProvider(clock=clock)
    taken: list[LockInfo] = []

    def expire_and_take(n: int) -> None:
        if n == 2:
            clock.now += timedelta(minutes=16)  # past the TTL: renewal never ran (a stall)
            taken.append(provider.acquire_lock("bob@ci", "apply", 600))

    flaky = BeforeWrite(provider, expire_and_take)
    outcome = _apply(flaky)
    assert outcome.report.count("done") == 2 and not outcome.report.ok
    assert "held by bob@ci" in outcome.report.stopped
    assert provider.current_lock() == taken[0], "bob's lock is not released by the loser"


def test_pid_running_sees_dead_and_zombie_processes() -> None:
    import os
    import subprocess
    import sys

    from reconciler.adapters.process import pid_running

    assert pid_running(os.getpid())
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.monotonic() + 30
    while pid_running(child.pid):  # exited, not reaped yet: a zombie
        assert time.monotonic() < deadline, "a zombie counted as running"
        time.sleep(0.05)
    child.wait()
    assert not pid_running(child.pid)
