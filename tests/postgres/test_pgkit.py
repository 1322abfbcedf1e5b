"""The test server itself: a fresh database per test, reachable with the role's password."""

from __future__ import annotations

import pgkit
import psycopg
import pytest


def test_each_test_gets_its_own_empty_database(postgres_url: str) -> None:
    with psycopg.connect(postgres_url) as conn:
        tables = conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
        assert tables.fetchone() == (0,)
        conn.execute("CREATE TABLE mine (x int)")


def test_the_next_test_does_not_see_the_last_ones_tables(postgres_url: str) -> None:
    with psycopg.connect(postgres_url) as conn:
        found = conn.execute("SELECT to_regclass('mine')").fetchone()
        assert found == (None,)


def test_without_a_server_the_tests_skip_saying_how_to_enable_them(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv(pgkit.REQUIRE_ENV, raising=False)
    with pytest.raises(pytest.skip.Exception, match="CONVCTL_TEST_POSTGRES_URL"):
        pgkit.unavailable("no initdb found")


@pytest.mark.parametrize(("name", "value"), [("CI", "true"), ("CONVCTL_REQUIRE_POSTGRES", "1")])
def test_under_ci_they_fail_instead(name: str, value: str,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setenv(name, value)
    with pytest.raises(pytest.fail.Exception, match="no initdb found"):
        pgkit.unavailable("no initdb found")
