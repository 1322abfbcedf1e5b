"""``convctl agent quality`` against the strict fake Graph API's Dataset Quality endpoint: Meta's
score, key feedback and diagnostics beside our coverage (text and JSON), the token sent as
the agent resolves it (in a header, never the URL), refusals as one line and exit 1; and the
fake itself is strict about token, dataset id and fields."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from agentio import ACME_PIXEL, MANIFESTS, contact_line, form_line, stage_line, write_jsonl
from click.testing import CliRunner, Result
from fakes.graph import FakeGraph

from reconciler.adapters.meta_quality import FIELDS
from reconciler.cli.main import cli

TOKEN = "acme-quality-token-SECRET"
LEAD = {"event_name": "Lead",
        "event_match_quality": {
            "composite_score": 6.2,
            "match_key_feedback": [{"identifier": "email", "coverage": {"percentage": 95}},
                                   {"identifier": "phone", "coverage": {"percentage": 88.5}},
                                   {"identifier": "ip_address", "coverage": {"percentage": 99}},
                                   {"identifier": "new_key", "coverage": {"percentage": 3}}],
            "diagnostics": [{"name": "Send more email addresses",
                             "description": "Some events have no email.",
                             "solution": "Share the email property.", "percentage": 12.5}]},
        "event_coverage": {"percentage": 80, "goal_percentage": 75},
        "data_freshness": {"upload_frequency": "real_time"}}


@pytest.fixture
def graph() -> Iterator[FakeGraph]:
    with FakeGraph(token=TOKEN, quality={ACME_PIXEL: [LEAD]}) as fake:
        yield fake


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, graph: FakeGraph) -> Path:
    shutil.copytree(MANIFESTS, tmp_path / "manifests")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CONVCTL_AGENT_STORE", raising=False)
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("ACME_META_TOKEN", TOKEN)
    monkeypatch.setenv("CONVCTL_META_BASE_URL", graph.base_url)
    monkeypatch.setenv("CONVCTL_STATE", f"sqlite:///{tmp_path / 'state.db'}")
    assert run("apply", "--auto-approve").exit_code == 0
    soon = datetime.now(UTC) + timedelta(seconds=1)
    feed = write_jsonl(tmp_path / "feed.jsonl", [
        contact_line("501"), contact_line("502", phone=""), form_line("s-1", "501", soon),
        form_line("s-2", "502", soon), stage_line("501", "customer", soon)])
    assert run("agent", "ingest", str(feed)).exit_code == 0
    assert run("agent", "run", "--once").exit_code == 0
    assert len(graph.unique) == 3
    return tmp_path


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_text_puts_meta_score_beside_our_coverage(repo: Path, graph: FakeGraph) -> None:
    result = run("agent", "quality", "--account", "acme")
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        f"acme (pixel {ACME_PIXEL}):\n"
        "  Lead: Meta's Event Match Quality 6.2/10; event coverage 80%\n"
        "    our events: acme/demo-request; 2 sent in 7 d\n"
        "    key                  Meta  ours (7 d)\n"
        "    em                    95%  100%\n"
        "    ph                  88.5%  50%\n"
        "    fn                      -  100%\n"
        "    ln                      -  100%\n"
        "    country                 -  100%\n"
        "    client_ip_address     99%  100%\n"
        "    client_user_agent       -  100%\n"
        "    new_key                3%  0%\n"
        "    diagnostic: Send more email addresses: Some events have no email. (12.5% of "
        "events) Fix: Share the email property.\n"
        "  NewsletterSignup: no score from Meta\n"  # our event Meta has no figures for
        "    our events: acme/newsletter-signup; 0 sent in 7 d\n"
        "  CRM events (Meta scores web events only): acme/demo-booked, acme/funnel\n")
    [request] = graph.quality_requests
    assert request == {"dataset_id": ACME_PIXEL, "fields": FIELDS}  # no token in the URL
    assert TOKEN not in result.output


def test_json_has_meta_and_ours_per_event_name(repo: Path) -> None:
    result = run("agent", "quality", "--account", "acme", "--format", "json")
    assert result.exit_code == 0, result.output
    [pixel] = json.loads(result.stdout)["accounts"]
    assert (pixel["account"], pixel["pixelId"], pixel["crmEvents"]) == (
        "acme", ACME_PIXEL, ["acme/demo-booked", "acme/funnel"])
    lead, newsletter = pixel["events"]
    assert (newsletter["eventName"], newsletter["meta"]) == ("NewsletterSignup", None)
    assert lead["meta"]["compositeScore"] == 6.2
    assert lead["meta"]["matchKeys"] == {"em": 95.0, "ph": 88.5, "client_ip_address": 99.0,
                                         "new_key": 3.0}
    assert lead["meta"]["diagnostics"][0]["percentage"] == 12.5
    assert lead["ours"]["events"] == ["acme/demo-request"] and lead["ours"]["sent"] == 2
    assert lead["ours"]["keys"]["ph"] == {"count": 1, "share": 0.5}


@pytest.mark.parametrize(("fault", "expected"), [
    ("190", "code 190/463: Error validating access token: the session has expired."),
    ("500", "HTTP 500, code 2"),
    ("drop", "could not be reached"),
])
def test_meta_refusals_are_one_line_and_exit_1(repo: Path, graph: FakeGraph, fault: str,
                                               expected: str) -> None:
    graph.fail_next(fault)
    result = run("agent", "quality", "--account", "acme")
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.startswith(f"error: pixel {ACME_PIXEL}: ")
    assert expected in result.stderr and len(result.stderr.splitlines()) == 1


def test_wrong_token_unknown_account_and_unreadable_token(repo: Path,
                                                          monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    monkeypatch.setenv("ACME_META_TOKEN", "wrong-token")
    result = run("agent", "quality", "--account", "acme")
    assert result.exit_code == 1 and "code 190/460" in result.stderr
    assert "wrong-token" not in result.output
    result = run("agent", "quality", "--account", "nope")
    assert result.exit_code == 1
    assert result.stderr == "error: --account nope: no such account in the live state\n"
    monkeypatch.setenv("ACME_META_TOKEN", TOKEN)
    result = run("agent", "quality")  # acme is fine; globex's token file does not exist here
    assert result.exit_code == 1
    assert result.stderr.startswith("error: account globex: the token from file ")
    assert "is unavailable" in result.stderr and result.stdout == ""


# -- the fake's Dataset Quality endpoint --------------------------------------------------------

def get(graph: FakeGraph, headers: dict[str, str] | None = None, **params: str) -> Any:
    response = httpx.get(f"{graph.base_url}/v25.0/dataset_quality", params=params,
                         headers=headers or {}, timeout=5)
    return response.status_code, response.json()


def test_the_fake_answers_only_the_fields_asked(graph: FakeGraph) -> None:
    status, body = get(graph, dataset_id=ACME_PIXEL, access_token=TOKEN,
                       fields="web{event_name,event_match_quality{composite_score}}")
    assert (status, body) == (200, {"web": [{"event_name": "Lead", "event_match_quality": {
        "composite_score": 6.2}}]})
    status, body = get(graph, {"Authorization": f"Bearer {TOKEN}"}, dataset_id=ACME_PIXEL,
                       fields=FIELDS)
    assert status == 200 and "data_freshness" not in body["web"][0]
    assert body["web"][0]["event_coverage"] == {"percentage": 80, "goal_percentage": 75}


@pytest.mark.parametrize(("params", "code", "text"), [
    ({"dataset_id": ACME_PIXEL, "fields": FIELDS}, 104, "access token is required"),
    ({"dataset_id": ACME_PIXEL, "fields": FIELDS, "access_token": "x"}, 190, "validating"),
    ({"dataset_id": "999", "fields": FIELDS, "access_token": TOKEN}, 100, "does not exist"),
    ({"fields": FIELDS, "access_token": TOKEN}, 100, "dataset_id is required"),
    ({"dataset_id": ACME_PIXEL, "access_token": TOKEN}, 100, "fields is required"),
    ({"dataset_id": ACME_PIXEL, "access_token": TOKEN, "fields": "event_name"}, 100, "web{"),
    ({"dataset_id": ACME_PIXEL, "access_token": TOKEN, "fields": "web{score}"}, 100,
     "nonexisting field (web.score)"),
    ({"dataset_id": ACME_PIXEL, "access_token": TOKEN, "fields": "web{event_name"}, 100,
     "not closed"),
])
def test_the_fake_refuses_bad_requests_with_graph_envelopes(graph: FakeGraph,
                                                            params: dict[str, str], code: int,
                                                            text: str) -> None:
    status, body = get(graph, **params)
    assert status == 400 and body["error"]["code"] == code
    assert text in body["error"]["error_user_msg"]
