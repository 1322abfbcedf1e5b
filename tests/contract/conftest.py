"""The ``provider`` fixture: every live-state backend, so one contract suite runs on each.

To add a backend, add a factory to ``BACKENDS`` that builds it from the test's request (for
session fixtures such as a server), ``tmp_path`` and the fake clock. ``http`` is the
``HttpProvider`` against a real server subprocess on a free loopback port (``serverkit``),
one per session; each test gets its own state file on it and drives its clock. ``postgres`` is
a fresh database per test on the session's throwaway PostgreSQL server.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from serverkit import Server, convctl_cmd, free_port, launch, start_harness
from statekit import FakeClock

from reconciler.adapters.state.http import HttpProvider
from reconciler.adapters.state.memory import MemoryProvider
from reconciler.adapters.state.sqlite import SqliteProvider
from reconciler.adapters.state.tokens import SqliteTokenStore
from reconciler.core.provider import Provider


class _TestHeaders(httpx.BaseTransport):
    """Adds the harness's per-test state name and the fake clock's time to every request."""

    def __init__(self, clock: FakeClock, state: str) -> None:
        self._inner = httpx.HTTPTransport()
        self._clock, self._state = clock, state

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.headers["X-Test-Now"] = self._clock.now().isoformat()
        request.headers["X-Test-State"] = self._state
        return self._inner.handle_request(request)

    def close(self) -> None:
        self._inner.close()


def _http(request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock) -> Provider:
    server: Server = request.getfixturevalue("contract_server")
    transport = _TestHeaders(clock, uuid.uuid4().hex)
    return HttpProvider(server.url, server.tokens["admin"], transport=transport, timeout=10)


def _serve(request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock) -> Provider:
    """The real ``convctl serve`` command, a fresh one (and state) per test: its clock is the
    wall clock, so the tests that pin timestamps with the fake clock are marked ``fake_clock``
    and run on the other backends only."""
    if request.node.get_closest_marker("fake_clock"):
        pytest.skip("pins timestamps with the fake clock; `convctl serve` uses the real one")
    workdir = tmp_path / "serve"
    workdir.mkdir()
    store = SqliteTokenStore(workdir / "state.db")  # one admin token, made in-process (fast)
    _, token = store.create(["admin"], name="contract")
    store.close()
    port = free_port()
    server = launch([*convctl_cmd(), "serve", "--port", str(port), "--state",
                     f"sqlite:///{workdir / 'state.db'}", "--no-agent"], workdir, port)
    request.addfinalizer(server.stop)
    return HttpProvider(server.url, token, timeout=10)


def _postgres(request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock) -> Provider:
    """A fresh database on the session's PostgreSQL server (``pgkit``; skipped, or failing
    under CI, when there is none), driven by the fake clock instead of the database's."""
    from reconciler.adapters.state.postgres import PostgresProvider

    return PostgresProvider(request.getfixturevalue("postgres_url"), clock=clock)


Factory = Callable[[pytest.FixtureRequest, Path, FakeClock], Provider]

BACKENDS: dict[str, Factory] = {
    "memory": lambda request, tmp_path, clock: MemoryProvider(clock=clock),
    "sqlite": lambda request, tmp_path, clock: SqliteProvider(tmp_path / "state.db", clock=clock),
    "http": _http,
    "serve": _serve,
    "postgres": _postgres,
}


@pytest.fixture(scope="session")
def contract_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_harness(tmp_path_factory.mktemp("contract-server"))
    yield server
    server.stop()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=sorted(BACKENDS))
def provider(request: pytest.FixtureRequest, tmp_path: Path,
             clock: FakeClock) -> Iterator[Provider]:
    backend = BACKENDS[request.param](request, tmp_path, clock)
    yield backend
    backend.close()
