"""Shared fixtures and the hypothesis profiles (``ci``: bounded examples, no deadline)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pgkit
import pytest
from hypothesis import HealthCheck, settings

# The test suite never talks to the internet: any agent a test starts without its own fake sends
# to a closed loopback port instead of Meta's or HubSpot's real hosts.
os.environ["CONVCTL_META_BASE_URL"] = "http://127.0.0.1:9"
os.environ["CONVCTL_HUBSPOT_BASE_URL"] = "http://127.0.0.1:9"

settings.register_profile(
    "ci", max_examples=60, deadline=None, derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", max_examples=200, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[pgkit.PgServer]:
    """A PostgreSQL server for this session (pgkit: started here or from the environment);
    skips, or fails under CI, when none can be had."""
    server = pgkit.session_server()
    yield server
    server.stop()


@pytest.fixture
def postgres_url(postgres_server: pgkit.PgServer) -> Iterator[str]:
    """The URL of a fresh, empty database of its own (with the role's password in it)."""
    url, drop = postgres_server.fresh_database()
    yield url
    drop()
