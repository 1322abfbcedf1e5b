"""The dashboard in a real headless Chromium against a real ``convctl serve`` (issue 15).

A user logs in with a token, sees the shipped manifests' events after an apply, switches one
off (and the next ``convctl plan`` reports the drift), re-queues a dead letter and logs out;
a wrong token, a read token trying to switch, and a forged post without the CSRF token are
refused and change nothing. Every page is photographed at 1280x800, light and dark.
"""

from __future__ import annotations

import json
import re
import time
from html import unescape
from typing import Any

from serverkit import Server, convctl
from uikit import screens_dir

from reconciler.adapters.agentstore import AgentStore
from reconciler.adapters.state.sqlite import SqliteProvider
from reconciler.services.agent_chunk import queue_row


def login(page: Any, server: Server, scope: str) -> None:
    page.goto(f"{server.url}/ui")
    assert "/ui/login" in page.url
    page.get_by_label("Token").fill(server.tokens[scope])
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{server.url}/ui")


def shoot(page: Any, name: str, phone: bool = False) -> None:
    """Light and dark at 1280x800 (and, with ``phone``, light at a phone's 390x844)."""
    for scheme in ("light", "dark"):
        page.emulate_media(color_scheme=scheme)
        page.screenshot(path=str(screens_dir() / f"{name}-{scheme}.png"))
    page.emulate_media(color_scheme="light")
    if phone:
        page.set_viewport_size({"width": 390, "height": 844})
        page.screenshot(path=str(screens_dir() / f"{name}-phone.png"), full_page=True)
        width = page.evaluate("document.documentElement.scrollWidth")
        page.set_viewport_size({"width": 1280, "height": 800})
        assert width <= 390, f"{name} scrolls sideways on a phone ({width} px)"


def csrf_of(page: Any) -> str:
    value: str = page.locator("input[name=csrf]").first.get_attribute("value")
    return value


def test_overview_events_dead_runs_after_apply(page: Any, ui_server: Server) -> None:
    login(page, ui_server, "write")
    assert page.get_by_role("heading", name="acme").is_visible()
    assert page.get_by_role("heading", name="globex").is_visible()
    quota = page.get_by_role("meter", name="Quota of acme")
    assert quota.get_attribute("aria-valuemax") == "50"
    assert page.get_by_role("img", name="Events sent per minute, last hour").is_visible()
    assert "token_unavailable" in page.locator("#live").inner_text()  # the paused pixel
    # the token itself is nowhere in the page, its script or its cookie
    assert ui_server.tokens["write"] not in page.content()
    cookie = next(c for c in page.context.cookies() if c["name"] == "convctl_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert ui_server.tokens["write"] not in cookie["value"]
    shoot(page, "overview", phone=True)

    page.get_by_role("link", name="Events").click()
    names = page.locator("table.data tbody tr td:nth-child(2) a").all_inner_texts()
    for name in ("demo-booked", "contact-sales", "pipeline", "webinar-registration"):
        assert name in names
    page.get_by_role("link", name="demo-booked").click()
    detail = page.get_by_role("complementary")
    assert "acme/demo-booked" in detail.inner_text()
    assert "no_consent" in detail.inner_text()  # skip reasons with counts
    shown = json.loads(convctl("events", "show", "acme/demo-booked", "--state",
                               ui_server.state_url).stdout)
    keys = page.get_by_label("user_data keys").locator("code").all_inner_texts()
    assert keys == shown["sends"]["userData"]  # exactly what `convctl events show` lists
    coverage = detail.locator("table.coverage").inner_text()
    assert "lead_id" in coverage and "100 %" in coverage  # every send carried a lead id
    shoot(page, "events", phone=True)
    page.get_by_role("link", name="Dead letters").click()
    assert "event_time is too far in the past" in page.inner_text("main")  # Meta's message
    shoot(page, "dead-letters")
    page.get_by_role("link", name="Runs").click()
    assert page.locator("article.run").count() >= 1
    assert "create event.acme/demo-booked" in page.inner_text("main")
    run = page.locator("article.run").last.inner_text()  # the shipped manifests' first apply
    assert "By " in run and "Plan: " in run and "to create" in run  # who, and the plan summary
    shoot(page, "runs")


def test_toggle_off_is_drift_in_the_next_plan(page: Any, ui_server: Server) -> None:
    login(page, ui_server, "write")
    page.goto(f"{ui_server.url}/ui/events?q=contact-sales")
    switch = page.get_by_role("switch", name=re.compile(r"globex\/contact-sales: on"))
    switch.click()
    dialog = page.get_by_role("dialog")
    assert "Sending stops at once (R19)" in dialog.inner_text()
    dialog.get_by_role("button", name="Confirm").click()
    page.wait_for_url(re.compile(r"/ui/events"))
    assert "switched off" in page.get_by_role("status").first.inner_text()
    assert page.get_by_role("switch", name=re.compile(r"globex\/contact-sales: off")).is_visible()
    plan = convctl("plan", str(ui_server.manifests),  # type: ignore[attr-defined]
                   "--state", ui_server.state_url)
    assert "globex/contact-sales" in plan.stdout and "drift" in plan.stdout, plan.stdout
    assert "spec.enabled: false -> true" in plan.stdout
    history = convctl("history", "--format", "json", "--state", ui_server.state_url)
    [switch_off] = [r for r in json.loads(history.stdout)["entries"]
                    if r["action"] == "disable" and r["target"] == "globex/contact-sales"]
    assert switch_off["actor"].startswith("token:"), switch_off  # audited as the session's token
    page.get_by_role("switch", name=re.compile(r"globex\/contact-sales: off")).click()
    page.get_by_role("dialog").get_by_role("button", name="Confirm").click()
    page.wait_for_url(re.compile(r"/ui/events"))
    assert page.get_by_role("switch", name=re.compile(r"globex\/contact-sales: on")).is_visible()


def _dead(server: Server, reason: str, count: int, event_time: int | None = None
          ) -> dict[str, int]:
    """Add ``count`` dead letters of acme/funnel with ``reason`` (events of ``event_time``,
    default now); the dead count per event."""
    store = AgentStore(server.state_url.removeprefix("sqlite:///"))
    try:
        if count:
            funnel = convctl("events", "list", "--format", "json", "--account", "acme",
                             "--state", server.state_url)
            [event_id] = [ev["id"] for ev in json.loads(funnel.stdout)["events"]
                          if ev["name"] == "funnel"]
            store.commit_processed([], [queue_row(
                event_id, f"{reason}-{i}", "acme", "111111111111111",
                {"event_name": "funnel", "event_time": event_time or int(time.time())},
                status="dead",
                reason=reason,
                error="(#100) Invalid parameter") for i in range(count)], {})
        return {g["eventName"]: g["count"] for g in store.dead_letter_groups()
                if g["reason"] == reason}
    finally:
        store.close()


def test_requeue_dead_letters_then_log_out(page: Any, ui_server: Server) -> None:
    assert _dead(ui_server, "invalid_payload", 2) == {"funnel": 2}
    login(page, ui_server, "write")
    page.get_by_role("link", name="Dead letters").click()
    page.get_by_role("button", name=re.compile(
        r"Re-queue 2 letters of acme\/funnel, reason invalid_payload")).click()
    page.get_by_role("dialog").get_by_role("button", name="Confirm").click()
    page.wait_for_url(f"{ui_server.url}/ui/dead")
    assert "Queued 2 dead letter(s) again" in page.get_by_role("status").first.inner_text()
    assert "invalid_payload" not in page.inner_text("#live")
    assert "event_time is too far in the past" in page.inner_text("#live")  # the other group
    assert _dead(ui_server, "invalid_payload", 0) == {}
    _dead(ui_server, "stale", 1, event_time=1)  # 1970: past Meta's 7-day window (R16)
    page.goto(f"{ui_server.url}/ui/dead")
    page.get_by_role("button", name=re.compile(r"acme\/funnel, reason stale")).click()
    page.get_by_role("dialog").get_by_role("button", name="Confirm").click()
    page.wait_for_url(f"{ui_server.url}/ui/dead")
    flash = page.get_by_role("status").first.inner_text()
    assert "Queued 0" in flash
    assert "Refused 1 older than their network's window (Meta 7 days" in flash
    assert _dead(ui_server, "stale", 0) == {"funnel": 1}  # as `agent retry-dead`: it stays dead
    session = next(c for c in page.context.cookies() if c["name"] == "convctl_session")
    page.get_by_role("button", name="Log out").click()
    page.wait_for_url(re.compile(r"/ui/login"))
    page.goto(f"{ui_server.url}/ui/runs")
    assert "/ui/login" in page.url
    page.context.add_cookies([session])  # the old cookie, replayed, is dead too
    page.goto(f"{ui_server.url}/ui")
    assert "/ui/login" in page.url


def test_wrong_token_is_refused(page: Any, ui_server: Server) -> None:
    page.goto(f"{ui_server.url}/ui/login")
    page.get_by_label("Token").fill("cvt_not-a-real-token-000000000000")
    page.get_by_role("button", name="Log in").click()
    assert "unknown or revoked token" in page.get_by_role("alert").inner_text()
    assert not [c for c in page.context.cookies() if c["name"] == "convctl_session"]
    page.get_by_label("Token").fill(ui_server.tokens["ingest"])  # a real token, no read
    page.get_by_role("button", name="Log in").click()
    assert "token 't-ingest' lacks the 'read' scope" in page.get_by_role("alert").inner_text()
    assert not [c for c in page.context.cookies() if c["name"] == "convctl_session"]
    page.goto(f"{ui_server.url}/ui/events")
    assert "/ui/login" in page.url
    shoot(page, "login")


def _enabled(server: Server, ref: str) -> bool:
    shown = convctl("events", "show", ref, "--state", server.state_url)
    return '"enabled": true' in shown.stdout


def test_read_token_cannot_toggle(page: Any, ui_server: Server) -> None:
    login(page, ui_server, "read")
    page.goto(f"{ui_server.url}/ui/events")
    assert page.get_by_role("switch").count() == 0  # no form to press: a read-only view
    event_id = page.get_by_role("link", name="demo-booked").get_attribute("id")[3:]
    answer = page.request.post(f"{ui_server.url}/ui/events/{event_id}/toggle", form={
        "csrf": csrf_of(page), "enabled": "0", "confirmed": "yes"}, max_redirects=0)
    assert answer.status == 403 and "lacks the 'write' scope" in unescape(answer.text())
    assert _enabled(ui_server, "acme/demo-booked")


def test_forged_post_without_csrf_is_refused(page: Any, ui_server: Server) -> None:
    login(page, ui_server, "write")
    page.goto(f"{ui_server.url}/ui/events")
    event_id = page.get_by_role("link", name="demo-booked").get_attribute("id")[3:]
    url = f"{ui_server.url}/ui/events/{event_id}/toggle"
    for form in ({"enabled": "0", "confirmed": "yes"},
                 {"csrf": "forged", "enabled": "0", "confirmed": "yes"}):
        answer = page.request.post(url, form=form, max_redirects=0)
        assert answer.status == 403 and "CSRF" in answer.text()
    other_site = page.request.post(url, form={"csrf": csrf_of(page), "enabled": "0",
                                              "confirmed": "yes"},
                                   headers={"Origin": "https://evil.example"}, max_redirects=0)
    assert other_site.status == 403
    assert _enabled(ui_server, "acme/demo-booked")


def test_break_the_lock_from_the_runs_page(page: Any, ui_server: Server) -> None:
    provider = SqliteProvider(ui_server.state_url.removeprefix("sqlite:///"))
    try:
        lock = provider.acquire_lock("ci-apply", "apply", 600, pid=4242, host="runner-7")
        login(page, ui_server, "write")
        page.get_by_role("link", name="Runs").click()
        held = page.locator("#lock").inner_text()
        assert "ci-apply" in held and "pid 4242 on runner-7" in held
        page.get_by_role("button", name="Break the lock").click()
        dialog = page.get_by_role("dialog")
        assert lock.id in dialog.inner_text()
        dialog.get_by_role("button", name="Confirm").click()
        page.wait_for_url(f"{ui_server.url}/ui/runs")
        assert f"Lock {lock.id} released." in page.get_by_role("status").first.inner_text()
        assert provider.current_lock() is None
    finally:
        current = provider.current_lock()
        if current is not None:
            provider.release_lock(current.id)
        provider.close()


def test_switch_from_a_stale_page_is_refused(page: Any, ui_server: Server) -> None:
    login(page, ui_server, "write")
    page.goto(f"{ui_server.url}/ui/events?q=demo-booked")
    event_id = page.get_by_role("link", name="demo-booked").get_attribute("id")[3:]
    answer = page.request.post(f"{ui_server.url}/ui/events/{event_id}/toggle", form={
        "csrf": csrf_of(page), "enabled": "0", "version": "999", "confirmed": "yes"},
        max_redirects=0)
    assert answer.status == 412, answer.text()
    assert _enabled(ui_server, "acme/demo-booked")


def test_without_script_a_switch_asks_on_its_own_page(page: Any, ui_server: Server) -> None:
    login(page, ui_server, "write")
    page.goto(f"{ui_server.url}/ui/events?q=demo-booked")
    event_id = page.get_by_role("link", name="demo-booked").get_attribute("id")[3:]
    answer = page.request.post(f"{ui_server.url}/ui/events/{event_id}/toggle", form={
        "csrf": csrf_of(page), "enabled": "0"}, max_redirects=0)
    assert answer.status == 200 and "Sending stops at once (R19)" in unescape(answer.text())
    assert _enabled(ui_server, "acme/demo-booked")  # asking changed nothing


def test_keyboard_only_switch_asks_and_cancels(page: Any, ui_server: Server) -> None:
    login(page, ui_server, "write")
    page.goto(f"{ui_server.url}/ui/events?q=demo-booked")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    switch = page.get_by_role("switch", name=re.compile(r"acme\/demo-booked: on"))
    for _ in range(30):  # the switch is reachable by Tab alone
        page.keyboard.press("Tab")
        if switch.evaluate("el => el === document.activeElement"):
            break
    else:
        raise AssertionError("Tab never reached the switch")
    page.keyboard.press("Space")
    dialog = page.get_by_role("dialog")
    assert dialog.is_visible()
    assert page.evaluate("document.activeElement.textContent") == "Cancel"  # the safe choice
    page.keyboard.press("Escape")
    assert page.get_by_role("dialog").count() == 0
    assert switch.evaluate("el => el === document.activeElement")  # focus comes back
    assert _enabled(ui_server, "acme/demo-booked")


def test_pages_poll_at_most_every_5_s_and_update_in_place(page: Any, ui_server: Server) -> None:
    login(page, ui_server, "write")
    polls: list[str] = []
    page.on("request", lambda req: polls.append(req.url)
            if req.headers.get("x-convctl-poll") == "1" else None)
    page.clock.install()
    page.goto(f"{ui_server.url}/ui/dead")
    page.evaluate("window.__same_page = true")
    store = AgentStore(ui_server.state_url.removeprefix("sqlite:///"))
    try:
        event = page.request.get(f"{ui_server.url}/v1/events", headers={
            "Authorization": f"Bearer {ui_server.tokens['read']}"}).json()[0]
        store.commit_processed([], [queue_row(event["id"], "late-1", event["account"], "1",
                                              {"event_name": "x", "event_time": 1},
                                              status="dead", reason="expired",
                                              error="older than 7 days (R16)")], {})
        page.clock.run_for(4900)
        assert polls == []  # not before 5 s
        with page.expect_response(lambda r: r.request.headers.get("x-convctl-poll") == "1"):
            page.clock.run_for(200)
        page.locator("#live").get_by_text("older than 7 days (R16)").wait_for()
        assert page.evaluate("window.__same_page") is True  # updated without a reload
        assert len(polls) == 1
    finally:
        store.retry_dead("expired")
        store.close()


def test_a_refresh_keeps_the_details_scrolled_and_focus(page: Any, ui_server: Server) -> None:
    login(page, ui_server, "write")
    page.clock.install()
    page.goto(f"{ui_server.url}/ui/events")
    page.get_by_role("link", name="demo-booked").click()
    panel = page.locator("#detail")
    panel.evaluate("el => { el.scrollTop = 120; }")
    assert panel.evaluate("el => el.scrollTop") == 120  # it does overflow at 1280x800
    page.get_by_role("link", name="funnel").focus()
    with page.expect_response(lambda r: r.request.headers.get("x-convctl-poll") == "1"):
        page.clock.run_for(5100)
    page.wait_for_function("() => document.getElementById('updated').textContent !== ''")
    assert page.locator("#detail").evaluate("el => el.scrollTop") == 120
    assert page.evaluate("document.activeElement.id").startswith("ev-")
    assert page.evaluate("document.activeElement.textContent") == "funnel"
