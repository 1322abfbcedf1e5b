"""The ``agent_store`` fixture: every agent store backend, so one contract suite runs on each.

``sqlite`` is a fresh state file per test; ``postgres`` a fresh database per test on the
session's throwaway PostgreSQL server (``tests/pgkit.py``; skipped with how to enable it when
there is none, failed under CI). Both are driven by the test's fake clock.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from agentio import FakeClock

from reconciler.adapters.agentstore import AgentStore as SqliteAgentStore
from reconciler.services.ports import AgentStore

NOW = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(NOW)


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def store_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if backend == "postgres":
        return str(request.getfixturevalue("postgres_url"))
    return str(tmp_path / "state.db")


@pytest.fixture
def agent_store(store_url: str, clock: FakeClock) -> Iterator[AgentStore]:
    store = open_agent_store(store_url, clock)
    yield store
    store.close()


def open_agent_store(url: str, clock: FakeClock | None = None,
                     lease_seconds: float = 60.0) -> AgentStore:
    if url.startswith("postgresql://"):
        from reconciler.adapters.agentstore_pg import PostgresAgentStore

        return PostgresAgentStore(url, clock=clock, lease_seconds=lease_seconds)
    return SqliteAgentStore(Path(url), clock=clock)
