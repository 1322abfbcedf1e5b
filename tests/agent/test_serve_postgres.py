"""``convctl serve`` on a PostgreSQL state runs its agent on the PostgreSQL agent store, and its
readiness probe checks that database's schema (read-only): ready at the schema it knows, 503
naming the version once the database is migrated past it; no password in any answer or log."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import psycopg
from serverkit import convctl, convctl_cmd, free_port, launch


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


def test_coverage_and_the_dashboard_read_the_postgresql_queues(tmp_path: Path,
                                                               postgres_url: str) -> None:
    """Main's agent reads through the store protocol on PostgreSQL: ``GET /v1/agent/coverage``
    counts the row sent there, the dashboard's dead letters show Meta's message."""
    from reconciler.adapters.agentstore_pg import PostgresAgentStore
    from reconciler.services.agent_chunk import queue_row

    store = PostgresAgentStore(postgres_url)
    try:
        payload = {"event_name": "Lead", "event_time": int(time.time()) - 60,
                   "user_data": {"em": ["h"], "ph": ["h"]}}
        store.commit_processed([], [queue_row("ev_pg", "e1", "acme", "1", payload),
                                    queue_row("ev_pg", "e2", "acme", "1", payload)], {})
        sent, rejected = store.due(time.time() + 1, 10)
        store.mark_sent([sent.seq])
        store.dead([rejected.seq], "rejected", "Meta said the pixel is wrong")
    finally:
        store.close()
    made = convctl("token", "create", "--scope", "read", "--name", "viewer", "--state",
                   postgres_url)
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    port = free_port()
    server = launch([*convctl_cmd(), "serve", "--port", str(port), "--state", postgres_url,
                     "--no-agent"], tmp_path, port)
    try:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            found = client.get("/v1/agent/coverage",
                               headers={"Authorization": f"Bearer {token}"}).json()
            [event] = found["events"]
            assert event["conversionEventId"] == "ev_pg"
            day = event["windows"]["24h"]
            assert day["sent"] == 1 and day["keys"]["em"]["count"] == 1
            assert day["keys"]["fn"]["count"] == 0
            assert client.post("/ui/login", data={"token": token}).status_code == 303
            dead = client.get("/ui/dead")
            assert dead.status_code == 200 and "Meta said the pixel is wrong" in dead.text
            assert client.get("/ui").status_code == 200
    finally:
        server.stop()
    assert "Traceback" not in server.output()
