"""The ``provider`` fixture: every live-state backend, so one contract suite runs on each.

To add a backend (e.g. HTTP against a loopback ``convctl serve``), add a factory to
``BACKENDS`` that builds it from ``tmp_path`` and the fake clock.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from statekit import FakeClock

from reconciler.adapters.state.memory import MemoryProvider
from reconciler.adapters.state.sqlite import SqliteProvider
from reconciler.core.provider import Provider

BACKENDS: dict[str, Callable[[Path, FakeClock], Provider]] = {
    "memory": lambda tmp_path, clock: MemoryProvider(clock=clock),
    "sqlite": lambda tmp_path, clock: SqliteProvider(tmp_path / "state.db", clock=clock),
}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=sorted(BACKENDS))
def provider(request: pytest.FixtureRequest, tmp_path: Path,
             clock: FakeClock) -> Iterator[Provider]:
    backend = BACKENDS[request.param](tmp_path, clock)
    yield backend
    backend.close()
