"""Fixtures for the control-plane tests: a real ``convctl serve`` per test module."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from serverkit import Server, start_serve

# The state builders (statekit) live with the provider contract suite; the agent's I/O
# builders (agentio: an applied state, JSONL lines) with the agent tests.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "contract"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "agent"))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """``convctl serve`` on a free loopback port, a fresh SQLite state, one token per scope
    (``server.tokens['read']`` ...); stopped with SIGTERM at the end of the module."""
    srv = start_serve(tmp_path_factory.mktemp("serve"))
    yield srv
    code = srv.stop()
    assert code == 0, srv.output()  # a graceful stop is a success (issue 12)
    for token in srv.tokens.values():  # tokens are never logged
        assert token not in srv.output()
