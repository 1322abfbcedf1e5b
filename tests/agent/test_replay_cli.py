"""``convctl agent retry-dead --event/--since/--until/--dry-run`` on a real SQLite store: the
filters choose the dead letters, a dry run lists them and changes nothing, events past Meta's
7-day window are refused with a count and stay dead, bad input is one line and exit 1."""

from __future__ import annotations

import shutil
import sqlite3
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from agentio import ACME_PIXEL, MANIFESTS
from click.testing import CliRunner, Result
from hypothesis import given
from hypothesis import strategies as st

from reconciler.adapters.agentrows import NewOutbox
from reconciler.adapters.agentstore import AgentStore
from reconciler.adapters.state.sqlite import SqliteProvider
from reconciler.cli.main import cli
from reconciler.core.timespec import parse_moment
from reconciler.services.agent_chunk import queue_row

NOW = datetime.now(UTC).replace(microsecond=0)


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    shutil.copytree(MANIFESTS, tmp_path / "manifests")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CONVCTL_AGENT_STORE", raising=False)
    monkeypatch.setenv("NO_COLOR", "1")
    path = tmp_path / "state.db"
    monkeypatch.setenv("CONVCTL_STATE", f"sqlite:///{path}")
    assert run("apply", "--auto-approve").exit_code == 0
    provider = SqliteProvider(path)
    ids = {e.name: e.id for e in provider.list_events("acme")}
    provider.close()
    store = AgentStore(path)

    def dead(event: str, name: str, age: timedelta, reason: str = "rejected") -> NewOutbox:
        payload = {"event_name": name, "event_time": int((NOW - age).timestamp()),
                   "event_id": f"{event}-{name}-{age.days}"}
        return queue_row(ids[event], payload["event_id"], "acme", ACME_PIXEL, payload,
                         status="dead", reason=reason, error="refused")

    store.commit_processed([], [
        dead("funnel", "Customer", timedelta(hours=5)),
        dead("funnel", "Customer", timedelta(days=3)),
        dead("funnel", "Customer", timedelta(days=8)),  # past Meta's window
        dead("demo-request", "Lead", timedelta(hours=5), reason="not_received"),
    ], {})
    store.close()
    return path


def statuses(path: Path) -> list[tuple[str, str, str | None]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT event_id, status, reason FROM outbox ORDER BY seq").fetchall()
    finally:
        conn.close()


def test_dry_run_lists_what_would_be_queued_and_changes_nothing(state: Path) -> None:
    before = statuses(state)
    result = run("agent", "retry-dead", "--event", "acme/funnel", "--dry-run")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert [line.split()[1] for line in lines[:-1]] == ["funnel-Customer-3", "funnel-Customer-0"]
    assert lines[-1] == ("Would queue 2 dead letter(s) again. Refused 1 older than their "
                         "network's window (Meta 7 days, LinkedIn and Google Ads 90): they "
                         "stay dead (the network would reject them).")
    assert statuses(state) == before


def test_filters_choose_the_rows_and_too_old_ones_stay_dead(state: Path) -> None:
    result = run("agent", "retry-dead", "--event", "acme/funnel", "--since", "2d")
    assert result.stdout == "Queued 1 dead letter(s) again.\n"
    assert statuses(state) == [("funnel-Customer-0", "queued", None),
                               ("funnel-Customer-3", "dead", "rejected"),
                               ("funnel-Customer-8", "dead", "rejected"),
                               ("demo-request-Lead-0", "dead", "not_received")]
    until = (NOW - timedelta(days=1)).isoformat().replace("+00:00", "Z")
    result = run("agent", "retry-dead", "--until", until)
    assert result.stdout == ("Queued 1 dead letter(s) again. Refused 1 older than their "
                             "network's window (Meta 7 days, LinkedIn and Google Ads 90): "
                             "they stay dead (the network would reject them).\n")
    assert [s for _, s, _ in statuses(state)] == ["queued", "queued", "dead", "dead"]
    result = run("agent", "retry-dead", "--reason", "not_received")
    assert result.stdout == "Queued 1 dead letter(s) again (reason not_received).\n"
    assert run("agent", "retry-dead").stdout == (
        "Queued 0 dead letter(s) again. Refused 1 older than their network's window (Meta 7 "
        "days, LinkedIn and Google Ads 90): they stay dead (the network would reject them).\n")
    assert statuses(state)[2] == ("funnel-Customer-8", "dead", "rejected")


@pytest.mark.parametrize(("args", "message"), [
    (("--since", "yesterday"), "--since: 'yesterday' is neither a duration"),
    (("--until", "2026-11-20T10:00:00"), "--until: '2026-11-20T10:00:00' has no zone"),
    (("--since", "1h", "--until", "2h"), "--since must be before --until"),
    (("--since", "999999w"), "--since: '999999w' reaches back before the year 1"),
    (("--event", "acme/nope"), "--event acme/nope: no such conversion event"),
    (("--event", "funnel"), "--event 'funnel': give it as ACCOUNT/NAME"),
])
def test_bad_input_is_one_line_and_changes_nothing(state: Path, args: tuple[str, ...],
                                                   message: str) -> None:
    before = statuses(state)
    result = run("agent", "retry-dead", *args)
    assert result.exit_code == 1
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.output and result.stdout == ""
    assert statuses(state) == before


@given(st.integers(min_value=0, max_value=999_999), st.sampled_from("smhdw"))
def test_durations_count_back_from_now(n: int, unit: str) -> None:
    names = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
    try:
        expected = NOW - timedelta(**{names[unit]: n})
    except OverflowError:  # before the year 1: a clear error, not a traceback
        with pytest.raises(ValueError, match="before the year 1"):
            parse_moment(f"{n}{unit}", NOW)
    else:
        assert parse_moment(f"{n}{unit}", NOW) == expected


@given(st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2100, 1, 1),
                    timezones=st.sampled_from([UTC, timezone(timedelta(hours=-5))])))
def test_iso_times_with_a_zone_round_trip(moment: datetime) -> None:
    assert parse_moment(moment.isoformat(), NOW) == moment
