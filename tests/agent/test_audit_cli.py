"""Audit of issue 5, items 2, 5 and 6 through ``convctl agent ...`` (click, in process):

- two accounts, two pixels: each pixel is sent its own events with the token of its own
  account's secret reference ({env: ...} for acme, {file: ...} for globex), in requests of at
  most 1,000 events, to the configured base URL and API version;
- ``--dry-run`` writes one ``{"pixelId", "body": {"data"}}`` line per request, per pixel,
  without any token and without raw contact data;
- ``--contacts hubspot`` reads the contacts from the HubSpot CRM API (a loopback fake), using
  the account's lead-id and ad-interaction property names, through 429s; when HubSpot keeps
  refusing, the inbox keeps the events and a later run delivers them.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from agentio import (
    ACME_PIXEL,
    GLOBEX_PIXEL,
    GLOBEX_PORTAL,
    MANIFESTS,
    contact_line,
    form_line,
    stage_line,
    write_jsonl,
)
from click.testing import CliRunner, Result
from fakes.graph import FakeGraph
from fakes.hubspot_crm import FakeHubSpotCrm

from reconciler.cli.main import cli

ACME_TOKEN = "acme-audit-token-SECRET"
GLOBEX_TOKEN = "globex-audit-token-SECRET"
HUBSPOT_TOKEN = "hubspot-audit-token-SECRET"
CONTACT_SALES_FORM = "7c1d3e5f-9a2b-4c6d-8e0f-1a3b5c7d9e2f"


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The shipped manifests, globex's token file moved into a temp secrets folder, applied."""
    shutil.copytree(MANIFESTS, tmp_path / "manifests")
    (tmp_path / "secrets").mkdir()
    token_file = tmp_path / "secrets" / "globex_meta_token"
    token_file.write_text(GLOBEX_TOKEN + "\n")
    monkeypatch.setenv("CONVCTL_SECRETS_DIR", str(tmp_path / "secrets"))
    account = tmp_path / "manifests" / "globex" / "account.yaml"
    account.write_text(account.read_text().replace("/run/secrets/globex_meta_token",
                                                   str(token_file)))
    monkeypatch.chdir(tmp_path)
    for var in ("CONVCTL_AGENT_STORE", "CONVCTL_TEST_EVENT_CODE", "CONVCTL_HUBSPOT_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("ACME_META_TOKEN", ACME_TOKEN)
    monkeypatch.setenv("CONVCTL_STATE", f"sqlite:///{tmp_path / 'state.db'}")
    applied = run("apply", "--auto-approve")
    assert applied.exit_code == 0, applied.output
    return tmp_path


@pytest.fixture
def graph() -> Iterator[FakeGraph]:
    with FakeGraph(tokens={ACME_PIXEL: ACME_TOKEN, GLOBEX_PIXEL: GLOBEX_TOKEN}) as fake:
        yield fake


def soon() -> datetime:
    return datetime.now(UTC) + timedelta(seconds=1)  # after the events' creation (R4)


def two_pixel_feed(repo: Path, acme_forms: int) -> Path:
    when = soon()
    lines: list[dict[str, Any]] = [
        contact_line("501"),
        contact_line("g1", portal=GLOBEX_PORTAL, gdpr_ads_consent="true", city="London",
                     zip="SW1A 1AA", email=" Globex.Person@Example.co.uk ")]
    lines += [form_line(f"a-{i}", "501", when) for i in range(acme_forms)]
    lines += [form_line(f"g-{i}", "g1", when, form=CONTACT_SALES_FORM, portal=GLOBEX_PORTAL)
              for i in range(3)]
    return write_jsonl(repo / "feed.jsonl", lines)


def test_each_pixel_gets_its_own_token_and_batches_of_at_most_1000(
        repo: Path, graph: FakeGraph) -> None:
    paths: list[str] = []
    handle = graph.handle

    def recording(path: str, body: bytes, content_type: str) -> Any:
        paths.append(path)
        return handle(path, body, content_type)

    graph.handle = recording  # type: ignore[method-assign]
    assert run("agent", "ingest", str(two_pixel_feed(repo, 1201))).exit_code == 0
    result = run("agent", "run", "--once", "--meta-base-url", graph.base_url + "/",
                 "--api-version", "v99.0")
    assert result.exit_code == 0, result.output
    sizes: dict[str, list[int]] = {}
    for request in graph.requests:
        assert request.status == 200, request
        sizes.setdefault(request.pixel_id, []).append(request.events)
    assert sorted(sizes[ACME_PIXEL]) == [201, 1000] and sizes[GLOBEX_PIXEL] == [3]
    assert {p.split("/")[1] for p in paths} == {"v99.0"}
    names = Counter(key[:2] for key in graph.unique)
    assert names == {(ACME_PIXEL, "Lead"): 1201, (GLOBEX_PIXEL, "Contact"): 3}
    globex = next(p for k, p in graph.payloads.items() if k[0] == GLOBEX_PIXEL)
    assert globex["custom_data"] == {"value": 120, "currency": "gbp"}
    status = run("agent", "status").stdout
    assert f"Pixel {ACME_PIXEL}: 0 queued, 1201 sent, 0 dead" in status
    assert f"Pixel {GLOBEX_PIXEL}: 0 queued, 3 sent, 0 dead" in status
    for text in (result.output, status):
        assert ACME_TOKEN not in text and GLOBEX_TOKEN not in text
        assert "@example" not in text.lower()


def test_dry_run_lines_per_pixel_hold_no_token_and_no_raw_contact_data(
        repo: Path, graph: FakeGraph, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONVCTL_TEST_EVENT_CODE", "TEST42")
    run("agent", "ingest", str(two_pixel_feed(repo, 2)))
    out = repo / "dry.jsonl"
    result = run("agent", "run", "--once", "--dry-run", str(out))
    assert result.exit_code == 0, result.output
    text = out.read_text()
    lines = [json.loads(x) for x in text.splitlines()]
    assert sorted((x["pixelId"], len(x["body"]["data"])) for x in lines) == [
        (ACME_PIXEL, 2), (GLOBEX_PIXEL, 3)]
    for line in lines:
        assert set(line) == {"pixelId", "body"}
        assert set(line["body"]) == {"data", "test_event_code"}
        assert line["body"]["test_event_code"] == "TEST42"
    for secret in (ACME_TOKEN, GLOBEX_TOKEN, "access_token", "appsecret"):
        assert secret not in text
    # raw values only: a short digit run such as "555" turns up inside SHA-256 digests by chance
    for raw in ("example.com", "example.co.uk", "valéry", "brien", "london", "sw1a", "555-12",
                "6505551"):
        assert raw not in text.lower(), raw
    assert not graph.requests


@pytest.fixture
def crm() -> Iterator[FakeHubSpotCrm]:
    contacts = {
        "801": {"email": "crm801@example.com", "meta_lead_id": "123456789012345",
                "meta_ad_interaction": "true"},
        "802": {"email": "crm802@example.com", "meta_ad_interaction": "false"},
    }
    with FakeHubSpotCrm(token=HUBSPOT_TOKEN, contacts=contacts) as fake:
        yield fake


def test_hubspot_contact_source_through_429s_and_an_outage(
        repo: Path, graph: FakeGraph, crm: FakeHubSpotCrm,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONVCTL_HUBSPOT_TOKEN", HUBSPOT_TOKEN)
    monkeypatch.setenv("CONVCTL_HUBSPOT_BASE_URL", crm.base_url)
    when = soon()
    run("agent", "ingest", str(write_jsonl(repo / "stages.jsonl", [
        stage_line("801", "customer", when), stage_line("801", "1452450030", when),
        stage_line("802", "customer", when)])))
    args = ("agent", "run", "--once", "--contacts", "hubspot", "--meta-base-url",
            graph.base_url)
    crm.rate_limit_next(5, retry_after=0)  # HubSpot refuses every try of this run
    first = run(*args)
    assert first.exit_code == 0, first.output
    assert not graph.unique
    assert "Inbox:  3 new, 0 processed" in run("agent", "status").stdout
    crm.rate_limit_next(2, retry_after=0)  # then recovers after two 429s
    second = run(*args)
    assert second.exit_code == 0, second.output
    assert sorted(k[1] for k in graph.unique) == ["Customer", "Demo booked"]
    props = set(crm.requests[0]["properties"])
    assert {"meta_lead_id", "meta_ad_interaction"} <= props
    status = json.loads(run("agent", "status", "--format", "json").stdout)
    assert status["inbox"] == {"new": 0, "processed": 3}
    assert status["skips"]["no_lead_id"] == 1
    for text in (first.output, second.output):
        assert HUBSPOT_TOKEN not in text and ACME_TOKEN not in text
        assert "crm80" not in text
