"""The dashboard's view data, without a browser: quota and states per account, the Events
list's filters, sort and pages, the sends chart, dead letters grouped, apply runs, and the
agent store's reads behind them (a real SQLite store and state)."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reconciler.adapters.agentquality import DeadSelection
from reconciler.adapters.agentrows import NewOutbox
from reconciler.adapters.agentstore import AgentStore
from reconciler.adapters.state.memory import MemoryProvider
from reconciler.adapters.state.sqlite import SqliteProvider
from reconciler.core.live import EventWrite, content_hash, spec_document
from reconciler.server.ui import views
from reconciler.server.ui.charts import sent_chart
from reconciler.server.ui.snapshot import take
from reconciler.services.agent_chunk import queue_row
from reconciler.services.replay import replay

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "contract"))
from statekit import account_spec, form_event, lifecycle_event

NOW = datetime(2026, 11, 20, 14, 30, 20, tzinfo=UTC)


def _state(provider: MemoryProvider | SqliteProvider) -> dict[str, str]:
    provider.put_account("acme", account_spec("professional"), {}, None)
    ids = {}
    for name, write in {
            "a": lifecycle_event("a", 3), "b": lifecycle_event("b", 2),
            "form": form_event("form"),
            "off": form_event("off", enabled=False)}.items():
        applied = content_hash(spec_document(write.spec, write.labels))  # as apply writes it
        ids[name] = provider.create_event(write.model_copy(
            update={"last_applied_hash": applied})).id
    unmanaged = lifecycle_event("hand", 1).model_copy(update={"managed_by": None})
    ids["hand"] = provider.create_event(unmanaged).id
    # drift: the live spec changed outside git, the marker keeps what was applied
    a = provider.get_event(ids["a"])
    applied = a.current_hash()
    provider.update_event(a.id, EventWrite(account="acme", name="a", spec=a.spec,
                                           labels={"team": "changed"},
                                           last_applied_hash=applied), a.version)
    return ids


def test_account_quota_stages_and_states() -> None:
    provider = MemoryProvider()
    ids = _state(provider)
    b = provider.get_event(ids["b"])
    provider.update_event(b.id, EventWrite(account="acme", name="b", spec=b.spec,
                                           labels=b.labels, last_applied_hash="elsewhere"),
                          b.version)
    [acme] = views.accounts_overview(take(provider))
    assert (acme["used"], acme["limit"], acme["level"]) == (6, 50, "ok")  # 3 + 2 + 1 (R7)
    assert acme["stages"][0] == ("1000000", 3)  # the stage three events use comes first
    assert acme["states"] == {"enabled": 4, "disabled": 1, "managed": 4, "unmanaged": 1,
                              "drifted": 2}  # a (labels changed) and b (marker elsewhere)


def test_quota_level_warns_at_80_percent_and_is_danger_at_the_limit() -> None:
    provider = MemoryProvider()
    provider.put_account("acme", account_spec("professional"), {}, None)
    provider.create_event(lifecycle_event("big", 40))
    assert views.accounts_overview(take(provider))[0]["level"] == "warn"
    provider.create_event(lifecycle_event("more", 10))
    [acme] = views.accounts_overview(take(provider))
    assert (acme["used"], acme["level"], acme["percent"]) == (50, "danger", 100)


def _rows(n: int) -> list[dict[str, object]]:
    provider = MemoryProvider()
    provider.put_account("acme", account_spec("enterprise"), {}, None)
    provider.put_account("globex", account_spec("enterprise"), {}, None)
    for i in range(n):
        account = "acme" if i % 3 else "globex"
        write = form_event(f"ev-{i:03d}", account=account, enabled=i % 5 != 0) if i % 2 else \
            lifecycle_event(f"ev-{i:03d}", 1, account=account)
        provider.create_event(write)
    return take(provider).rows


def test_event_list_filters_sorts_and_pages() -> None:
    rows = _rows(120)
    activity = {row["id"]: {"sent": i, "dead": 0, "skips": {"no_consent": 2}}
                for i, row in enumerate(rows)}
    query = views.EventQuery.parse({"account": "acme", "trigger": "form", "state": "disabled",
                                    "sort": "sent", "dir": "desc"})
    page = views.event_page(rows, activity, query)
    assert page.total == len([r for r in rows if r["account"] == "acme" and
                              r["trigger"] == "form" and not r["enabled"]]) > 0
    assert all(r["account"] == "acme" and r["trigger"] == "form" and not r["enabled"]
               for r in page.rows)
    sent = [r["sent"] for r in page.rows]
    assert sent == sorted(sent, reverse=True) and page.rows[0]["skipped"] == 2
    all_pages = views.event_page(rows, {}, views.EventQuery.parse({"page": "3"}), page_size=50)
    assert (all_pages.page, all_pages.pages, len(all_pages.rows)) == (3, 3, 20)
    beyond = views.event_page(rows, {}, views.EventQuery.parse({"page": "99"}), page_size=50)
    assert beyond.page == 3  # past the end shows the last page
    assert views.event_page(rows, {}, views.EventQuery.parse({"q": "ev-00"})).total == 10


@given(st.dictionaries(st.sampled_from(["account", "trigger", "state", "sort", "dir", "page",
                                        "q", "selected"]), st.text(max_size=30)))
def test_any_query_string_gives_a_valid_query(params: dict[str, str]) -> None:
    query = views.EventQuery.parse(params)
    assert query.sort in views.SORTS and query.page >= 1
    assert query.trigger in ("", *views.TRIGGERS) and query.state in ("", *views.STATES)
    assert query.link().startswith("?")


def test_minute_series_fills_the_hour_and_the_chart_describes_it() -> None:
    series = views.minute_series({"2026-11-20T14:30": 7, "2026-11-20T13:40": 2,
                                  "2026-11-20T13:20": 99}, NOW)
    assert len(series) == 60 and series[-1] == ("2026-11-20T14:30", 7)
    assert series[0][0] == "2026-11-20T13:31" and sum(n for _, n in series) == 9
    svg = str(sent_chart(series))
    assert svg.count("<rect") == 60 and 'role="img"' in svg
    assert "9 sent in the last hour; at most 7 in one minute." in svg


def test_agent_store_reads_and_the_views_over_them(tmp_path: Path) -> None:
    state = tmp_path / "state.db"
    provider = SqliteProvider(state)
    ids = _state(provider)
    moment = [NOW - timedelta(minutes=3)]
    store = AgentStore(state, clock=lambda: moment[0])
    try:
        def row(event: str, n: int, **kw: object) -> NewOutbox:
            return queue_row(ids[event], f"{event}-{n}", "acme", "111",
                             {"event_name": event, "event_time": int(NOW.timestamp())},
                             **kw)  # type: ignore[arg-type]

        store.commit_processed([], [row("a", 1), row("a", 2), row("form", 1)],
                               {("no_consent", ids["a"]): 5})
        store.mark_sent([r.seq for r in store.due(NOW.timestamp(), 10)])
        moment[0] = NOW
        store.commit_processed([], [row("a", 3, status="dead", reason="rejected", error="old"),
                                    row("a", 4, status="dead", reason="rejected",
                                        error="(#100) newest"),
                                    row("b", 1, status="dead", reason="expired", error="late")],
                               {})
        assert store.sent_per_minute(NOW - timedelta(hours=1)) == {"2026-11-20T14:27": 3}
        activity = store.event_activity(NOW - timedelta(hours=24))
        assert activity[ids["a"]]["sent"] == 2 and activity[ids["a"]]["dead"] == 2
        assert activity[ids["a"]]["skips"] == {"no_consent": 5}
        assert activity[ids["a"]]["lastSent"].startswith("2026-11-20T14:27")
        assert [d["status"] for d in store.deliveries(ids["a"])] == ["dead", "dead", "sent",
                                                                     "sent"]
        snap = take(provider)
        dead = views.dead_letter_view(store, snap.events)
        assert dead is not None and dead["total"] == 3
        assert [r["reason"] for r in dead["reasons"]] == ["rejected", "expired"]
        group = dead["reasons"][0]["groups"][0]
        assert (group["event"], group["count"], group["error"]) == ("acme/a", 2, "(#100) newest")
        detail = views.event_detail(snap.events[ids["a"]], snap.accounts[0], activity[ids["a"]],
                                    store)
        assert detail["skips"] == [("no_consent", 5)] and len(detail["deliveries"]) == 4
        assert detail["properties"] == ["email", "crm_id → external_id"]
        # the user_data keys, as `convctl events show` lists them: em hashed, lead_id clear
        assert detail["sends"] == [("em", True), ("external_id", True), ("fbc", False),
                                   ("fbp", False), ("lead_id", False)]
        # the dashboard's re-queue of one group is `agent retry-dead --reason --event`
        assert replay(store, DeadSelection("rejected", (ids["b"],)), NOW).queued == 0
        assert replay(store, DeadSelection("rejected", (ids["a"],)), NOW).queued == 2
        assert store.status().outbox == {"queued": 2, "sent": 3, "dead": 1}
    finally:
        store.close()
        provider.close()


@pytest.mark.parametrize("backend", ["memory", "sqlite"])
def test_recent_runs_newest_first_with_outcomes(tmp_path: Path, backend: str) -> None:
    provider = MemoryProvider() if backend == "memory" else SqliteProvider(tmp_path / "s.db")
    provider.record_step("run-1", 1, "create event.acme/a", "done")
    provider.record_step("run-2", 1, "create event.acme/b", "done")
    provider.record_step("run-2", 2, "delete event.acme/c", "failed", "conflict")
    provider.record_step("run-2", 3, "create event.acme/d", "pending")
    runs = views.recent_runs(provider)  # type: ignore[arg-type]
    assert [r["run_id"] for r in runs] == ["run-2", "run-1"]
    assert (runs[0]["outcome"], runs[0]["done"], runs[0]["failed"], runs[0]["pending"]) == (
        "failed", 1, 1, 1)
    assert [e["description"] for e in runs[0]["entries"]][1] == "delete event.acme/c"
    assert views.last_run(provider)["run_id"] == "run-2"  # type: ignore[arg-type,index]
    assert len(views.recent_runs(provider, 1)) == 1  # type: ignore[arg-type]


def test_agent_health_lists_paused_held_and_backoff() -> None:
    status = {"inbox": {"new": 4, "processed": 10}, "outbox": {"queued": 2, "sent": 9, "dead": 1},
              "paused": {"111": {"reason": "token_unavailable", "message": "X is not set",
                                 "since": "2026-11-20T14:00:00+00:00"}},
              "held": {"inbox": {"reason": "contacts_unavailable", "message": "HubSpot 503",
                                 "since": "2026-11-20T14:10:00+00:00"}},
              "heldOff": {"222": NOW.timestamp() + 30}, "deadLetters": {"rejected": 1}}
    health = views.agent_health(status, None, NOW)
    assert health is not None and (health["backlog"], health["queued"], health["dead"]) == (
        4, 2, 1)
    assert [s["target"] for s in health["stopped"]] == ["pixel 111", "inbox", "pixel 222"]
    assert health["stopped"][2]["message"] == "next try in 30 s"  # heldOff holds epoch times
    assert health["running"] is None  # a store's status: no loop in this server
    running = views.agent_health({**status, "loop": {"running": True, "failures": 0}}, None, NOW)
    assert running is not None and running["running"] is True
    assert views.agent_health(None, None, NOW) is None


def test_coverage_rows_show_the_sent_keys_and_any_seen() -> None:
    from reconciler.core.coverage import EventCoverage, WindowCoverage

    coverage = EventCoverage("ev_1", "acme/a", True, {
        "24h": WindowCoverage(4, {"em": 2, "lead_id": 4}),
        "7d": WindowCoverage(10, {"em": 5, "lead_id": 10, "ph": 1})})
    rows = views.coverage_rows(coverage, ["em", "lead_id", "fbc"])
    assert [(r["key"], r["day"], r["week"]) for r in rows] == [
        ("em", 0.5, 0.5), ("ph", 0.0, 0.1), ("lead_id", 1.0, 1.0), ("fbc", 0.0, 0.0)]
    assert rows[0]["daySent"] == 4 and rows[0]["weekSent"] == 10
    assert views.coverage_rows(None, ["em"]) == []


def test_templates_mask_tokens_and_escape_bidi_in_any_printed_text() -> None:
    from markupsafe import Markup

    from reconciler.server.ui.render import templates

    token = "cvt_" + "A" * 32
    meta = "EAAB" + "x" * 60
    html = templates().from_string("<p>{{ a }}</p><p>{{ b }}</p><i>{{ c }}</i>").render(
        a=f"label \u202eevil{token}", b=f"(#190) bad token {meta}", c=Markup("kept\u202e"))
    assert token not in html and meta not in html
    assert "\u202e" not in html.split("<i>")[0] and "\\u202e" in html  # escaped, visible
    assert "kept\u202e" in html  # Markup (the CSRF token, charts) is left alone
    assert "&lt;" not in html  # autoescape still applies, nothing double-escaped here


def test_a_linkedin_events_panel_lists_what_linkedin_is_sent_and_no_meta_ldu() -> None:
    """The details panel says what the event's own network is sent (as plans do): LinkedIn
    gets the e-mail hashed and names in clear, and Meta's Limited Data Use is not its (R15)."""
    from reconciler.core.live import LiveAccount, LiveEvent
    from reconciler.core.models import AccountSpec, EventSpec

    spec = AccountSpec.model_validate({
        "portalId": 1, "tier": "professional",
        "forms": [{"id": "f-1", "name": "Demo"}],
        "dataProcessingOptions": {"options": ["LDU"], "country": 1, "state": 1000},
        "facebook": {"businessId": "1122334455", "pixelId": "123456789012345",
                     "adAccounts": ["act_1"], "accessToken": {"env": "META"}},
        "linkedin": {"adAccount": "urn:li:sponsoredAccount:5", "accessToken": {"env": "LI"}}})
    account = LiveAccount(name="acme", spec=spec, updated_at=NOW)
    event = LiveEvent(id="ev_li", account="acme", name="li-demo", created_at=NOW, updated_at=NOW,
                      spec=EventSpec.model_validate({
                          "account": "acme", "network": "linkedin",
                          "conversionRule": "urn:lla:llaPartnerConversion:7",
                          "trigger": {"formSubmission": {
                              "formId": "f-1", "consent": {"property": "ok", "value": "yes"}}},
                          "dataSharing": {"properties": ["email", "firstname"]}}))
    detail = views.event_detail(event, account, None, None)
    assert detail["network"] == "LinkedIn"
    assert detail["sends"] == [("em", True), ("fn", False), ("li_fat_id", False)]
    assert detail["ldu"] == {}
