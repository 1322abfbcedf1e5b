"""Retry schedule (full jitter, cap, Retry-After) and Graph answer classification."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reconciler.core.backoff import (
    BackoffPolicy,
    classify_graph_error,
    parse_graph_error,
    parse_retry_after,
)

NOW = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)


def test_schedule_bounds_with_seeded_random() -> None:
    policy = BackoffPolicy(base=1.0, factor=2.0, cap=30.0, max_attempts=8)
    rng = random.Random(42)
    schedule = policy.schedule(rng.random)
    assert len(schedule) == 7
    for attempt, delay in enumerate(schedule):
        assert 0 <= delay <= min(30.0, 2.0 ** attempt)
    assert schedule == BackoffPolicy(base=1.0, factor=2.0, cap=30.0,
                                     max_attempts=8).schedule(random.Random(42).random)
    assert policy.ceiling(10) == 30.0 and policy.ceiling(0) == 1.0


def test_full_jitter_extremes() -> None:
    policy = BackoffPolicy(base=2.0, cap=100.0)
    assert policy.delay(3, lambda: 0.0) == 0.0
    assert policy.delay(3, lambda: 0.999) == pytest.approx(16 * 0.999)
    assert policy.delay(50, lambda: 0.5) == 50.0


def test_retry_after_is_a_floor() -> None:
    policy = BackoffPolicy(base=1.0, cap=10.0, max_retry_after=600.0)
    assert policy.delay(0, lambda: 0.5, retry_after=120.0) == 120.0
    assert policy.delay(5, lambda: 0.9, retry_after=1.0) == pytest.approx(9.0)
    assert policy.delay(0, lambda: 0.5, retry_after=10_000.0) == 600.0


def test_gives_up() -> None:
    policy = BackoffPolicy(max_attempts=3)
    assert not policy.gives_up(2) and policy.gives_up(3)


def test_parse_retry_after() -> None:
    assert parse_retry_after("120", NOW) == 120.0
    assert parse_retry_after(" 1.5 ", NOW) == 1.5
    assert parse_retry_after("Sat, 28 Nov 2026 10:01:00 GMT", NOW) == 60.0
    assert parse_retry_after("Sat, 28 Nov 2026 09:00:00 GMT", NOW) == 0.0
    assert parse_retry_after("soon", NOW) is None
    assert parse_retry_after(None, NOW) is None
    assert parse_retry_after("-5", NOW) == 0.0


@given(st.integers(min_value=0, max_value=200), st.floats(min_value=0, max_value=0.9999))
def test_delay_never_exceeds_cap(attempt: int, draw: float) -> None:
    policy = BackoffPolicy(cap=60.0)
    assert 0 <= policy.delay(attempt, lambda: draw) <= 60.0


def err(code: int, **extra: object) -> dict[str, object]:
    return {"error": {"message": "x", "type": "OAuthException", "code": code,
                      "fbtrace_id": "AbC", **extra}}


@pytest.mark.parametrize(("status", "body", "verdict"), [
    (200, {"events_received": 3, "messages": [], "fbtrace_id": "x"}, "ok"),
    (200, {"events_received": "nope"}, "retry"),
    (200, b"<html>proxy</html>", "retry"),
    (200, {}, "retry"),
    *[(400, err(code), "retry") for code in (1, 2, 4, 17, 32, 341, 368, 613, 80004)],
    (400, err(100, error_subcode=2804050), "permanent"),
    (400, err(100), "permanent"),
    (400, err(12345), "permanent"),
    (400, err(12345, is_transient=True), "retry"),
    (401, err(190), "token"),
    (400, err(102), "token"),
    (403, err(10), "permanent"),
    (403, err(200), "permanent"),
    (403, err(299), "permanent"),
    (500, b"", "retry"),
    (502, {"anything": 1}, "retry"),
    (503, err(1), "retry"),
    (500, err(100), "permanent"),
    (500, err(12345), "retry"),
    (429, b"", "retry"),
    (404, b"not found", "permanent"),
    (400, b'{"error": {"code": 613, "message": "rate"}}', "retry"),
])
def test_classification_table(status: int, body: object, verdict: str) -> None:
    assert classify_graph_error(status, body) == verdict


def test_parse_graph_error() -> None:
    e = parse_graph_error(err(100, error_subcode=2804050, error_user_msg="Not enough info"))
    assert e is not None
    assert (e.code, e.subcode, e.message, e.is_transient, e.fbtrace_id) == (
        100, 2804050, "Not enough info", False, "AbC")
    assert parse_graph_error({"events_received": 1}) is None
    assert parse_graph_error(b"garbage") is None
