"""``convctl agent ingest|run|status|retry-dead|resume`` on a PostgreSQL agent store: named by
``--store`` / ``CONVCTL_AGENT_STORE``, or following a PostgreSQL ``--state``; the same outputs
and exit codes as on SQLite, and no password or token anywhere."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from agentio import ACME_PIXEL, MANIFESTS
from click.testing import CliRunner, Result
from fakes.graph import FakeGraph
from test_agent_cli import TOKEN, feed

from reconciler.cli.main import cli


@pytest.fixture
def graph() -> Iterator[FakeGraph]:
    with FakeGraph(token=TOKEN) as fake:
        yield fake


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.fixture(params=["store", "state"])
def repo(request: pytest.FixtureRequest, tmp_path: Path, postgres_url: str,
         monkeypatch: pytest.MonkeyPatch) -> Path:
    """The shipped manifests applied; the agent store on PostgreSQL: named by
    CONVCTL_AGENT_STORE beside a SQLite state, or following a PostgreSQL state."""
    shutil.copytree(MANIFESTS, tmp_path / "manifests")
    monkeypatch.chdir(tmp_path)
    for var in ("CONVCTL_STATE", "CONVCTL_AGENT_STORE", "CONVCTL_META_BASE_URL",
                "CONVCTL_TEST_EVENT_CODE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("ACME_META_TOKEN", TOKEN)
    if request.param == "store":
        monkeypatch.setenv("CONVCTL_STATE", f"sqlite:///{tmp_path / 'state.db'}")
        monkeypatch.setenv("CONVCTL_AGENT_STORE", postgres_url)
    else:
        monkeypatch.setenv("CONVCTL_STATE", postgres_url)
    assert run("apply", "--auto-approve").exit_code == 0
    return tmp_path


def clean(result: Result, postgres_url: str) -> Result:
    password = postgres_url.split(":")[2].split("@")[0]
    assert password not in result.output and TOKEN not in result.output
    return result


def test_the_agent_commands_work_on_a_postgresql_store(repo: Path, graph: FakeGraph,
                                                       postgres_url: str) -> None:
    ingested = clean(run("agent", "ingest", str(feed(repo))), postgres_url)
    assert ingested.exit_code == 1 and ingested.stdout == (
        "Ingested 3 event(s) and 2 contact(s) from 6 line(s); 0 duplicate(s) dropped, 1 bad "
        "line(s) skipped.\n")
    graph.fail_next("190")
    assert run("agent", "run", "--once", "--meta-base-url", graph.base_url).exit_code == 0
    status = clean(run("agent", "status"), postgres_url).stdout
    assert status.startswith("Inbox:  0 new, 3 processed\nOutbox: 2 queued, 0 sent, 0 dead\n")
    assert f"Pixel {ACME_PIXEL}: PAUSED since" in status and "(token)" in status
    assert run("agent", "resume", ACME_PIXEL).stdout == f"Pixel {ACME_PIXEL} resumed.\n"
    assert run("agent", "resume", ACME_PIXEL).stdout == f"Pixel {ACME_PIXEL} was not paused.\n"
    done = clean(run("agent", "run", "--once", "--meta-base-url", graph.base_url), postgres_url)
    assert done.exit_code == 0 and sorted(k[1] for k in graph.unique) == ["Customer", "Lead"]
    data = json.loads(run("agent", "status", "--format", "json").stdout)
    assert data["outbox"] == {"queued": 0, "sent": 2, "dead": 0}
    assert data["inbox"] == {"new": 0, "processed": 3} and data["recentDeadLetters"] == []
    assert data["skips"] == {"disabled": 1, "no_lead_id": 1, "stage_not_selected": 2}
    assert run("agent", "retry-dead").stdout == "Queued 0 dead letter(s) again.\n"
    assert not (repo / ".convctl" / "agent.db").exists()  # nothing went to a file


def test_a_dry_run_on_a_postgresql_store_is_refused_clearly(repo: Path,
                                                           postgres_url: str) -> None:
    result = CliRunner().invoke(cli, ["agent", "run", "--once", "--dry-run",
                                      str(repo / "dry.jsonl")])
    clean(result, postgres_url)
    assert result.exit_code == 1 and "--dry-run works on a SQLite agent store" in result.output
    assert "Traceback" not in result.output and not (repo / "dry.jsonl").exists()
