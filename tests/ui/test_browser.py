"""The dashboard in a real headless Chromium against a real ``convctl serve`` (issue 15).

A user logs in with a token, sees the shipped manifests' events after an apply, switches one
off (and the next ``convctl plan`` reports the drift), re-queues a dead letter and logs out;
a wrong token, a read token trying to switch, and a forged post without the CSRF token are
refused and change nothing. Every page is photographed at 1280x800, light and dark.
"""

from __future__ import annotations

import re
from html import unescape
from typing import Any

from conftest import screens_dir
from serverkit import Server, convctl

from reconciler.adapters.agentstore import AgentStore
from reconciler.adapters.state.sqlite import SqliteProvider


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
    shoot(page, "events", phone=True)
    page.get_by_role("link", name="Dead letters").click()
    assert "event_time is too far in the past" in page.inner_text("main")  # Meta's message
    shoot(page, "dead-letters")
    page.get_by_role("link", name="Runs").click()
    assert page.locator("article.run").count() >= 1
    assert "create event.acme/demo-booked" in page.inner_text("main")
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
    page.get_by_role("switch", name=re.compile(r"globex\/contact-sales: off")).click()
    page.get_by_role("dialog").get_by_role("button", name="Confirm").click()
    page.wait_for_url(re.compile(r"/ui/events"))
    assert page.get_by_role("switch", name=re.compile(r"globex\/contact-sales: on")).is_visible()


def test_requeue_dead_letters_then_log_out(page: Any, ui_server: Server) -> None:
    login(page, ui_server, "write")
    page.get_by_role("link", name="Dead letters").click()
    page.get_by_role("button", name=re.compile(r"Re-queue 2 letters of acme\/demo-booked")).click()
    page.get_by_role("dialog").get_by_role("button", name="Confirm").click()
    page.wait_for_url(f"{ui_server.url}/ui/dead")
    assert "Queued 2 dead letter(s) again" in page.get_by_role("status").first.inner_text()
    assert "No dead letters" in page.inner_text("main")
    store = AgentStore(ui_server.state_url.removeprefix("sqlite:///"))
    try:
        assert store.status()["outbox"]["dead"] == 0
    finally:
        store.close()
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
