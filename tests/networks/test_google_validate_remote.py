"""``convctl plan --validate-remote`` through the CLI against the strict Data Manager fake:
one validateOnly test event per changed Google Ads event, refusals as E601-E609 at the
event's manifest, exit 1, nothing saved or recorded, the token never printed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from clikit import run
from fakes.google_ads import FakeGoogleAds

TOKEN = "ya29.validate-remote-token"

MANIFEST = """\
apiVersion: convctl/v1
kind: Account
metadata: {name: initech}
spec:
  portalId: 7712345
  tier: professional
  leadSync: true
  defaultCountryCode: "1"
  forms:
    - {id: 0b8f6c9e-2c1a-4bd7-9e0b-6a1f1f9c2d10, name: Demo request}
  google:
    customerId: "1234567890"
    accessToken: {env: INITECH_GOOGLE_TOKEN}
---
apiVersion: convctl/v1
kind: ConversionEvent
metadata: {name: demo-request}
spec:
  account: initech
  network: google
  conversionAction: "987654321"
  trigger:
    formSubmission:
      formId: 0b8f6c9e-2c1a-4bd7-9e0b-6a1f1f9c2d10
      value: {amount: 50, currency: EUR}
      consent: {property: ads_consent, value: "yes"}
  dataSharing:
    properties: [email, phone, firstname, lastname, zip, country]
---
apiVersion: convctl/v1
kind: ConversionEvent
metadata: {name: customers}
spec:
  account: initech
  network: google
  conversionAction: "987654322"
  trigger:
    lifecycleStageChange:
      stages: [customer]
"""


@pytest.fixture
def google() -> Iterator[FakeGoogleAds]:
    with FakeGoogleAds(token=TOKEN) as fake:
        yield fake


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, google: FakeGoogleAds) -> Path:
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "initech.yaml").write_text(MANIFEST)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CONVCTL_STATE", f"sqlite:///{tmp_path}/state.db")
    monkeypatch.setenv("CONVCTL_GOOGLE_URL", google.base_url)
    monkeypatch.setenv("INITECH_GOOGLE_TOKEN", TOKEN)
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.delenv("CONVCTL_POLICIES", raising=False)
    return tmp_path


def test_google_takes_the_test_events_and_records_none(
        repo: Path, google: FakeGoogleAds, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CONVCTL_GOOGLE_URL")  # the option instead of the variable
    done = run("plan", "m", "--validate-remote", "--google-url", google.base_url,
               "--out", "plan.json")
    assert done.exit_code == 0, done.output
    assert "Google Ads validated 2 test event(s) (validateOnly, nothing recorded): 0 refused." \
        in done.stderr
    assert [(r.customer, r.validate_only, r.status) for r in google.requests] == [
        ("1234567890", True, 200)] * 2
    assert google.unique == set() and (repo / "plan.json").exists()
    form, lifecycle = (google.validated[0]["events"][0], google.validated[1]["events"][0])
    assert form["conversionValue"] == 50 and form["currency"] == "EUR"
    assert len(form["userData"]["userIdentifiers"]) == 3 and "adIdentifiers" not in form
    # the lifecycle event shares nothing: only a placeholder click id can identify it
    assert "userData" not in lifecycle and "gclid" in lifecycle["adIdentifiers"]


def test_without_the_option_google_is_not_asked(repo: Path, google: FakeGoogleAds) -> None:
    assert run("plan", "m").exit_code == 0
    assert google.requests == []


def test_only_events_the_plan_changes_are_validated(repo: Path, google: FakeGoogleAds) -> None:
    assert run("apply", "--path", "m", "--auto-approve").exit_code == 0
    (repo / "m" / "initech.yaml").write_text(MANIFEST.replace("amount: 50", "amount: 75"))
    done = run("plan", "m", "--validate-remote")
    assert done.exit_code == 0, done.output
    assert "validated 1 test event(s)" in done.stderr
    assert len(google.requests) == 1


def test_a_refused_token_is_e603_at_the_event_and_never_printed(
        repo: Path, google: FakeGoogleAds, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INITECH_GOOGLE_TOKEN", "ya29.expired-token-value")
    done = run("plan", "m", "--validate-remote", "--out", "plan.json")
    assert done.exit_code == 1
    assert "m/initech.yaml:21:21: error[E603]: Google Ads refused a test event of " \
        "initech/demo-request (conversion action 987654321 of customer 1234567890): " \
        "UNAUTHENTICATED" in done.stderr
    assert "expired-token-value" not in done.output and TOKEN not in done.output
    assert "the plan was not saved" in done.stderr and not (repo / "plan.json").exists()


@pytest.mark.parametrize(("setup", "code"), [
    ("actions", "E602"), ("customers", "E604"), ("503", "E606")])
def test_googles_refusals_get_their_own_codes(repo: Path, google: FakeGoogleAds, setup: str,
                                             code: str) -> None:
    if setup == "actions":
        google.actions = {"987654322"}  # demo-request's action does not exist
    elif setup == "customers":
        google.customers = {"9999999999"}
    else:
        google.fail_next("503", retry_after=3)
    done = run("plan", "m", "--validate-remote")
    assert done.exit_code == 1
    errors = [line for line in done.stderr.splitlines() if "error[" in line]
    assert errors and f"error[{code}]" in errors[0], done.stderr
    assert "initech/demo-request" in errors[0]


def test_an_unset_token_is_e605_at_the_account_and_nothing_is_sent(
        repo: Path, google: FakeGoogleAds, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("INITECH_GOOGLE_TOKEN")
    done = run("plan", "m", "--validate-remote")
    assert done.exit_code == 1
    assert "m/initech.yaml:12:5: error[E605]: cannot validate initech/demo-request with " \
        "Google Ads: the account's access token is unavailable (environment variable " \
        "INITECH_GOOGLE_TOKEN is not set or empty)" in done.stderr
    assert google.requests == []


def test_json_plans_stay_json_with_the_refusals_on_stderr(
        repo: Path, google: FakeGoogleAds) -> None:
    google.actions = set()
    done = run("plan", "m", "--format", "json", "--validate-remote")
    assert done.exit_code == 1
    assert {c["name"] for c in json.loads(done.stdout)["changes"]} >= {"demo-request",
                                                                     "customers"}
    assert done.stderr.count("error[E602]") == 2
