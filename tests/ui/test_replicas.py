"""The dashboard on two ``convctl serve`` replicas of one PostgreSQL database (issue 15: "works
against SQLite and PostgreSQL alike, and on every replica").

With one ``CONVCTL_UI_SESSION_KEY``, a session made on one replica works on the other; a switch
made through one is read by the other, and by ``convctl plan``, as drift; the Runs page shows
the apply from the database's journal. A replica with another key refuses the cookie.
"""

from __future__ import annotations

import re
from pathlib import Path

import httpx
from serverkit import Server, convctl, convctl_cmd, free_port, launch

ROOT = Path(__file__).resolve().parents[2]
KEY = "test-only-session-key-shared-by-the-replicas"


def _serve(workdir: Path, state: str, key: str) -> Server:
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    server = launch([*convctl_cmd(), "serve", "--port", str(port), "--state", state,
                     "--no-agent"], workdir, port, env={"CONVCTL_UI_SESSION_KEY": key})
    server.state_url = state
    return server


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, html[:500]
    return match.group(1)


def test_sessions_and_switches_across_replicas(tmp_path: Path, postgres_url: str) -> None:
    made = convctl("token", "create", "--scope", "write", "--name", "ops", "--state",
                   postgres_url)
    assert made.returncode == 0, made.stderr
    applied = convctl("apply", "--auto-approve", "--path", str(ROOT / "manifests"), "--state",
                      postgres_url)
    assert applied.returncode == 0, applied.stderr
    servers = [_serve(tmp_path / "one", postgres_url, KEY),
               _serve(tmp_path / "two", postgres_url, KEY),
               _serve(tmp_path / "other", postgres_url, "another-key")]
    one, two, other = (httpx.Client(base_url=s.url, timeout=10) for s in servers)
    try:
        assert one.post("/ui/login", data={"token": made.stdout.strip()}).status_code == 303
        cookie = one.cookies["convctl_session"]
        two.cookies.set("convctl_session", cookie)
        other.cookies.set("convctl_session", cookie)
        runs = two.get("/ui/runs")
        assert runs.status_code == 200 and "create event.acme/demo-booked" in runs.text
        assert other.get("/ui/runs").status_code == 303  # another key: back to the login
        page = two.get("/ui/events", params={"q": "webinar-registration"})
        event_id = re.search(r'id="ev-(ev_[0-9a-f]+)"', page.text)
        assert event_id, page.text[:500]
        switched = two.post(f"/ui/events/{event_id.group(1)}/toggle", data={
            "csrf": _csrf(page.text), "enabled": "0", "confirmed": "yes", "next": "/ui/events"})
        assert switched.status_code == 303, switched.text
        plan = convctl("plan", str(ROOT / "manifests"), "--state", postgres_url)
        assert "globex/webinar-registration" in plan.stdout and "drift" in plan.stdout
        shown = convctl("events", "show", "globex/webinar-registration", "--state",
                        postgres_url)
        assert '"enabled": false' in shown.stdout
    finally:
        for client in (one, two, other):
            client.close()
        for server in servers:
            server.stop()
