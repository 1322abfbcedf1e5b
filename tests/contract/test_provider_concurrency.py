"""Racing writers never take an account above its tier limit (R9, product.md §2).

Every attempt creates a 3-stage lifecycle event on a professional account (limit 50), so exactly
16 succeed (48 slots) whatever the interleaving, and every other attempt must be refused with a
``ConflictError``: never a "database is locked" error, never a silent overflow.
"""

from __future__ import annotations

import multiprocessing
import threading
from pathlib import Path
from typing import Any

import pytest
from statekit import account_spec, lifecycle_event

from reconciler.adapters.state.sqlite import SqliteProvider
from reconciler.core.provider import Provider
from reconciler.errors import ConflictError

LIMIT = 50
STAGES = 3
WORKERS = 6
ATTEMPTS = 5  # 6 x 5 x 3 = 90 slots asked for, 48 can be granted


def _attempt_creates(provider: Provider, worker: int) -> dict[str, Any]:
    outcome: dict[str, Any] = {"accepted": 0, "refused": 0, "other": []}
    for attempt in range(ATTEMPTS):
        try:
            provider.create_event(lifecycle_event(f"w{worker}-{attempt}", STAGES))
            outcome["accepted"] += 1
        except ConflictError as exc:
            assert "quota exceeded for account 'acme'" in str(exc)
            outcome["refused"] += 1
        except Exception as exc:  # recorded, so the test reports it instead of hanging
            outcome["other"].append(f"{type(exc).__name__}: {exc}")
    return outcome


def _check(provider: Provider, outcomes: list[dict[str, Any]]) -> None:
    assert [o["other"] for o in outcomes] == [[] for _ in outcomes]
    used = sum(e.stage_count for e in provider.list_events("acme"))
    assert used == (LIMIT // STAGES) * STAGES == sum(o["accepted"] for o in outcomes) * STAGES
    assert sum(o["refused"] for o in outcomes) == WORKERS * ATTEMPTS - LIMIT // STAGES


def _run_threads(make: Any) -> list[dict[str, Any]]:
    barrier = threading.Barrier(WORKERS)
    outcomes: list[dict[str, Any]] = [{} for _ in range(WORKERS)]

    def work(worker: int) -> None:
        provider = make()
        barrier.wait()
        outcomes[worker] = _attempt_creates(provider, worker)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(WORKERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return outcomes


def _run_processes(target: Any, where: str, workers: int = WORKERS) -> list[Any]:
    """Start ``workers`` processes of ``target(where, i, barrier, results)``, released together
    by the barrier; each puts one result. The results (in the order they came), once every
    process has ended cleanly."""
    ctx = _context()
    barrier, results = ctx.Barrier(workers), ctx.Queue()
    processes = [ctx.Process(target=target, args=(where, i, barrier, results))
                 for i in range(workers)]
    for process in processes:
        process.start()
    outcomes = [results.get(timeout=120) for _ in processes]
    for process in processes:
        process.join(timeout=30)
        assert process.exitcode == 0
    return outcomes


def test_threads_sharing_one_provider(provider: Provider) -> None:
    provider.put_account("acme", account_spec(), {}, None)
    _check(provider, _run_threads(lambda: provider))


def test_threads_with_their_own_sqlite_connection(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    main = SqliteProvider(path)
    main.put_account("acme", account_spec(), {}, None)
    opened: list[SqliteProvider] = []

    def make() -> SqliteProvider:
        opened.append(SqliteProvider(path))
        return opened[-1]

    _check(main, _run_threads(make))
    for provider in [main, *opened]:
        provider.close()


def _context() -> Any:
    """Fresh processes: a child forked from this one would inherit its SQLite state (unsafe,
    per SQLite's docs). A fork server with the modules preloaded starts them quickly."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["reconciler.adapters.state.sqlite", "statekit", __name__])
    return ctx


def _process_worker(path: str, worker: int, barrier: Any, results: Any) -> None:
    provider = SqliteProvider(path)
    barrier.wait()
    results.put(_attempt_creates(provider, worker))
    provider.close()


def test_processes_on_one_sqlite_file(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    main = SqliteProvider(path)
    main.put_account("acme", account_spec(), {}, None)
    _check(main, _run_processes(_process_worker, str(path)))
    main.close()


def _first_open_worker(path: str, worker: int, barrier: Any, results: Any) -> None:
    barrier.wait()
    try:
        provider = SqliteProvider(path)
        provider.put_account(f"acct-{worker}", account_spec(), {}, None)
        provider.close()
        results.put("ok")
    except Exception as exc:
        results.put(f"{type(exc).__name__}: {exc}")


@pytest.mark.parametrize("workers", [4])
def test_processes_creating_the_file_at_once(tmp_path: Path, workers: int) -> None:
    path = tmp_path / "fresh" / "state.db"
    assert _run_processes(_first_open_worker, str(path), workers) == ["ok"] * workers
    provider = SqliteProvider(path)
    assert len(provider.list_accounts()) == workers
    provider.close()


# -- PostgreSQL: writers on different connections and processes (no single writer to lean on;
# the account's row lock makes the count and the write one step, R9) -------------------------

def test_threads_with_their_own_postgres_connection(postgres_url: str) -> None:
    from reconciler.adapters.state.postgres import PostgresProvider

    main = PostgresProvider(postgres_url)
    main.put_account("acme", account_spec(), {}, None)
    opened: list[PostgresProvider] = []

    def make() -> PostgresProvider:
        opened.append(PostgresProvider(postgres_url))
        return opened[-1]

    _check(main, _run_threads(make))
    for provider in [main, *opened]:
        provider.close()


def _postgres_worker(url: str, worker: int, barrier: Any, results: Any) -> None:
    from reconciler.adapters.state.postgres import PostgresProvider

    provider = PostgresProvider(url)
    barrier.wait()
    results.put(_attempt_creates(provider, worker))
    provider.close()


def test_processes_on_one_postgres_database(postgres_url: str) -> None:
    from reconciler.adapters.state.postgres import PostgresProvider

    main = PostgresProvider(postgres_url)
    main.put_account("acme", account_spec(), {}, None)
    _check(main, _run_processes(_postgres_worker, postgres_url))
    main.close()


def _lock_worker(url: str, worker: int, barrier: Any, results: Any) -> None:
    from reconciler.adapters.state.postgres import PostgresProvider
    from reconciler.errors import LockedError

    provider = PostgresProvider(url)
    barrier.wait()
    try:
        results.put(provider.acquire_lock(f"w{worker}", "apply", 600).id)
    except LockedError:
        results.put(None)
    provider.close()


def test_processes_racing_for_the_postgres_lock_one_wins(postgres_url: str) -> None:
    from reconciler.adapters.state.postgres import PostgresProvider

    main = PostgresProvider(postgres_url)  # migrates first: the race is on the lock only
    won = [lock_id for lock_id in _run_processes(_lock_worker, postgres_url) if lock_id]
    current = main.current_lock()
    assert len(won) == 1 and current is not None and current.id == won[0]
    main.close()
