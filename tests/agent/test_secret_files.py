"""``file:`` token references are read only inside the operator's secrets folder (issue 10,
item 5): ``convctl agent run --secrets-dir DIR`` / ``CONVCTL_SECRETS_DIR``, symlinks resolved;
a refusal is one line naming the reference, never the file's content, and nothing is sent.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from agentio import GLOBEX_PIXEL, GLOBEX_PORTAL, MANIFESTS, contact_line, form_line, write_jsonl
from click.testing import CliRunner, Result
from fakes.graph import FakeGraph

from reconciler.cli.main import cli

GLOBEX_TOKEN = "globex-secret-files-token-SECRET"
CONTACT_SALES_FORM = "7c1d3e5f-9a2b-4c6d-8e0f-1a3b5c7d9e2f"


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The shipped manifests applied, globex's token in tmp/secrets, three globex forms queued."""
    shutil.copytree(MANIFESTS, tmp_path / "manifests")
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "globex_meta_token").write_text(GLOBEX_TOKEN + "\n")
    account = tmp_path / "manifests" / "globex" / "account.yaml"
    account.write_text(account.read_text().replace("/run/secrets", str(tmp_path / "secrets")))
    monkeypatch.chdir(tmp_path)
    for var in ("CONVCTL_AGENT_STORE", "CONVCTL_TEST_EVENT_CODE", "CONVCTL_HUBSPOT_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("ACME_META_TOKEN", "acme-token")
    monkeypatch.setenv("CONVCTL_SECRETS_DIR", str(tmp_path / "secrets"))
    monkeypatch.setenv("CONVCTL_STATE", f"sqlite:///{tmp_path / 'state.db'}")
    assert run("apply", "--auto-approve").exit_code == 0
    when = datetime.now(UTC) + timedelta(seconds=1)
    feed = [contact_line("g1", portal=GLOBEX_PORTAL, gdpr_ads_consent="true")]
    feed += [form_line(f"g-{i}", "g1", when, form=CONTACT_SALES_FORM, portal=GLOBEX_PORTAL)
             for i in range(3)]
    assert run("agent", "ingest", str(write_jsonl(tmp_path / "feed.jsonl", feed))).exit_code == 0
    return tmp_path


@pytest.fixture
def globex_graph() -> Iterator[FakeGraph]:
    with FakeGraph(tokens={GLOBEX_PIXEL: GLOBEX_TOKEN}) as fake:
        yield fake


def _agent_once(graph: FakeGraph, caplog: pytest.LogCaptureFixture, *extra: str) -> str:
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        result = run("agent", "run", "--once", "--meta-base-url", graph.base_url + "/", *extra)
    assert result.exit_code == 0, result.output
    return result.output + "\n".join(r.getMessage() for r in caplog.records)


def test_a_token_file_outside_the_folder_is_not_read(
        repo: Path, globex_graph: FakeGraph, caplog: pytest.LogCaptureFixture) -> None:
    (repo / "elsewhere").mkdir()
    text = _agent_once(globex_graph, caplog, "--secrets-dir", str(repo / "elsewhere"))
    assert not [r for r in globex_graph.requests if r.pixel_id == GLOBEX_PIXEL]
    # logged once per change of state (`agent status`, printed after --once, repeats the reason)
    refusals = [line for line in text.splitlines()
                if "refusing to read the secret" in line and " WARNING " in line]
    assert len(refusals) == 1
    assert f"file {repo / 'secrets' / 'globex_meta_token'}" in refusals[0]
    assert f"read only inside {repo / 'elsewhere'}" in refusals[0]
    assert GLOBEX_TOKEN not in text


def test_a_symlink_out_of_the_folder_is_resolved_and_refused(
        repo: Path, globex_graph: FakeGraph, caplog: pytest.LogCaptureFixture) -> None:
    token = repo / "secrets" / "globex_meta_token"
    (repo / "outside").mkdir()
    token.rename(repo / "outside" / "hostname")
    token.symlink_to(repo / "outside" / "hostname")
    text = _agent_once(globex_graph, caplog)
    assert not [r for r in globex_graph.requests if r.pixel_id == GLOBEX_PIXEL]
    assert "resolves (symlinks followed) outside the secrets folder" in text
    assert GLOBEX_TOKEN not in text


def test_inside_the_folder_the_token_is_read_and_sent(
        repo: Path, globex_graph: FakeGraph, caplog: pytest.LogCaptureFixture) -> None:
    inner = repo / "secrets" / "real"
    inner.mkdir()
    (repo / "secrets" / "globex_meta_token").rename(inner / "token")
    (repo / "secrets" / "globex_meta_token").symlink_to(inner / "token")  # inside: fine
    text = _agent_once(globex_graph, caplog)
    sent = [r for r in globex_graph.requests if r.pixel_id == GLOBEX_PIXEL]
    assert [(r.status, r.events) for r in sent] == [(200, 3)]
    assert GLOBEX_TOKEN not in text


def test_serve_and_agent_run_take_the_option() -> None:
    for command in (["agent", "run"], ["serve"]):
        result = run(*command, "--help")
        assert "--secrets-dir DIR" in result.output and "CONVCTL_SECRETS_DIR" in result.output
