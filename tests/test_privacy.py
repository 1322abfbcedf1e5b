"""Issue 13, privacy: Limited Data Use (validated with positions, planned, shown) and what leaves
per event (``convctl events show`` and the plan list the user_data keys an event sends).

Runs the CLI in-process against a real SQLite file, like ``test_cli_plan_apply``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from clikit import run, shipped_repo
from test_rules import account, codes, form, write

from reconciler.adapters.manifests import load
from reconciler.core.live import spec_document
from reconciler.core.models import EventSpec


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return shipped_repo(tmp_path, monkeypatch)



def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))


# --- Limited Data Use: validation --------------------------------------------------------------

@pytest.mark.parametrize("options", [
    "{options: []}", "{options: [LDU]}", "{options: [LDU], country: 0, state: 0}",
    "{options: [LDU], country: 1, state: 1000}", "{options: [LDU], country: 1, state: 0}"])
def test_documented_options_validate(tmp_path: Path, options: str) -> None:
    acct = account(extra=f"  dataProcessingOptions: {options}\n")
    _, diags = load([write(tmp_path, "m.yaml", acct, form("f"))])
    assert codes(diags) == []


@pytest.mark.parametrize(("options", "needle", "at"), [
    ("{options: [XYZ]}", "options must be [] or [LDU]", "[XYZ]"),
    ("{options: [LDU, LDU]}", "options must be [] or [LDU]", "[LDU, LDU]"),
    ("{options: [LDU], country: 2, state: 1000}", "country must be 1 (United States)", "2,"),
    ("{options: [LDU], country: 1, state: 6}", "state must be 1000 (California)", "6}"),
    ("{options: [LDU], country: 1}", "state is missing", "{options"),
    ("{options: [], country: 1, state: 1000}", "country applies only with options [LDU]", "1,"),
    ("{options: [LDU], country: 0, state: 1000}", "country 0 (Meta geolocates) needs state 0",
     "1000}"),
])
def test_bad_options_are_one_positioned_e114(tmp_path: Path, options: str, needle: str,
                                             at: str) -> None:
    acct = account(extra=f"  dataProcessingOptions: {options}\n")
    path = write(tmp_path, "m.yaml", acct, form("f"))
    _, diags = load([path])
    assert set(codes(diags)) == {"E115"}, [d.render() for d in diags.items]
    (diag,) = [d for d in diags.items if needle in d.message]
    assert diag.message.startswith("dataProcessingOptions: ")
    assert diag.location is not None
    line = path.read_text().splitlines()[diag.location.line - 1]
    assert line.startswith("  dataProcessingOptions: ")
    assert line[diag.location.col - 1:].startswith(at)  # file:line:col of the offending value


def test_an_event_override_is_validated_at_its_own_position(tmp_path: Path) -> None:
    ev = form("f", extra="  dataProcessingOptions: {options: [LDU], country: 7, state: 0}\n")
    path = write(tmp_path, "m.yaml", account(), ev)
    _, diags = load([path])
    (diag,) = [d for d in diags.items if d.code == "E115"]
    assert diag.location is not None and diag.location.line > 20  # in the event document


def test_an_event_without_options_keeps_its_content_hash() -> None:
    """Adding the field must not make every applied event look changed outside convctl (R19)."""
    data = {"account": "a", "adAccount": "act_1", "trigger": {
        "lifecycleStageChange": {"stages": ["lead"]}}}
    spec = EventSpec.model_validate(data)
    assert "dataProcessingOptions" not in spec_document(spec, {})["spec"]
    with_ldu = EventSpec.model_validate({**data, "dataProcessingOptions": {"options": ["LDU"]}})
    dumped = spec_document(with_ldu, {})["spec"]["dataProcessingOptions"]
    assert dumped == {"options": ["LDU"], "country": None, "state": None}
    assert EventSpec.model_validate(with_ldu.model_dump(by_alias=True)) == with_ldu


def test_an_account_without_the_new_fields_keeps_its_document() -> None:
    """Saved plans compare account fingerprints: an upgrade must not make them all stale."""
    from reconciler.core.diff import account_document
    from reconciler.core.models import AccountSpec

    spec = AccountSpec.model_validate({"portalId": 1, "tier": "professional", "facebook": {
        "businessId": "1122334455", "pixelId": "123456789012345", "adAccounts": ["act_1"],
        "accessToken": {"env": "T"}}})
    dumped = account_document("a", spec, {})["spec"]
    assert "dateOrder" not in dumped and "dataProcessingOptions" not in dumped
    set_ = spec.model_copy(update={"date_order": "dmy"})
    assert account_document("a", set_, {})["spec"]["dateOrder"] == "dmy"


# --- planned and shown --------------------------------------------------------------------------

def test_ldu_and_new_user_data_show_in_the_plan(repo: Path) -> None:
    assert run("apply", "--auto-approve").exit_code == 0
    edit(repo / "manifests/acme/account.yaml", "  defaultCountryCode: \"1\"\n",
         "  defaultCountryCode: \"1\"\n  dataProcessingOptions: {options: [LDU], country: 1, "
         "state: 1000}\n")
    edit(repo / "manifests/acme/events.yaml",
         "properties: [email, phone, firstname, lastname, country]",
         "properties: [email, phone, firstname, lastname, country, gender]")
    res = run("plan")
    assert res.exit_code == 0, res.output
    assert "spec.dataProcessingOptions" in res.output and "1000" in res.output
    assert "starts sending: ge (hashed)" in res.output
    data = json.loads(run("plan", "--format", "json").output)
    changed = [c for c in data["changes"] if c.get("user_data", {}).get("starts")]
    assert [c["user_data"]["starts"] for c in changed] == [["ge"]]
    assert "ge" in changed[0]["user_data"]["hashed"]
    markdown = run("plan", "--format", "markdown").output
    assert "starts sending: ge (hashed)" in markdown


def test_events_show_lists_what_leaves(repo: Path) -> None:
    edit(repo / "manifests/acme/account.yaml", "  defaultCountryCode: \"1\"\n",
         "  defaultCountryCode: \"1\"\n  dataProcessingOptions: {options: [LDU], country: 0, "
         "state: 0}\n")
    assert run("apply", "--auto-approve").exit_code == 0
    shown = json.loads(run("events", "show", "acme/demo-request").output)
    sends = shown["sends"]
    assert sends["dataProcessingOptions"] == {"data_processing_options": ["LDU"],
                                              "data_processing_options_country": 0,
                                              "data_processing_options_state": 0}
    assert sends["userData"][:5] == ["em", "ph", "fn", "ln", "country"]  # as listed (R15)
    assert "client_user_agent" in sends["userData"] and "client_ip_address" in sends["userData"]
    assert sends["hashed"] == ["em", "ph", "fn", "ln", "country"]
    funnel = json.loads(run("events", "show", "acme/funnel").output)["sends"]["userData"]
    assert "lead_id" in funnel and "client_user_agent" not in funnel
