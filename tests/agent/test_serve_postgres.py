"""``convctl serve`` on a PostgreSQL state runs its agent on the PostgreSQL agent store, and its
readiness probe checks that database's schema (read-only): ready at the schema it knows, 503
naming the version once the database is migrated past it; no password in any answer or log."""

from __future__ import annotations

from pathlib import Path

import httpx
import psycopg
from serverkit import convctl_cmd, free_port, launch


def test_serve_on_postgresql_is_ready_and_checks_the_schema(tmp_path: Path,
                                                            postgres_url: str) -> None:
    password = postgres_url.split(":")[2].split("@")[0]
    port = free_port()
    server = launch([*convctl_cmd(), "serve", "--port", str(port), "--state", postgres_url],
                    tmp_path, port)
    try:
        ready = httpx.get(f"{server.url}/readyz", timeout=10)
        assert ready.status_code == 200, ready.text
        metrics = httpx.get(f"{server.url}/metrics", timeout=10).text
        assert 'convctl_agent_outbox_events{state="queued"} 0' in metrics
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            conn.execute("INSERT INTO convctl_schema (version, description) VALUES (99, 'x')")
        ready = httpx.get(f"{server.url}/readyz", timeout=10)
        assert ready.status_code == 503
        assert "schema version 99" in ready.json()["checks"]["schema"]
        assert password not in ready.text
    finally:
        server.stop()
    log = server.output()
    assert "with the agent" in log and password not in log and "Traceback" not in log
