"""The three-network example (examples/networks/) through the CLI: validate, fmt, plan, show,
apply, events list/show and import, each naming a LinkedIn or Google Ads event's network and
target (R1)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from clikit import ROOT, run

EXAMPLE = ROOT / "examples" / "networks"


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    shutil.copytree(EXAMPLE, tmp_path / "manifests")
    monkeypatch.chdir(tmp_path)
    for var in ("CONVCTL_STATE", "CONVCTL_POLICIES"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_COLOR", "1")
    return tmp_path


def test_the_example_is_valid_and_formatted(repo: Path) -> None:
    res = run("validate", "manifests")
    assert res.exit_code == 0, res.output
    assert res.stdout.strip() == ("1 account, 5 events, 3/50 lifecycle-stage slots used: OK")
    assert run("fmt", "--check", "manifests").exit_code == 0


@pytest.mark.parametrize("fmt", ["text", "markdown", "json"])
def test_plan_and_show_name_the_network_and_target(repo: Path, fmt: str) -> None:
    planned = run("plan", "manifests", "--format", fmt, "--out", "plan.json")
    assert planned.exit_code == 0, planned.output
    assert run("show", "plan.json", "--format", fmt).stdout == planned.stdout
    if fmt == "json":
        changes = {c["name"]: c for c in json.loads(planned.stdout)["changes"]}
        assert changes["demo-request-linkedin"]["network"] == {
            "name": "linkedin", "target": "urn:lla:llaPartnerConversion:13374201"}
        assert changes["customers-google"]["network"] == {"name": "google",
                                                         "target": "987654322"}
        assert "network" not in changes["demo-request-meta"]  # Meta's shape is unchanged
        assert changes["demo-request-google"]["user_data"]["sends"] == [
            "em", "ph", "gclid", "gbraid", "wbraid"]
    else:
        assert "network: LinkedIn, conversionRule urn:lla:llaPartnerConversion:13374201" \
            in planned.stdout
        assert "network: Google Ads, conversionAction 987654322" in planned.stdout
        assert "sends to LinkedIn: em (hashed), fn, ln, li_fat_id\n" in planned.stdout
        assert "Quota initech: 0 -> 3 of 50" in planned.stdout  # every network's stages count


def test_events_list_and_show(repo: Path) -> None:
    assert run("apply", "--path", "manifests", "--auto-approve").exit_code == 0
    text = run("events", "list").stdout
    assert "form: 3f9a1c2e-7b4d-4e8f-a0b1-c2d3e4f5a6b7 -> linkedin " \
        "urn:lla:llaPartnerConversion:13374201" in text
    assert "stages: opportunity,customer -> google 987654322" in text
    meta_row = next(line for line in text.splitlines() if "demo-request-meta" in line)
    assert meta_row.rstrip().endswith("form: 3f9a1c2e-7b4d-4e8f-a0b1-c2d3e4f5a6b7")
    rows = {r["name"]: r for r in json.loads(run("events", "list", "--format", "json").stdout)
            ["events"]}
    assert (rows["customers-linkedin"]["network"], rows["customers-linkedin"]["target"]) == (
        "linkedin", "urn:lla:llaPartnerConversion:13374202")
    assert "network" not in rows["demo-request-meta"]
    shown = json.loads(run("events", "show", "initech/customers-google").stdout)
    assert shown["spec"]["network"] == "google" and shown["spec"]["conversionAction"] == \
        "987654322"
    assert shown["sends"]["userData"] == ["em", "ph", "gclid", "gbraid", "wbraid"]
    assert shown["sends"]["hashed"] == ["em", "ph"]


def test_import_gives_back_manifests_that_plan_no_change(repo: Path) -> None:
    assert run("apply", "--path", "manifests", "--auto-approve").exit_code == 0
    res = run("import", "--out", "imported")
    assert res.exit_code == 0, res.output
    text = "".join(p.read_text() for p in sorted((repo / "imported").rglob("*.yaml")))
    assert "network: linkedin" in text and "conversionRule: urn:lla:llaPartnerConversion:" in text
    assert "facebookEvent" not in text.split("demo-request-linkedin")[1].split("---")[0]
    assert run("validate", "imported").exit_code == 0
    again = run("plan", "imported", "--detailed-exitcode")
    assert again.exit_code == 0, again.output


MESSY_LINKEDIN = """\
kind: ConversionEvent
spec:
  trigger:
    lifecycleStageChange: {stages: [customer]}
  conversionRule: urn:lla:llaPartnerConversion:7001   # the rule
  network: linkedin
  account: initech
metadata: {name: won}
apiVersion: convctl/v1
---
spec:
  google:
    consent: {adPersonalization: denied, adUserData: granted}
    accessToken: {env: G}
    customerId: "4567890123"
  linkedin:
    version: "202611"
    accessToken: {env: L}
    adAccount: urn:li:sponsoredAccount:5
  tier: professional
  portalId: 1
kind: Account
metadata: {name: initech}
apiVersion: convctl/v1
"""


def test_fmt_puts_network_keys_in_the_models_order() -> None:
    """network and its target right after account; each block in its model's order."""
    from reconciler.adapters.fmt import format_text

    out = format_text(MESSY_LINKEDIN)
    event = out.split("---")[0]
    assert event.index("account:") < event.index("network:") < event.index("conversionRule:") \
        < event.index("trigger:")
    assert "conversionRule: urn:lla:llaPartnerConversion:7001   # the rule" in event
    account = out.split("---")[1]
    assert account.index("customerId:") < account.index("accessToken: {env: G}") \
        < account.index("consent:")
    assert account.index("adAccount:") < account.index("accessToken: {env: L}") \
        < account.index("version:")
    assert account.index("linkedin:") < account.index("google:")
    assert format_text(out) == out
