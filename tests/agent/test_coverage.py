"""Match-key coverage: counted when rows are marked sent (once, only sent rows), bucketed by
hour, summed over the last 24 hours and 7 days, old buckets dropped; shares always in [0, 1]
and equal to a plain count of the sent payloads (hypothesis)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from agentio import FakeClock
from hypothesis import given
from hypothesis import strategies as st

from reconciler.adapters.agentrows import NewOutbox
from reconciler.adapters.agentstore import AgentStore
from reconciler.adapters.state import sqlite_schema
from reconciler.core.coverage import (
    MATCH_KEYS,
    WINDOWS,
    Bucket,
    hour_of,
    key_mask,
    keys_of,
    summarize,
)
from reconciler.services.agent_chunk import queue_row
from reconciler.services.coverage import event_coverage

NOW = datetime(2026, 11, 28, 10, 30, tzinfo=UTC)
HASH = "a" * 64


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(NOW)


@pytest.fixture
def store(tmp_path: Path, clock: FakeClock) -> Iterator[AgentStore]:
    s = AgentStore(tmp_path / "state.db", clock=clock)
    yield s
    s.close()


def row(event_id: str, keys: tuple[str, ...], cev: str = "ev_1") -> NewOutbox:
    payload = {"event_name": "Lead", "event_time": int(NOW.timestamp()) - 60,
               "event_id": event_id, "user_data": {k: HASH for k in keys}}
    return queue_row(cev, event_id, "acme", "123456789012345", payload)


def queue_and_send(store: AgentStore, rows: list[NewOutbox]) -> None:
    store.commit_processed([], rows, {})
    due = store.due(NOW.timestamp() + 10**6, 10_000)
    store.mark_sent([r.seq for r in due if r.event_id in {x.event_id for x in rows}])


def test_sent_rows_are_counted_per_key_and_dead_or_queued_ones_are_not(
        store: AgentStore) -> None:
    store.commit_processed([], [row("a", ("em", "ph")), row("b", ("em",)), row("c", ("ph",)),
                                row("d", ("em", "lead_id"))], {})
    rows = {r.event_id: r.seq for r in store.due(NOW.timestamp() + 10**6, 100)}
    store.mark_sent([rows["a"], rows["b"]])
    store.dead([rows["c"]], "rejected", "refused")  # dead: not counted; d stays queued
    store.mark_sent([rows["a"], rows["c"]])  # a again (already sent), c (dead): nothing more
    [coverage] = event_coverage(store, None, NOW)
    day = coverage.window("24h")
    assert (coverage.ref, coverage.live, day.sent) == ("ev_1", False, 2)
    assert (day.count("em"), day.count("ph"), day.count("lead_id")) == (2, 1, 0)
    assert (day.share("em"), day.share("ph"), day.share("fn")) == (1.0, 0.5, 0.0)
    assert coverage.window("7d") == day


def test_windows_are_whole_hours_and_old_buckets_are_dropped(store: AgentStore,
                                                            clock: FakeClock) -> None:
    queue_and_send(store, [row("old", ("em",))])
    clock.advance(hours=23)  # still the 24th hour: inside both windows
    [c] = event_coverage(store, None, clock())
    assert (c.window("24h").sent, c.window("7d").sent) == (1, 1)
    clock.advance(hours=1)
    [c] = event_coverage(store, None, clock())
    assert (c.window("24h").sent, c.window("7d").sent) == (0, 1)
    clock.advance(hours=7 * 24 - 24)  # 7 days later: out of both
    assert event_coverage(store, None, clock()) == []
    queue_and_send(store, [row("new", ("ph",))])  # the next send drops the old bucket
    conn = sqlite3.connect(store.path)
    hours = [h for (h,) in conn.execute("SELECT hour FROM match_coverage")]
    conn.close()
    assert hours == [hour_of(clock())]


def test_a_version_5_store_upgrades_and_counts_only_rows_queued_after(
        tmp_path: Path, clock: FakeClock) -> None:
    """Schema step 5 -> 6: rows queued before it have no key mask (unknown keys) and are left
    out of the coverage when sent; rows queued after it are counted."""
    path = tmp_path / "v5.db"
    conn = sqlite3.connect(path, isolation_level=None)
    for step in sqlite_schema.MIGRATIONS[:5]:
        for statement in step:
            conn.execute(statement)
    conn.execute("PRAGMA user_version = 5")
    conn.execute("INSERT INTO outbox (conversion_event_id, event_id, account, pixel_id, "
                 "event_name, event_time, payload, status, next_attempt_at, created_at, "
                 "updated_at) VALUES ('ev_1', 'old', 'acme', '1', 'Lead', 1, '{}', 'queued', 0, "
                 "'2026-11-28T09:00:00+00:00', '2026-11-28T09:00:00+00:00')")
    conn.close()
    upgraded = AgentStore(path, clock=clock)
    try:
        upgraded.commit_processed([], [row("new", ("em",))], {})
        upgraded.mark_sent([r.seq for r in upgraded.due(NOW.timestamp() + 10**6, 100)])
        assert upgraded.status().outbox["sent"] == 2
        [c] = event_coverage(upgraded, None, NOW)
        assert (c.window("24h").sent, c.window("24h").count("em")) == (1, 1)
    finally:
        upgraded.close()


def test_live_events_give_names_and_come_first(store: AgentStore) -> None:
    from agentkit import form_event

    queue_and_send(store, [row("a", ("em",), cev="zz-gone"), row("b", ("em",), cev="ev-form")])
    found = event_coverage(store, [form_event()], NOW)
    assert [(c.ref, c.live) for c in found] == [("acme/ev-form", True), ("zz-gone", False)]
    assert found[0].to_json()["windows"]["24h"]["keys"]["em"] == {"count": 1, "share": 1.0}


def test_key_mask_counts_the_known_keys_present() -> None:
    mask = key_mask({"fbc": "fb.1.2.x", "em": HASH, "madid": "x"})
    assert keys_of(mask) == ("em", "fbc")
    assert key_mask({"em": HASH, "fbc": "y"}) == mask  # another order, the same keys
    assert key_mask(None) == key_mask({}) == 0
    assert keys_of(key_mask(dict.fromkeys(MATCH_KEYS, "x"))) == MATCH_KEYS


key_sets = st.frozensets(st.sampled_from(MATCH_KEYS))
sends = st.lists(st.tuples(st.sampled_from(["e1", "e2", "e3"]), key_sets,
                           st.integers(min_value=0, max_value=200)), max_size=60)


@given(sends)
def test_summaries_match_a_plain_count_and_shares_stay_in_0_1(
        events: list[tuple[str, frozenset[str], int]]) -> None:
    now_hour = 500_000
    buckets: dict[tuple[str, int, int], int] = {}
    for cev, keys, age in events:
        k = (cev, now_hour - age, key_mask(dict.fromkeys(keys, "x")))
        buckets[k] = buckets.get(k, 0) + 1
    summary = summarize([Bucket(c, h, m, n) for (c, h, m), n in buckets.items()], now_hour)
    for cev in {"e1", "e2", "e3"}:
        for name, hours in WINDOWS.items():
            inside = [keys for c, keys, age in events if c == cev and age < hours]
            window = summary.get(cev, {}).get(name)
            if not inside:
                assert window is None
                continue
            assert window is not None and window.sent == len(inside)
            for key in MATCH_KEYS:
                assert window.count(key) == sum(1 for keys in inside if key in keys)
                assert 0.0 <= window.share(key) <= 1.0
        if cev in summary and "24h" in summary[cev]:  # the day is inside the week
            assert summary[cev]["24h"].sent <= summary[cev]["7d"].sent


@given(st.lists(key_sets, min_size=1, max_size=30))
def test_the_store_counts_what_was_sent(tmp_path_factory: pytest.TempPathFactory,
                                        key_lists: list[frozenset[str]]) -> None:
    store = AgentStore(tmp_path_factory.mktemp("cov") / "s.db", clock=lambda: NOW)
    try:
        queue_and_send(store, [row(f"e{i}", tuple(sorted(keys)))
                               for i, keys in enumerate(key_lists)])
        [c] = event_coverage(store, None, NOW + timedelta(minutes=1))
        day = c.window("24h")
        assert day.sent == len(key_lists)
        assert {k: day.count(k) for k in MATCH_KEYS} == {
            k: sum(1 for keys in key_lists if k in keys) for k in MATCH_KEYS}
    finally:
        store.close()
