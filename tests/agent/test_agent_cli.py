"""``convctl agent ...`` through click: apply, ingest, run against the fake Graph API, status,
dry run, retry-dead, resume; exit codes, exact output and no token anywhere."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from agentio import ACME_PIXEL, MANIFESTS, contact_line, form_line, stage_line, write_jsonl
from click.testing import CliRunner, Result
from fakes.graph import FakeGraph

from reconciler.cli.main import cli

TOKEN = "acme-cli-token-SECRET"
COVERAGE = (  # what the shipped events sent, in `agent status`
    "Match-key coverage (share of sent events carrying each key; last 24 h, last 7 d):\n"
    "  acme/demo-request: 1 sent in 24 h, 1 in 7 d\n"
    + "".join(f"    {key:<17}  100%  100%\n" for key in (
        "em", "ph", "fn", "ln", "country", "client_ip_address", "client_user_agent"))
    + "  acme/funnel: 1 sent in 24 h, 1 in 7 d\n"
    "    lead_id            100%  100%\n")


@pytest.fixture
def graph() -> Iterator[FakeGraph]:
    with FakeGraph(token=TOKEN) as fake:
        yield fake


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    shutil.copytree(MANIFESTS, tmp_path / "manifests")
    monkeypatch.chdir(tmp_path)
    for var in ("CONVCTL_STATE", "CONVCTL_AGENT_STORE", "CONVCTL_META_BASE_URL",
                "CONVCTL_TEST_EVENT_CODE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("ACME_META_TOKEN", TOKEN)
    monkeypatch.setenv("CONVCTL_STATE", f"sqlite:///{tmp_path / 'state.db'}")
    assert run("apply", "--auto-approve").exit_code == 0
    return tmp_path


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def feed(repo: Path) -> Path:
    soon = datetime.now(UTC) + timedelta(seconds=1)  # after the events' creation (R4)
    return write_jsonl(repo / "feed.jsonl", [
        contact_line("501"), contact_line("502", lead=None), "{oops",
        stage_line("501", "customer", soon), stage_line("502", "customer", soon),
        form_line("s-1", "501", soon)])


def test_agent_is_listed_and_options_name_their_env_vars() -> None:
    assert "agent" in run("--help").output
    help_text = " ".join(run("agent", "run", "--help").output.split())
    for var in ("CONVCTL_META_BASE_URL", "CONVCTL_META_API_VERSION", "CONVCTL_TEST_EVENT_CODE",
                "CONVCTL_STATE", "CONVCTL_AGENT_STORE"):
        assert var in help_text


def test_ingest_reports_bad_lines_and_exits_1(repo: Path) -> None:
    result = run("agent", "ingest", str(feed(repo)))
    assert result.exit_code == 1
    assert result.stdout == ("Ingested 3 event(s) and 2 contact(s) from 6 line(s); "
                             "0 duplicate(s) dropped, 1 bad line(s) skipped.\n")
    assert result.stderr.startswith(f"{repo / 'feed.jsonl'}:3: not valid JSON")
    again = run("agent", "ingest", str(repo / "feed.jsonl"))
    assert "0 event(s)" in again.stdout and "3 duplicate(s) dropped" in again.stdout


def test_run_once_delivers_and_status_counts(repo: Path, graph: FakeGraph) -> None:
    run("agent", "ingest", str(feed(repo)))
    result = run("agent", "run", "--once", "--meta-base-url", graph.base_url)
    assert result.exit_code == 0, result.output
    assert sorted(k[1] for k in graph.unique) == ["Customer", "Lead"]
    status = run("agent", "status")
    assert status.exit_code == 0
    assert status.stdout == (
        "Inbox:  0 new, 3 processed\n"
        "Outbox: 0 queued, 2 sent, 0 dead\n"
        f"Pixel {ACME_PIXEL}: 0 queued, 2 sent, 0 dead\n"
        "Skipped:\n"
        "  disabled            1\n"
        "  no_lead_id          1\n"
        "  stage_not_selected  2\n" + COVERAGE)
    data = json.loads(run("agent", "status", "--format", "json").stdout)
    assert data["outbox"] == {"queued": 0, "sent": 2, "dead": 0}
    funnel = next(c for c in data["coverage"] if c["event"] == "acme/funnel")
    assert funnel["live"] is True and funnel["windows"]["7d"]["sent"] == 1
    assert funnel["windows"]["24h"]["keys"]["lead_id"] == {"count": 1, "share": 1.0}
    assert funnel["windows"]["24h"]["keys"]["em"] == {"count": 0, "share": 0.0}
    assert TOKEN not in result.output + status.output


def test_test_event_code_only_when_set(repo: Path, graph: FakeGraph,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    run("agent", "ingest", str(feed(repo)))
    monkeypatch.setenv("CONVCTL_META_BASE_URL", graph.base_url)
    monkeypatch.setenv("CONVCTL_TEST_EVENT_CODE", "TEST123")
    assert run("agent", "run", "--once").exit_code == 0
    assert [r.test_event_code for r in graph.requests] == ["TEST123"]


def test_dry_run_writes_lines_without_token_and_keeps_the_queue(repo: Path,
                                                               graph: FakeGraph) -> None:
    run("agent", "ingest", str(feed(repo)))
    out = repo / "dry.jsonl"
    result = run("agent", "run", "--once", "--dry-run", str(out))
    assert result.exit_code == 0, result.output
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert [(x["pixelId"], len(x["body"]["data"])) for x in lines] == [(ACME_PIXEL, 2)]
    assert TOKEN not in out.read_text() and "access_token" not in out.read_text()
    assert run("agent", "status").stdout.startswith(  # the store is left as it was
        "Inbox:  3 new, 0 processed\nOutbox: 0 queued, 0 sent, 0 dead\n")
    assert not graph.requests


def test_token_error_pauses_then_resume_and_retry_dead(repo: Path, graph: FakeGraph) -> None:
    run("agent", "ingest", str(feed(repo)))
    graph.fail_next("190")
    first = run("agent", "run", "--once", "--meta-base-url", graph.base_url)
    assert first.exit_code == 0
    status = run("agent", "status").stdout
    assert f"Pixel {ACME_PIXEL}: PAUSED since" in status and "(token)" in status
    assert "env ACME_META_TOKEN" in status and TOKEN not in status + first.output
    assert run("agent", "resume", ACME_PIXEL).stdout == f"Pixel {ACME_PIXEL} resumed.\n"
    assert run("agent", "resume", ACME_PIXEL).stdout == f"Pixel {ACME_PIXEL} was not paused.\n"
    assert run("agent", "run", "--once", "--meta-base-url", graph.base_url).exit_code == 0
    assert len(graph.unique) == 2
    assert run("agent", "retry-dead").stdout == "Queued 0 dead letter(s) again.\n"
    assert run("agent", "retry-dead", "--reason", "rejected").stdout == (
        "Queued 0 dead letter(s) again (reason rejected).\n")


def test_separate_store_file_for_a_non_sqlite_state(repo: Path) -> None:
    result = run("agent", "status", "--state", "memory://", "--store", str(repo / "a.db"))
    assert result.exit_code == 0 and (repo / "a.db").exists()
