"""Fixtures shared by the agent tests: a fake clock at ``START`` and the strict fake Graph API
on loopback driven by it. A module that needs another clock defines its own fixture."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from agentio import START, TOKENS, FakeClock
from fakes.graph import FakeGraph


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
def graph(clock: FakeClock) -> Iterator[FakeGraph]:
    with FakeGraph(token=TOKENS["ACME_META_TOKEN"], clock=clock.epoch) as fake:
        yield fake
