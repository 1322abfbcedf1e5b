"""The planner against golden cases (``tests/data/plans/<case>/``) and targeted examples.

Each case holds ``desired.yaml`` (manifests), ``live.json`` (``{"accounts": [...], "events":
[...]}`` in LiveAccount/LiveEvent JSON form), optional ``options.json`` (keyword options of
``build_plan``) and ``expected.json`` (the plan's JSON minus fingerprints).
``UPDATE_GOLDEN=1 pytest tests/test_planner.py`` rewrites the expected files.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pytest
from planner_sim import apply_plan, expected_json, live_account, live_event, live_from, walk

from reconciler.adapters.manifests import load
from reconciler.core.live import LiveAccount, LiveEvent, content_hash, desired_hash
from reconciler.core.models import Account, ConversionEvent
from reconciler.core.plan import Action, Plan
from reconciler.core.planner import build_plan
from reconciler.core.source import Located, SourceMap
from reconciler.core.validate import ManifestSet
from reconciler.core.vocabulary import STANDARD_STAGES

CASES = Path(__file__).parent / "data" / "plans"
CASE_NAMES = sorted(p.name for p in CASES.iterdir() if (p / "desired.yaml").exists())


def load_case(case: str) -> tuple[ManifestSet, list[LiveAccount], list[LiveEvent], dict[str, Any]]:
    folder = CASES / case
    desired, diags = load([folder / "desired.yaml"])
    assert not diags.errors, [str(d) for d in diags.errors]
    live = json.loads((folder / "live.json").read_text())
    accounts = [LiveAccount.model_validate(a) for a in live["accounts"]]
    events = [LiveEvent.model_validate(e) for e in live["events"]]
    options_file = folder / "options.json"
    options = json.loads(options_file.read_text()) if options_file.exists() else {}
    return desired, accounts, events, options


def plan_case(case: str) -> tuple[Plan, list[LiveAccount], list[LiveEvent], dict[str, Any]]:
    desired, accounts, events, options = load_case(case)
    return build_plan(desired, accounts, events, **options), accounts, events, options


@pytest.mark.parametrize("case", CASE_NAMES)
def test_golden(case: str) -> None:
    plan, accounts, events, _ = plan_case(case)
    got = expected_json(plan)
    expected_file = CASES / case / "expected.json"
    if os.environ.get("UPDATE_GOLDEN") == "1" or not expected_file.exists():
        expected_file.write_text(json.dumps(got, indent=2, ensure_ascii=False) + "\n")
    assert got == json.loads(expected_file.read_text())
    assert set(plan.fingerprints) == ({f"account:{a.name}" for a in accounts}
                                      | {f"event:{e.id}" for e in events})
    assert Plan.from_json(plan.to_json()) == plan


def test_fingerprints_are_each_live_objects_own_when_asked_for() -> None:
    """``Plan.fingerprints`` (filled when first used, so a text plan never hashes) is every live
    object's fingerprint, a remembered stored text's SHA-256 included, and survives a save."""
    desired, accounts, events, options = load_case("update-fields")
    text = events[0].model_dump_json()
    events[0].remember_source(text)
    plan = build_plan(desired, accounts, events, **options)
    assert dict(plan.fingerprints) == (
        {f"account:{a.name}": a.fingerprint() for a in accounts}
        | {f"event:{e.id}": e.fingerprint() for e in events})
    assert plan.fingerprints[f"event:{events[0].id}"] == hashlib.sha256(text.encode()).hexdigest()
    assert plan.fingerprints == Plan.from_json(plan.to_json()).fingerprints


def test_at_least_the_required_cases() -> None:
    assert {"create", "update-fields", "replace-formid", "legacy-r11", "delete", "unmanaged",
            "rename", "drift", "quota-overflow", "replace-no-headroom", "protected-delete",
            "mass-delete"} <= set(CASE_NAMES)


@pytest.mark.parametrize("case", CASE_NAMES)
def test_golden_converges(case: str) -> None:
    """Applying an error-free golden plan and planning again gives no changes."""
    plan, accounts, events, options = plan_case(case)
    if plan.errors:
        pytest.skip("plan has errors")
    desired = load_case(case)[0]
    after = apply_plan(plan, accounts, events)
    assert build_plan(desired, *after, **options).changes == ()


def changes(case: str) -> dict[str, Any]:
    return {f"{c.account}/{c.name}": c for c in plan_case(case)[0].changes}


def test_create_orders_account_first() -> None:
    plan = plan_case("create")[0]
    assert [(c.kind, c.name, c.action) for c in plan.changes] == [
        ("account", "acme", Action.CREATE), ("event", "demo-request", Action.CREATE),
        ("event", "funnel", Action.CREATE)]
    assert plan.quotas[0].after == 3 and plan.quotas[0].before == 0


def test_update_diffs_use_manifest_paths() -> None:
    change = changes("update-fields")["acme/funnel"]
    assert change.action is Action.UPDATE
    assert {d.path: (d.before, d.after) for d in change.diffs} == {
        "metadata.labels.team": ("sales", "growth"),
        "spec.trigger.lifecycleStageChange.stages": (
            ["lead", "customer"], ["lead", "marketingqualifiedlead", "customer"]),
        "spec.trigger.lifecycleStageChange.contacts": ("all", "adInteractions"),
    }
    assert change.quota_delta == 1 and change.live_version == 3
    assert "acme/demo-request" not in changes("update-fields")


def test_replace_on_form_id_marks_the_forcing_field() -> None:
    change = changes("replace-formid")["acme/demo-request"]
    assert change.action is Action.CREATE_DELETE
    forcing = [d.path for d in change.diffs if d.forces_replacement]
    assert forcing == ["spec.trigger.formSubmission.formId"]
    assert "formId cannot be changed in place" in (change.reason or "")
    assert "(R4)" in (change.reason or "")


def test_trigger_kind_change_is_a_replace() -> None:
    change = changes("replace-trigger-kind")["acme/demo-request"]
    assert change.action.is_replace and "trigger kind" in (change.reason or "")
    assert change.quota_delta == 1


def test_legacy_event_is_replaced_r11() -> None:
    plan = plan_case("legacy-r11")[0]
    (change,) = plan.changes
    assert change.action is Action.CREATE_DELETE and "R11" in (change.reason or "")
    assert change.diffs == ()
    assert [w.code for w in plan.warnings] == ["W401"]


def test_replace_without_headroom_deletes_first() -> None:
    plan, accounts, events, _ = plan_case("replace-no-headroom")
    (change,) = plan.changes
    assert change.action is Action.DELETE_CREATE
    assert "48 + 4 > 50" in (change.reason or "")
    assert not plan.errors
    assert all(used <= limit for steps in walk(plan, accounts, events).values()
               for _, used, limit in steps)


def test_unmanaged_reported_and_adopted() -> None:
    plan = plan_case("unmanaged")[0]
    assert [(u.name, u.stage_count) for u in plan.unmanaged] == [("by-hand-extra", 3)]
    (change,) = plan.changes
    assert change.name == "made-by-hand" and change.action is Action.UPDATE
    assert change.reason == "adopt unmanaged event" and change.diffs == ()


def test_prune_unmanaged_deletes_and_warns_live_only_account() -> None:
    plan = plan_case("unmanaged-pruned")[0]
    assert [(c.name, c.action) for c in plan.changes] == [("by-hand", Action.DELETE)]
    assert [w.code for w in plan.warnings] == ["W402"]


def test_rename_in_place() -> None:
    (change,) = plan_case("rename")[0].changes
    assert change.action is Action.UPDATE and change.renamed_from == "funnel"
    assert [(d.path, d.before, d.after) for d in change.diffs] == [
        ("metadata.name", "funnel", "lead-funnel")]
    assert change.live_id == "rename-1"


def test_drift_is_healed_with_drift_diffs() -> None:
    (change,) = plan_case("drift")[0].changes
    assert change.action is Action.UPDATE and "drift" in (change.reason or "")
    assert {d.path for d in change.drift} == {"spec.trigger.lifecycleStageChange.stages",
                                              "spec.trigger.lifecycleStageChange.contacts"}


def test_quota_overflow_is_an_error() -> None:
    plan = plan_case("quota-overflow")[0]
    (error,) = plan.errors
    assert error.code == "E313" and error.rule == "R9"
    assert "'acme'" in error.message and "50" in error.message and "53" in error.message
    assert "funnel (+4)" in error.message
    assert plan.quotas[0].peak == 53


def test_tier_upgrade_goes_first() -> None:
    plan = plan_case("tier-upgrade")[0]
    assert [c.kind for c in plan.changes] == ["account", "event"]
    assert not plan.errors and plan.quotas[0].limit == 100


def test_protected_delete_is_an_error() -> None:
    plan = plan_case("protected-delete")[0]
    assert [e.code for e in plan.errors] == ["E401"]
    assert "acme/funnel" in plan.errors[0].message
    assert "remove protect: true first" in plan.errors[0].message


def test_mass_delete_needs_the_flag() -> None:
    desired, accounts, events, _ = load_case("mass-delete")
    plan = build_plan(desired, accounts, events)
    assert [e.code for e in plan.errors] == ["E402"]
    message = plan.errors[0].message
    assert "2 of the 3" in message and "--allow-mass-delete" in message
    assert not build_plan(desired, accounts, events, allow_mass_delete=True).errors


def test_deleting_the_only_event_needs_the_flag() -> None:
    desired, accounts, events, _ = load_case("protected-delete")
    only = [e for e in events if e.name == "funnel"]
    plan = build_plan(ManifestSet(accounts=desired.accounts), accounts, only)
    assert {e.code for e in plan.errors} == {"E401", "E402"}


def test_protected_replace_is_an_error() -> None:
    desired, accounts, events, _ = load_case("replace-formid")
    protected = [e.model_copy(update={"spec": e.spec.model_copy(update={"protect": True})})
                 for e in events]
    plan = build_plan(desired, accounts, protected)
    assert [e.code for e in plan.errors] == ["E401"] and "replaced" in plan.errors[0].message


def test_equal_content_with_an_old_hash_is_a_noop() -> None:
    desired, _, _, _ = load_case("legacy-r11")
    accounts, events = live_from(desired)
    stale = [e.model_copy(update={"last_applied_hash": "f" * 64}) for e in events]
    assert build_plan(desired, accounts, stale).changes == ()


def test_rename_ignored_when_the_new_name_exists() -> None:
    desired, accounts, _, _ = load_case("rename")
    ev = desired.events[0].model
    old = ev.model_copy(update={"metadata": ev.metadata.model_copy(
        update={"name": "funnel", "renamed_from": None})})
    events = [live_event(ev, "a"), live_event(old, "b")]
    plan = build_plan(desired, accounts, events)
    assert [(c.name, c.action) for c in plan.changes] == [("funnel", Action.DELETE)]
    assert "W403" in {w.code for w in plan.warnings}


def test_manifests_hash_and_account_update() -> None:
    desired, _, _, _ = load_case("create")
    acc = desired.accounts[0].model
    live = live_account(acc.model_copy(update={"spec": acc.spec.model_copy(
        update={"lead_sync": False})}))
    plan = build_plan(ManifestSet(accounts=desired.accounts), [live], [],
                      manifests_hash="abc")
    (change,) = plan.changes
    assert change.kind == "account" and change.action is Action.UPDATE
    assert [(d.path, d.after) for d in change.diffs] == [("spec.leadSync", True)]
    assert plan.manifests_hash == "abc" and "ACME_META_TOKEN" in json.dumps(plan.to_json())


def lifecycle(name: str, stages: list[str], account: str = "acme") -> ConversionEvent:
    return ConversionEvent.model_validate({
        "apiVersion": "convctl/v1", "kind": "ConversionEvent", "metadata": {"name": name},
        "spec": {"account": account, "adAccount": "act_1234567890",
                 "trigger": {"lifecycleStageChange": {"stages": stages}}}})


def with_tier(acc: Account, tier: str) -> Account:
    return acc.model_copy(update={"spec": acc.spec.model_copy(update={"tier": tier})})


STANDARD = list(STANDARD_STAGES)


def test_frees_slots_before_taking_them() -> None:
    desired = load_case("create")[0]
    wanted = [lifecycle("a-new", STANDARD[:3]), lifecycle("c-shrink", STANDARD[:1])]
    live = [live_event(lifecycle("b-gone", STANDARD[:5]), "b"),
            live_event(lifecycle("c-shrink", STANDARD[:4]), "c"),
            live_event(lifecycle("d-keep", STANDARD[:2]), "d")]
    ms = ManifestSet(accounts=desired.accounts,
                     events=[Located(e, SourceMap("x")) for e in wanted])
    plan = build_plan(ms, [live_account(desired.accounts[0].model)], live,
                      allow_mass_delete=True)
    assert [(c.name, c.action.value) for c in plan.changes] == [
        ("b-gone", "delete"), ("c-shrink", "update"), ("d-keep", "delete"), ("a-new", "create")]
    assert (plan.quotas[0].before, plan.quotas[0].after, plan.quotas[0].peak) == (11, 4, 11)


def test_tier_lowering_goes_last_and_must_fit() -> None:
    desired, _, _, _ = load_case("create")
    acc = desired.accounts[0].model
    live_acc = live_account(with_tier(acc, "enterprise"))
    big = [live_event(lifecycle(f"e{i}", STANDARD), f"id{i}") for i in range(8)]  # 56 slots
    keep = [Located(lifecycle(f"e{i}", STANDARD), SourceMap("x")) for i in range(6)]  # 42
    plan = build_plan(ManifestSet(accounts=desired.accounts, events=keep), [live_acc], big)
    assert [c.kind for c in plan.changes] == ["event", "event", "account"]
    assert not plan.errors and plan.quotas[0].limit == 50
    keep_all = [Located(lifecycle(f"e{i}", STANDARD), SourceMap("x")) for i in range(8)]
    plan = build_plan(ManifestSet(accounts=desired.accounts, events=keep_all), [live_acc], big)
    assert [e.code for e in plan.errors] == ["E313"]


def test_already_over_the_limit_without_growth_is_a_warning() -> None:
    desired, _, _, _ = load_case("create")
    big = [live_event(lifecycle(f"e{i}", STANDARD), f"id{i}", managed=False) for i in range(8)]
    plan = build_plan(ManifestSet(accounts=desired.accounts),
                      [live_account(desired.accounts[0].model)], big)
    assert not plan.errors and [w.code for w in plan.warnings] == ["W404"]


def test_event_of_an_unknown_account_is_an_error() -> None:
    ms = ManifestSet(events=[Located(lifecycle("x", ["lead"], "ghost"), SourceMap("x"))])
    plan = build_plan(ms, [], [])
    assert [e.code for e in plan.errors] == ["E403"] and plan.quotas == ()


def test_after_document_hashes_like_the_manifest() -> None:
    """Apply stores ``content_hash({labels, spec} of after)``; it must equal ``desired_hash`` or
    every later plan would report drift."""
    desired = load_case("update-fields")[0]
    plan = build_plan(desired, [], [])
    by_name = {e.model.name: e.model for e in desired.events}
    for change in plan.changes:
        if change.kind == "event":
            assert change.after is not None
            doc = {"labels": change.after["labels"], "spec": change.after["spec"]}
            assert content_hash(doc) == desired_hash(by_name[change.name])


def test_live_event_fingerprint_changes_with_every_field() -> None:
    """A saved plan is refused when any field of a live object changed (issue 3 item 8)."""
    from datetime import UTC, datetime, timedelta

    from reconciler.core.live import LiveEvent
    from reconciler.core.models import EventSpec

    spec = EventSpec.model_validate({
        "account": "acme", "adAccount": "act_1", "trigger": {"formSubmission": {
            "formId": "f", "facebookEvent": "Lead", "consent": {"property": "c", "value": "y"}}}})
    now = datetime(2024, 1, 1, tzinfo=UTC)
    base = LiveEvent(id="ev_1", account="acme", name="demo", spec=spec, created_at=now,
                     updated_at=now, managed_by="convctl", last_applied_hash="h")
    edits = {"id": "ev_2", "account": "beta", "name": "other",
             "spec": spec.model_copy(update={"enabled": False}), "labels": {"a": "b"},
             "api": "legacy", "created_at": now + timedelta(seconds=1),
             "updated_at": now + timedelta(seconds=1), "version": 2, "managed_by": None,
             "last_applied_hash": "g"}
    assert set(edits) == set(LiveEvent.model_fields)
    for name, value in edits.items():
        assert base.model_copy(update={name: value}).fingerprint() != base.fingerprint(), name
