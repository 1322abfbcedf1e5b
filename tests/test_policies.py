"""Plan policies (Rego, docs/policies.md): the four shipped examples each pass and fail on a
crafted plan, violations in every format, advisory ones only warn, broken policies are one
positioned error with nothing planned or written, and apply's refusal of a violating plan.

Runs the CLI in-process against a real SQLite file, as tests/test_cli_plan_apply.py does.
"""

from __future__ import annotations

import json
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest
from click.testing import CliRunner
from clikit import run, shipped_repo
from hypothesis import given
from hypothesis import strategies as st

from reconciler.adapters.policy import PolicySet
from reconciler.cli.main import cli
from reconciler.core.policy import blocking
from reconciler.services.policies import check_policies, load_policies

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "policies"


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return shipped_repo(tmp_path, monkeypatch)



def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))


def violations(*extra: str) -> tuple[int, list[dict[str, object]]]:
    res = run("plan", "--format", "json", "--policies", str(EXAMPLES), *extra)
    return res.exit_code, json.loads(res.stdout)["policy_violations"]


def policies_of(found: list[dict[str, object]]) -> set[object]:
    return {v["policy"] for v in found}


def write_policy(repo: Path, name: str, text: str) -> Path:
    path = repo / "policies" / name
    path.parent.mkdir(exist_ok=True)
    path.write_text(text)
    return path


# --- the four examples, each passing and failing -----------------------------------------------

def test_the_shipped_manifests_pass_every_example(repo: Path) -> None:
    code, found = violations()
    assert (code, found) == (0, [])


def test_form_events_share_email(repo: Path) -> None:
    edit(repo / "manifests/acme/events.yaml",
         "properties: [email, phone, firstname, lastname, country]",
         "properties: [phone, firstname, lastname, country]")
    code, found = violations()
    assert code == 1
    assert [(v["policy"], v["advisory"]) for v in found] == [("convctl.form_email", False)]
    assert str(found[0]["message"]).startswith("event.acme/demo-request: a form event must share")
    # a property mapped to Meta's email key counts as sharing it
    edit(repo / "manifests/acme/events.yaml", "properties: [phone,",
         "properties: [{property: work_email, as: em}, phone,")
    assert violations() == (0, [])


def test_no_ip_address_for_accounts_labelled_region_eu(repo: Path) -> None:
    account = repo / "manifests/acme/account.yaml"
    edit(account, "labels: {owner: growth-ops}", "labels: {owner: growth-ops, region: us}")
    assert violations() == (0, [])
    edit(account, "region: us", "region: eu")
    code, found = violations()
    assert code == 1 and policies_of(found) == {"convctl.eu_no_ip"}
    addresses = {str(v["message"]).split(":")[0] for v in found}
    assert "event.acme/demo-request" in addresses  # ipAddress: true
    assert "event.acme/newsletter-signup" not in addresses  # ipAddress: false
    assert not any(a.startswith("event.globex/") for a in addresses)


def test_lifecycle_events_are_deleted_only_with_the_label_approved_by(repo: Path) -> None:
    assert run("apply", "--auto-approve").exit_code == 0
    events = repo / "manifests/acme/events.yaml"
    original = events.read_text()
    docs = original.split("---\n")
    funnel = next(d for d in docs if "name: funnel" in d)
    events.write_text("---\n".join(d for d in docs if d is not funnel))
    code, found = violations()
    assert code == 1 and policies_of(found) == {"convctl.lifecycle_delete_approved"}
    assert str(found[0]["message"]).startswith("event.acme/funnel: a lifecycle event is deleted")
    # label it approved-by in git, apply, then delete it: allowed
    events.write_text(original.replace("  name: funnel\n",
                                       "  name: funnel\n  labels: {approved-by: alice}\n"))
    assert run("apply", "--auto-approve").exit_code == 0
    events.write_text("---\n".join(d for d in docs if d is not funnel))
    assert violations() == (0, [])


def test_at_most_25_events_per_ad_account_is_advisory(repo: Path) -> None:
    events = repo / "manifests/globex/events.yaml"
    text = events.read_text()
    first = text.split("---\n")[0]
    extra = [first.replace("name: contact-sales", f"name: extra-{i}") for i in range(24)]
    events.write_text("---\n".join([text, *extra]))
    code, found = violations()
    assert code == 0  # advisory: the plan still passes
    assert [(v["policy"], v["advisory"], v["message"]) for v in found] == [
        ("convctl.max_events_per_ad_account", True,
         "ad account act_2233445566 would have 26 events, more than 25")]
    res = run("plan", "--detailed-exitcode", "--policies", str(EXAMPLES))
    assert res.exit_code == 2, res.output
    assert "Warning: policy [convctl.max_events_per_ad_account] ad account" in res.stdout
    events.write_text("---\n".join([text, *extra[:23]]))  # 25 on that ad account: the limit
    assert violations() == (0, [])


# --- outputs -----------------------------------------------------------------------------------

def test_violations_in_text_and_markdown_with_the_policy_name(repo: Path) -> None:
    edit(repo / "manifests/acme/account.yaml", "owner: growth-ops", "owner: x, region: eu")
    res = run("plan", "--policies", str(EXAMPLES))
    assert res.exit_code == 1
    assert "Error: policy [convctl.eu_no_ip] event.acme/demo-request: account acme" in res.stdout
    assert "apply refuses it" in res.stderr
    md = run("plan", "--format", "markdown", "--policies", str(EXAMPLES)).stdout
    assert "#### 🚫 Policy violations (apply refuses this plan)" in md
    assert "- `convctl.eu_no_ip`: event.acme/demo-request: account acme" in md


def test_no_policies_folder_means_no_policy_key_and_the_old_output(repo: Path) -> None:
    plain = run("plan", "--format", "json")
    assert plain.exit_code == 0 and "policy_violations" not in json.loads(plain.stdout)
    (repo / "policies").mkdir()  # the default folder, empty: checked, nothing to report
    assert json.loads(run("plan", "--format", "json").stdout)["policy_violations"] == []


def test_the_default_folder_the_env_and_no_policies(repo: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    write_policy(repo, "all.rego", 'package team.all\nimport rego.v1\n'
                 'deny contains "no plan passes" if { input.summary }\n')
    res = run("plan")
    assert res.exit_code == 1 and "Error: policy [team.all] no plan passes" in res.stdout
    assert run("plan", "--no-policies").exit_code == 0
    monkeypatch.setenv("CONVCTL_POLICIES", str(EXAMPLES))
    assert run("plan").exit_code == 0  # the env folder replaces the default one
    missing = run("plan", "--policies", "nowhere")
    assert missing.exit_code == 1
    assert missing.stderr.strip() == (
        "error: nowhere: error[E504]: no such policies folder (--policies / CONVCTL_POLICIES)")


def test_a_blocking_violation_saves_no_plan_an_advisory_one_does(repo: Path) -> None:
    path = write_policy(repo, "p.rego", 'package p\nimport rego.v1\n'
                        'deny contains "refused" if { count(input.changes) > 0 }\n')
    refused = run("plan", "--out", "plan.json")
    assert refused.exit_code == 1 and not (repo / "plan.json").exists()
    assert refused.stderr.splitlines()[-2:] == [
        "Policies (policies): 1 checked, 1 violation(s), 0 advisory.",
        "error: the plan violates 1 policy rule(s) (listed above); apply refuses it until they "
        "pass; the plan was not saved"]
    path.write_text(path.read_text().replace("deny contains", "warn contains"))
    res = run("plan", "--out", "plan.json", "--detailed-exitcode")
    assert res.exit_code == 2 and (repo / "plan.json").exists()
    assert "Warning: policy [p] refused (advisory)" in res.stdout


def test_package_metadata_marks_a_policy_advisory(repo: Path) -> None:
    write_policy(repo, "a.rego", "# METADATA\n# title: Soft\n# custom:\n#   advisory: true\n"
                 'package soft\nimport rego.v1\ndeny contains "careful" if { input.changes }\n')
    code, found = violations("--policies", "policies")
    assert code == 0 and found == [{"policy": "soft", "message": "careful", "advisory": True,
                                    "file": "policies/a.rego"}]


def test_conftest_style_policies_keep_working(repo: Path) -> None:
    """The old (pre-1.0) syntax ``deny[msg] { ... }`` and ``{"msg": ...}`` results."""
    write_policy(repo, "old.rego", 'package main\n\ndeny[msg] {\n  input.summary.create > 0\n'
                 '  msg := "creates need a review"\n}\n')
    write_policy(repo, "obj.rego", 'package obj\nimport rego.v1\n'
                 'violation contains {"msg": "object form", "details": {}} if { true }\n')
    code, found = violations("--policies", "policies")
    assert code == 1
    assert {(v["policy"], v["message"]) for v in found} == {
        ("main", "creates need a review"), ("obj", "object form")}


# --- broken policies: one positioned error, nothing planned or written ---------------------------

@pytest.mark.parametrize(("source", "expected"), [
    ("package x\n\ndeny contains msg if {\n  msg := \n}\n",
     "policies/bad.rego:4:7: error[E501]: policy does not compile: Invalid assignment operator"),
    ("package x\nimport rego.v1\ndeny contains msg if {\n  msg := nofunc(1)\n}\n",
     "policies/bad.rego:4:10: error[E502]: policy x does not evaluate: Function not found: "
     "nofunc"),
    ("# METADATA\n# title: [unclosed\npackage x\n",
     "policies/bad.rego:2:"),
    ("deny contains 1 if { true }\n",
     "policies/bad.rego:1:1: error[E503]: no `package NAME` line"),
])
def test_a_broken_policy_is_one_positioned_error(repo: Path, source: str, expected: str) -> None:
    write_policy(repo, "bad.rego", source)
    res = run("plan", "--out", "plan.json")
    assert res.exit_code == 1
    lines = res.stderr.splitlines()
    assert lines[0].startswith(expected), res.stderr
    assert lines[-1] == "error: the policies have 1 error(s); nothing was planned"
    assert res.stdout == "" and "Traceback" not in res.output
    assert not (repo / "plan.json").exists() and not (repo / ".convctl").exists()


def test_every_broken_file_is_reported_at_once(repo: Path) -> None:
    write_policy(repo, "a.rego", "package a\n\ndeny contains msg if {\n  msg := \n}\n")
    write_policy(repo, "b.rego", "package b\nimport rego.v1\n\ndeny contains x if {\n")
    write_policy(repo, "ok.rego", "package ok\nimport rego.v1\ndeny contains 1 if { false }\n")
    res = run("validate")
    assert res.exit_code == 1
    found = [line.split(": error[")[0].split(":")[0] for line in res.stderr.splitlines()
             if "error[E501]" in line]
    assert sorted(set(found)) == ["policies/a.rego", "policies/b.rego"], res.stderr


def test_a_policy_failing_over_the_plan_refuses_it(repo: Path) -> None:
    """Built-in errors are strict: a sprintf given a number fails instead of passing."""
    write_policy(repo, "rt.rego", 'package rt\nimport rego.v1\n'
                 'deny contains msg if { some c in input.changes; msg := sprintf("%s", c.name) }\n')
    res = run("plan", "--out", "plan.json")
    assert res.exit_code == 1 and not (repo / "plan.json").exists()
    assert res.stderr.strip().startswith(
        "error: policies/rt.rego: error[E505]: policy rt could not be evaluated over the plan")


# --- the service apply calls ---------------------------------------------------------------------

def test_check_policies_over_a_crafted_plan_document() -> None:
    policies, diags = load_policies(str(EXAMPLES))
    assert not diags.items
    assert sorted(p.name for p in policies.policies) == [
        "convctl.eu_no_ip", "convctl.form_email", "convctl.lifecycle_delete_approved",
        "convctl.max_events_per_ad_account"]
    assert [p.advisory for p in policies.policies if p.name.startswith("convctl.max")] == [True]
    event = {"name": "e", "labels": {}, "spec": {"account": "a", "adAccount": "act_1",
                                                 "dataSharing": {"properties": [],
                                                                 "ipAddress": False},
                                                 "trigger": {"formSubmission": {"formId": "f"}}}}
    doc = {"changes": [{"address": "event.a/e", "kind": "event", "account": "a", "name": "e",
                        "actions": ["create"], "before": None, "after": event}],
           "desired": {"accounts": {"a": {"labels": {}}}, "events": [event] * 26}}
    found = check_policies(doc, policies)
    assert [(v.policy, v.advisory) for v in found] == [
        ("convctl.form_email", False), ("convctl.max_events_per_ad_account", True)]
    assert blocking(found) == [found[0]]
    assert found[1].message == "ad account act_1 would have 26 events, more than 25"


def test_apply_refuses_a_policy_that_does_not_compile_before_the_lock(repo: Path) -> None:
    write_policy(repo, "x.rego", "package gate\ndeny contains msg if {\n")
    res = CliRunner().invoke(cli, ["apply", "--auto-approve"])
    assert res.exit_code == 1 and "policies/x.rego:" in res.stderr and "E501" in res.stderr
    assert not (repo / ".convctl").exists()  # the state was never opened


def test_help_does_not_import_the_policy_engine() -> None:
    code = ("import sys; from reconciler.cli.main import cli\n"
            "try:\n    cli(['plan', '--help'])\nexcept SystemExit:\n    pass\n"
            "assert not [m for m in sys.modules if m.startswith(('regopy', 'reconciler.adapters"
            ".policy'))], 'imported'")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr


def test_validate_compiles_the_policies_too(repo: Path) -> None:
    assert run("validate").exit_code == 0
    write_policy(repo, "bad.rego", "package x\n\ndeny contains msg if {\n  msg := \n}\n")
    res = run("validate")
    assert res.exit_code == 1
    assert "policies/bad.rego:4:7: error[E501]: policy does not compile" in res.stderr
    as_json = json.loads(run("validate", "--format", "json").stdout)
    assert [(d["code"], d["file"], d["line"], d["col"]) for d in as_json] == [
        ("E501", "policies/bad.rego", 4, 7)]
    assert run("validate", "--policies", str(EXAMPLES)).exit_code == 0


@cache
def _examples() -> PolicySet:
    return load_policies(str(EXAMPLES))[0]


@given(st.lists(st.sampled_from(["act_1", "act_2", "act_3"]), max_size=60))
def test_the_advisory_limit_fires_exactly_above_25_events(ad_accounts: list[str]) -> None:
    policies = _examples()
    events = [{"name": f"e{i}", "labels": {}, "spec": {"adAccount": ad}}
              for i, ad in enumerate(ad_accounts)]
    doc = {"changes": [], "desired": {"accounts": {}, "events": events}}
    found = check_policies(doc, policies)
    over = {ad for ad in ad_accounts if ad_accounts.count(ad) > 25}
    assert {v.message.split()[2] for v in found} == over
    assert all(v.advisory and v.policy == "convctl.max_events_per_ad_account" for v in found)


# --- apply: the plan decided under the lock is checked too -------------------------------------


def test_apply_refuses_a_violating_plan_and_changes_nothing(repo: Path) -> None:
    write_policy(repo, "r.rego", 'package review\nimport rego.v1\n'
                 'deny contains "needs a review" if { count(input.changes) > 0 }\n')
    assert run("plan", "--no-policies", "--out", "plan.json").exit_code == 0
    for args in (["apply", "--auto-approve"], ["apply", "plan.json"]):
        res = run(*args)
        assert res.exit_code == 1 and "[review] needs a review" in res.output, args
    res = run("plan", "--no-policies", "--detailed-exitcode")
    assert res.exit_code == 2 and "7 to create" in res.stdout  # nothing was applied


def test_apply_goes_ahead_when_only_advisory_policies_are_violated(repo: Path) -> None:
    write_policy(repo, "w.rego", 'package soft\nimport rego.v1\n'
                 'warn contains "careful" if { count(input.changes) > 0 }\n'
                 'deny contains "never" if { false }\n')
    res = run("apply", "--auto-approve")
    assert res.exit_code == 0 and "Apply complete" in res.stdout
    assert "Warning: policy [soft] careful (advisory)" in res.stdout


def test_policies_see_the_desired_state_of_the_scoped_accounts_only(repo: Path) -> None:
    write_policy(repo, "g.rego", 'package noglobex\nimport rego.v1\n'
                 'deny contains "globex is frozen" if { input.desired.accounts.globex }\n')
    assert run("plan").exit_code == 1  # unscoped: globex is desired, the policy refuses
    for args in (["plan", "--account", "acme"], ["apply", "--auto-approve", "--account", "acme"]):
        res = run(*args)
        assert res.exit_code == 0 and "globex is frozen" not in res.output, (args, res.output)
