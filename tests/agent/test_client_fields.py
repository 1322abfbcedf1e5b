"""A form's client IP address and user agent are checked at ingest (issue 10, item 15): an
invalid one is dropped (never stored, never sent) and counted, and its event still goes out,
in the one request its batch needs, instead of making Meta refuse the whole batch."""

from __future__ import annotations

import ipaddress
import sqlite3
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from agentio import START, T_CREATED, FakeClock, Rig, contact_line, form_line, make_rig
from agentio import write_jsonl as write
from click.testing import CliRunner
from fakes.graph import FakeGraph
from hypothesis import given
from hypothesis import strategies as st

from reconciler.cli.main import cli
from reconciler.core.crm import MAX_USER_AGENT, client_fields
from reconciler.core.crm_hubspot import parse_form_ingest

UA = "Mozilla/5.0 (X11; Linux x86_64)"


@pytest.mark.parametrize("given_ip, kept", [
    ("203.0.113.7", "203.0.113.7"), (" 203.0.113.7 ", "203.0.113.7"),
    ("2001:DB8:0:0::1", "2001:db8::1"), ("::ffff:192.0.2.1", "::ffff:c000:201"),
    (None, None), ("", None), ("   ", None),
])
def test_valid_addresses_are_kept_in_canonical_form(given_ip: str | None,
                                                    kept: str | None) -> None:
    assert client_fields(given_ip, UA) == (kept, UA, ())


@pytest.mark.parametrize("bad", ["john.doe@example.com", "999.999.1.1", "1.2.3", "01.2.3.4",
                                 "fe80::1%eth0", "203.0.113.7/24", "::g", "1.2.3.4x"])
def test_invalid_addresses_are_dropped_with_a_reason(bad: str) -> None:
    assert client_fields(bad, UA) == (None, UA, ("invalid_ip_address",))


@pytest.mark.parametrize("bad", ["Mozilla/5.0\r\nX-Injected: 1", "a\x00b", "Mozïlla/5.0",
                                 "x" * (MAX_USER_AGENT + 1)])
def test_invalid_user_agents_are_dropped_with_a_reason(bad: str) -> None:
    assert client_fields("203.0.113.7", bad) == ("203.0.113.7", None, ("invalid_user_agent",))
    assert client_fields("x", bad)[2] == ("invalid_ip_address", "invalid_user_agent")


@given(st.ip_addresses())
def test_every_address_passes_as_the_stdlib_writes_it(address: object) -> None:
    assert client_fields(str(address), None) == (str(address), None, ())


@given(st.text(max_size=60))
def test_whatever_the_text_what_is_kept_is_an_address(text: str) -> None:
    ip, _, dropped = client_fields(text, None)
    assert (ip is None) or (ipaddress.ip_address(ip) and not dropped)


def test_the_form_ingest_body_is_checked_too() -> None:
    parsed = parse_form_ingest({"formId": "f", "portalId": 1, "submittedAt": 0,
                                "context": {"ipAddress": "999.999.1.1"}, "userAgent": "a\tb"})
    assert (parsed.submission.ip_address, parsed.submission.user_agent) == (None, None)
    assert parsed.submission.dropped == ("invalid_ip_address", "invalid_user_agent")


@pytest.fixture
def rig(tmp_path: Path, graph: FakeGraph, clock: FakeClock) -> Iterator[Rig]:
    r = make_rig(tmp_path, graph.base_url, clock, T_CREATED)
    yield r
    r.close()


def test_200_forms_with_two_bad_addresses_go_out_in_one_request(
        rig: Rig, graph: FakeGraph, tmp_path: Path) -> None:
    lines = [contact_line(f"{600 + i}") for i in range(200)]
    forms = [form_line(f"s-{i}", f"{600 + i}", START - timedelta(minutes=200 - i))
             for i in range(200)]
    forms[10]["ipAddress"] = "john.doe@example.com"
    forms[20]["ipAddress"] = "999.999.1.1"
    report = rig.agent.ingest_jsonl(write(tmp_path / "f.jsonl", lines + forms))
    assert report.dropped == {"invalid_ip_address": 2} and not report.errors
    rig.agent.run(once=True)
    assert [r.events for r in graph.requests] == [200]  # one request, nothing refused
    assert len(graph.unique) == 200 and not rig.store.dead_letters()
    ips = [p["user_data"].get("client_ip_address") for p in graph.payloads.values()]
    assert ips.count(None) == 2 and ips.count("203.0.113.7") == 198
    assert rig.agent.status().as_json()["droppedFields"] == {"invalid_ip_address": 2}
    conn = sqlite3.connect(rig.state)
    try:
        assert not any("john.doe" in line for line in conn.iterdump())
    finally:
        conn.close()


def test_the_cli_reports_and_status_shows_the_drops(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CONVCTL_AGENT_STORE", raising=False)
    state = f"sqlite:///{tmp_path / 'state.db'}"
    line = form_line("s-1", "601", START)
    line["userAgent"] = "x" * 1000
    path = write(tmp_path / "f.jsonl", [line])
    runner = CliRunner()
    ingest = runner.invoke(cli, ["agent", "ingest", str(path), "--state", state])
    assert ingest.exit_code == 0, ingest.output
    assert "Invalid fields dropped (the events kept): invalid_user_agent 1." in ingest.stdout
    status = runner.invoke(cli, ["agent", "status", "--state", state]).stdout
    assert "Dropped at ingest:\n  invalid_user_agent  1" in status
