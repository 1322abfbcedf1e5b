"""A snapshot of the live events for the dashboard, refreshed in the background.

Reading and validating 10,000 events takes the provider about 400 ms, and telling drift needs
a hash of each one; a page must answer in under 300 ms. So pages read a snapshot (the events
and one light row per event, drift computed once) that is at most ``max_age`` seconds old
(the pages poll every 5 s anyway): an older one is served while a background thread reads
the next one (stale-while-revalidate). The first request of a process, or one after
``invalidate``, reads synchronously. A write from the dashboard patches the snapshot with the
provider's answer at once, so the page after it shows the change.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from reconciler.core.live import LiveAccount, LiveEvent
from reconciler.core.provider import Provider

NETWORK_LABELS = {"meta": "Meta", "linkedin": "LinkedIn", "google": "Google Ads"}


def trigger_of(ev: LiveEvent) -> tuple[str, str]:
    """(``form`` | ``lifecycle``, what fires it: the Meta event for a form, or the stages)."""
    lc, fs = ev.spec.trigger.lifecycle_stage_change, ev.spec.trigger.form_submission
    if lc is not None:
        return "lifecycle", ", ".join(lc.stages)
    return "form", (fs.facebook_event or "-") if fs is not None else "-"


def base_row(ev: LiveEvent) -> dict[str, Any]:
    """What the lists show of an event (no agent activity)."""
    kind, fires = trigger_of(ev)
    lc = ev.spec.trigger.lifecycle_stage_change
    row: dict[str, Any] = {
        "id": ev.id, "name": ev.name, "account": ev.account, "trigger": kind, "fires": fires,
        "network": NETWORK_LABELS[ev.spec.destination], "adAccount": ev.spec.target,
        "enabled": ev.spec.enabled, "managed": ev.managed, "drifted": ev.drifted,
        "protect": ev.spec.protect, "version": ev.version, "stageCount": ev.stage_count,
        "stages": sorted(set(lc.stages)) if lc is not None else []}
    row["states"] = frozenset({"enabled" if row["enabled"] else "disabled",
                               "managed" if row["managed"] else "unmanaged",
                               *(("drifted",) if row["drifted"] else ())})
    return row


@dataclass
class Snapshot:
    accounts: list[LiveAccount]
    events: dict[str, LiveEvent]
    rows: list[dict[str, Any]]
    taken: float = field(default_factory=time.monotonic)


def take(provider: Provider) -> Snapshot:
    events = provider.list_events()
    accounts = provider.list_accounts()
    return Snapshot(accounts, {ev.id: ev for ev in events}, [base_row(ev) for ev in events])


class Snapshots:
    """The current snapshot of one provider; thread-safe."""

    def __init__(self, provider: Provider, max_age: float = 5.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._provider, self._max_age, self._clock = provider, max_age, clock
        self._current: Snapshot | None = None
        self._mutex = threading.Condition()  # notified when a background read ends
        self._refreshing = False
        self._written = float("-inf")  # when a write last patched the snapshot

    def get(self) -> Snapshot:
        with self._mutex:
            current, stale = self._current, self._current is not None and (
                self._clock() - self._current.taken > self._max_age)
            if stale:
                self._start_refresh()
            elif current is None and self._refreshing:  # a warm-up is reading: wait for it
                self._mutex.wait_for(lambda: not self._refreshing, timeout=30)
                current = self._current
        if current is None:
            current = self._store(take(self._provider))
        return current

    def warm(self) -> None:
        """Start reading the first snapshot in the background (the login form calls this, so
        the first page after logging in is fast too)."""
        with self._mutex:
            if self._current is None:
                self._start_refresh()

    def _start_refresh(self) -> None:  # with the mutex held
        if not self._refreshing:
            self._refreshing = True
            threading.Thread(target=self._refresh, daemon=True, name="ui-snapshot").start()

    def _refresh(self) -> None:
        started = self._clock()
        snap = None
        try:
            snap = take(self._provider)
        finally:
            with self._mutex:
                # a write patched the snapshot meanwhile: this read may predate it
                if snap is not None and self._written < started:
                    snap.taken = self._clock()
                    self._current = snap
                self._refreshing = False
                self._mutex.notify_all()

    def _store(self, snap: Snapshot) -> Snapshot:
        with self._mutex:
            snap.taken = self._clock()
            self._current = snap
        return snap

    def patch(self, ev: LiveEvent) -> None:
        """Put the provider's answer to a write in the snapshot (a new snapshot object)."""
        with self._mutex:
            old = self._current
            if old is None:
                return
            events = {**old.events, ev.id: ev}
            rows = [base_row(ev) if row["id"] == ev.id else row for row in old.rows]
            self._current = Snapshot(old.accounts, events, rows, old.taken)
            self._written = self._clock()

    def invalidate(self) -> None:
        with self._mutex:
            self._current = None
