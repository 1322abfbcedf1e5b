"""What the PostgreSQL backend adds to the provider contract (issue 11): the lease on the state
lock runs on the database clock, migrations run once when servers start together, tokens."""

from __future__ import annotations

import multiprocessing
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "contract"))
from statekit import FakeClock

from reconciler.adapters.state import _rules
from reconciler.adapters.state.postgres import PostgresProvider
from reconciler.adapters.state.postgres_schema import SCHEMA_VERSION
from reconciler.adapters.state.postgres_tokens import PostgresTokenStore
from reconciler.errors import LockedError, NotFoundError, StateError, UsageError


def _db_now(url: str) -> datetime:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT now()").fetchone()[0]  # type: ignore[index, no-any-return]


# -- the lock: a lease on the database clock -------------------------------------------------

def test_lock_times_come_from_the_database_not_the_local_clock(
        postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_rules, "utc_now", lambda: datetime(2099, 1, 1, tzinfo=UTC))
    provider = PostgresProvider(postgres_url)  # no clock given: the database's
    before = _db_now(postgres_url)
    lock = provider.acquire_lock("alice", "apply", 600)
    after = _db_now(postgres_url)
    assert before <= lock.created_at <= after
    assert lock.expires_at - lock.created_at == timedelta(seconds=600)
    assert provider.current_lock() == lock
    provider.close()


def test_a_dead_holders_lease_expires_and_is_taken_over(postgres_url: str) -> None:
    dead = PostgresProvider(postgres_url)
    old = dead.acquire_lock("crashed-apply", "apply", 0.5)
    dead.close()  # never released: its process died
    other = PostgresProvider(postgres_url)
    with pytest.raises(LockedError, match="crashed-apply"):
        other.acquire_lock("bob", "apply", 60)
    time.sleep(0.6)
    assert other.current_lock() is None
    new = other.acquire_lock("bob", "apply", 60)
    assert new.id != old.id and other.current_lock() == new
    other.close()


def test_renew_extends_the_lease_until_someone_takes_it_over(postgres_url: str) -> None:
    clock = FakeClock()
    provider = PostgresProvider(postgres_url, clock=clock)
    lock = provider.acquire_lock("alice", "apply", 60)
    clock.advance(50)
    renewed = provider.renew_lock(lock.id, 60)
    assert (renewed.id, renewed.created_at) == (lock.id, lock.created_at)
    assert renewed.expires_at == clock.now() + timedelta(seconds=60)
    assert provider.current_lock() == renewed
    with pytest.raises(NotFoundError, match="no lock with id nope"):
        provider.renew_lock("nope", 60)
    with pytest.raises(UsageError):
        provider.renew_lock(lock.id, 0)
    clock.advance(61)  # expired, nobody took it: renewing keeps it (as on every backend)
    assert provider.renew_lock(lock.id, 60).expires_at == clock.now() + timedelta(seconds=60)
    clock.advance(61)  # expired again, and now taken over: it is lost for good
    taken = provider.acquire_lock("bob", "apply", 60)
    with pytest.raises(NotFoundError, match="held by bob"):
        provider.renew_lock(lock.id, 60)
    assert provider.current_lock() == taken
    provider.close()


# -- migrations ------------------------------------------------------------------------------

def _versions(url: str) -> list[tuple[int, str]]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT version, description FROM convctl_schema ORDER BY version")
        return [(int(v), str(d)) for v, d in rows.fetchall()]


def test_first_open_records_each_migration_once(postgres_url: str) -> None:
    PostgresProvider(postgres_url).close()
    PostgresProvider(postgres_url).close()
    versions = _versions(postgres_url)
    assert [v for v, _ in versions] == list(range(1, SCHEMA_VERSION + 1))
    assert "accounts" in versions[0][1]


def _open_and_write(url: str, worker: int, barrier: Any, results: Any) -> None:
    barrier.wait()
    try:
        provider = PostgresProvider(url)
        provider.record_step("run", worker, f"worker {worker}", "done")
        provider.close()
        results.put("ok")
    except Exception as exc:
        results.put(f"{type(exc).__name__}: {exc}")


def test_servers_starting_together_migrate_once(postgres_url: str) -> None:
    workers = 5
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(workers), ctx.Queue()
    processes = [ctx.Process(target=_open_and_write, args=(postgres_url, i, barrier, results))
                 for i in range(workers)]
    for process in processes:
        process.start()
    assert [results.get(timeout=120) for _ in processes] == ["ok"] * workers
    for process in processes:
        process.join(timeout=30)
    assert [v for v, _ in _versions(postgres_url)] == list(range(1, SCHEMA_VERSION + 1))
    provider = PostgresProvider(postgres_url)
    assert len(provider.journal("run")) == workers
    provider.close()


def test_a_database_with_foreign_tables_of_the_same_names_is_refused(postgres_url: str) -> None:
    with psycopg.connect(postgres_url) as conn:
        conn.execute("CREATE TABLE events (id int)")
    with pytest.raises(StateError, match=r"already has tables convctl did not create \(events\)"):
        PostgresProvider(postgres_url)
    with psycopg.connect(postgres_url) as conn:  # nothing of ours was left behind
        assert conn.execute("SELECT to_regclass('convctl_schema')").fetchone() == (None,)


# -- tokens ----------------------------------------------------------------------------------

def test_tokens_create_verify_list_revoke(postgres_url: str) -> None:
    store = PostgresTokenStore(postgres_url)
    info, secret = store.create(["write", "read"], name="ci-apply")
    assert secret.startswith("cvt_") and info.scopes == ("read", "write") and info.active
    assert store.verify(secret) == info
    assert store.verify(secret + "x") is None
    with pytest.raises(UsageError, match="an active token named 'ci-apply' already exists"):
        store.create(["read"], name="ci-apply")
    assert [t.name for t in store.list()] == ["ci-apply"]
    revoked = store.revoke("ci-apply")
    assert revoked.revoked_at is not None and store.verify(secret) is None
    with pytest.raises(NotFoundError):
        store.revoke(info.id)
    store.create(["read"], name="ci-apply")  # the name is free again once revoked
    with psycopg.connect(postgres_url) as conn:  # only the hash is stored
        stored = conn.execute("SELECT string_agg(hash || id || name || scopes, '') FROM tokens")
        assert secret not in str(stored.fetchone()[0])  # type: ignore[index]
    store.close()


# -- the database restarted under a running process -------------------------------------------

def test_a_restarted_database_is_reconnected_to(postgres_url: str, postgres_server: Any) -> None:
    if postgres_server.restart is None:
        pytest.skip("the server comes from CONVCTL_TEST_POSTGRES_URL: not restarted by tests")
    provider = PostgresProvider(postgres_url)
    provider.record_step("run", 0, "before", "done")
    postgres_server.restart()  # every pooled connection is now dead
    provider.record_step("run", 1, "after", "done")  # a fresh connection from the pool
    assert [s["description"] for s in provider.journal("run")] == ["before", "after"]
    provider.close()
