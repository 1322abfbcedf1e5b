"""The test server itself: a fresh database per test, reachable with the role's password."""

from __future__ import annotations

import psycopg


def test_each_test_gets_its_own_empty_database(postgres_url: str) -> None:
    with psycopg.connect(postgres_url) as conn:
        tables = conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
        assert tables.fetchone() == (0,)
        conn.execute("CREATE TABLE mine (x int)")


def test_the_next_test_does_not_see_the_last_ones_tables(postgres_url: str) -> None:
    with psycopg.connect(postgres_url) as conn:
        found = conn.execute("SELECT to_regclass('mine')").fetchone()
        assert found == (None,)
