"""Fixtures for the dashboard's browser tests: one real ``convctl serve`` and one headless
Chromium (Debian's ``/usr/bin/chromium`` driven by Playwright) per test session.

The state is the shipped manifests after ``convctl apply``; the agent store (the same file) is
seeded through its own public methods with sends, dead letters, skips and a paused pixel. The
server runs ``--no-agent``: nothing sends, so what the tests put in the store stays put.
Without Chromium the browser tests skip with a reason, except under ``CI=true``, where a
missing browser is a failure. Screenshots go to ``$CONVCTL_SCREENS`` (default
``$TMPDIR/convctl-screens``), outside the repository.
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from serverkit import Server, convctl, start_serve
from uikit import CHROMIUM, CHROMIUM_ARGS, need_browser

from reconciler.adapters.agentstore import AgentStore
from reconciler.adapters.state.sqlite import SqliteProvider
from reconciler.services.agent_chunk import queue_row

REPO = Path(__file__).resolve().parents[2]
META_REJECTION = "(#100) Invalid parameter: event_time is too far in the past"


def _user_data(i: int) -> dict[str, Any]:
    """Match keys as sent: every event a lead id, most an email, some a phone, few an fbc."""
    keys = {"lead_id": 1, "em": ["e" * 64]} if i % 5 else {"lead_id": 1}
    if i % 3 == 0:
        keys["ph"] = ["p" * 64]
    if i % 7 == 0:
        keys["fbc"] = "fb.1.1.x"
    return keys


def seed_agent(state: Path, now: datetime) -> dict[str, Any]:
    """An hour of sends (a few a minute, spread over the events), two dead letters of one
    event with Meta's message, skips, a paused pixel; all through the store's own methods."""
    provider = SqliteProvider(state)
    events = sorted(provider.list_events(), key=lambda ev: ev.name)
    provider.close()
    pixels = {"acme": "111111111111111", "globex": "222222222222222"}
    moment = [now]
    store = AgentStore(state, clock=lambda: moment[0])
    try:
        for minute in range(58, 0, -1):
            moment[0] = now - timedelta(minutes=minute)
            count = 4 + int(3 * math.sin(minute / 5)) + (6 if minute % 11 == 0 else 0)
            rows = [queue_row(ev.id, f"sent-{minute}-{i}", ev.account, pixels[ev.account],
                              {"event_name": ev.name, "event_time": int(moment[0].timestamp()),
                               "user_data": _user_data(i)})
                    for i in range(count) for ev in [events[(minute + i) % len(events)]]]
            store.commit_processed([], rows, {})
            store.mark_sent([row.seq for row in store.due(now.timestamp(), 1000)])
        moment[0] = now
        target = next(ev for ev in events if ev.name == "demo-booked")
        dead = [queue_row(target.id, f"dead-{i}", "acme", pixels["acme"],
                          {"event_name": "demo_booked", "event_time": int(now.timestamp())},
                          status="dead", reason="rejected", error=META_REJECTION)
                for i in range(2)]
        store.commit_processed([], dead, {("no_consent", target.id): 4,
                                          ("stage_not_tracked", target.id): 9})
        store.pause_target("meta", pixels["globex"], "token_unavailable",
                          "GLOBEX_META_TOKEN is not set", None)
    finally:
        store.close()
    return {"events": events, "dead_event": target}


@pytest.fixture(scope="session")
def ui_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """``convctl serve --no-agent`` over the shipped manifests, applied, with a seeded store."""
    need_browser(CHROMIUM)
    work = tmp_path_factory.mktemp("ui")
    shutil.copytree(REPO / "manifests", work / "manifests")
    state_url = f"sqlite:///{work / 'state.db'}"
    applied = convctl("apply", "--auto-approve", "--path", str(work / "manifests"),
                      "--state", state_url, cwd=work)
    assert applied.returncode == 0, applied.stderr
    seed_agent(work / "state.db", datetime.now(UTC))
    server = start_serve(work, "--no-agent")
    server.manifests = work / "manifests"  # type: ignore[attr-defined]
    yield server
    assert server.stop() == 0, server.output()
    for token in server.tokens.values():
        assert token not in server.output()


@pytest.fixture(scope="session")
def browser_context(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One Chromium for the session, with a fresh profile, at 1280x800."""
    need_browser(CHROMIUM)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")), executable_path=str(CHROMIUM),
            headless=True, args=CHROMIUM_ARGS, viewport={"width": 1280, "height": 800})
        context.set_default_timeout(5000)
        yield context
        context.close()


@pytest.fixture()
def page(browser_context: Any) -> Iterator[Any]:
    """A new tab with no cookies (each test logs in as it needs)."""
    browser_context.clear_cookies()
    tab = browser_context.new_page()
    yield tab
    tab.close()
