"""Renderers: golden outputs per case (``UPDATE_GOLDEN=1`` rewrites them), colour, the PR-comment
size limit, JSON round-trip and redaction of anything token-shaped."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from reconciler.core.plan import (
    AccountQuota,
    Action,
    Change,
    FieldDiff,
    Plan,
    PlanMessage,
    Unmanaged,
)
from reconciler.render import render, render_json, render_markdown, render_text, summary_line

GOLDEN = Path(__file__).parent / "data" / "render"
FORM = "0b8f6c9e-2c1a-4bd7-9e0b-6a1f1f9c2d10"
STAGES = ["lead", "marketingqualifiedlead", "salesqualifiedlead", "customer"]


def form_doc(account: str = "acme", ad: str = "act_1234567890", form: str = FORM,
             enabled: bool = True) -> dict[str, Any]:
    return {"labels": {"team": "growth"}, "spec": {
        "account": account, "adAccount": ad, "enabled": enabled, "protect": False,
        "trigger": {"formSubmission": {
            "formId": form, "facebookEvent": "Lead",
            "consent": {"property": "fb_consent", "value": "yes"}}},
        "dataSharing": {"properties": ["email", "phone"], "ipAddress": True}}}


def funnel_doc(stages: list[str], account: str = "acme", enabled: bool = True) -> dict[str, Any]:
    return {"labels": {}, "spec": {
        "account": account, "adAccount": "act_1234567890", "enabled": enabled, "protect": False,
        "trigger": {"lifecycleStageChange": {"stages": stages, "contacts": "all"}},
        "dataSharing": {"properties": ["email"], "ipAddress": True}}}


def quota(before: int, after: int, peak: int, account: str = "acme",
          tier: str = "professional", limit: int = 50) -> AccountQuota:
    return AccountQuota(account, tier, limit, before, after, peak)


def ev(name: str, action: Action, account: str = "acme", **kw: Any) -> Change:
    return Change(kind="event", account=account, name=name, action=action, **kw)


def create_change() -> Change:
    return ev("new-funnel", Action.CREATE, reason="new in manifests", after=funnel_doc(STAGES),
              quota_delta=4)


def update_change() -> Change:
    before, after = funnel_doc(STAGES[:2]), funnel_doc(STAGES[:3])
    after["labels"] = {"owner": "growth"}
    del after["spec"]["dataSharing"]["properties"]
    return ev("funnel", Action.UPDATE, live_id="ev_11", live_version=3, quota_delta=1,
              before=before, after=after, diffs=(
                  FieldDiff("labels.owner", None, "growth"),
                  FieldDiff("spec.dataSharing.properties", ["email"], None),
                  FieldDiff("spec.trigger.lifecycleStageChange.stages", STAGES[:2], STAGES[:3]),
              ))


def delete_change(name: str = "old-funnel") -> Change:
    return ev(name, Action.DELETE, reason="not in manifests", before=funnel_doc(STAGES),
              live_id="ev_7", live_version=2, quota_delta=-4)


def replace_change(action: Action, reason: str) -> Change:
    before, after = form_doc(), form_doc(ad="act_999")
    return ev("demo-request", action, reason=reason, before=before, after=after,
              live_id="ev_3", live_version=5,
              diffs=(FieldDiff("spec.adAccount", "act_1234567890", "act_999", True),))


def summary_example() -> Plan:
    """The product.md example: 1 create, 1 update, 1 delete; quota 37 -> 41 of 50 (peak 41)."""
    return Plan(changes=(delete_change(), update_change(), create_change()),
                quotas=(quota(37, 41, 41),), fingerprints={"event:ev_11": "a" * 64})


def drift_change() -> Change:
    return ev("demo-request", Action.UPDATE, reason="drift: restore the manifest",
              before=form_doc(enabled=False), after=form_doc(), live_id="ev_3", live_version=6,
              diffs=(FieldDiff("spec.enabled", False, True),),
              drift=(FieldDiff("spec.enabled", False, True),))


def planned(case: str) -> Plan:
    """The plan of a planner golden case (tests/data/plans/CASE)."""
    from reconciler.adapters.manifests import load
    from reconciler.core.live import LiveAccount, LiveEvent
    from reconciler.core.planner import build_plan

    folder = Path(__file__).parent / "data" / "plans" / case
    desired, _ = load([folder / "desired.yaml"])
    live = json.loads((folder / "live.json").read_text())
    return build_plan(desired, [LiveAccount.model_validate(a) for a in live["accounts"]],
                      [LiveEvent.model_validate(e) for e in live["events"]])


CASES: dict[str, Callable[[], Plan]] = {
    "empty": lambda: Plan(quotas=(quota(37, 37, 37),)),
    "create": lambda: Plan(changes=(create_change(),), quotas=(quota(37, 41, 41),)),
    "update": lambda: Plan(changes=(update_change(),), quotas=(quota(37, 38, 38),)),
    "replace_destroy_first": lambda: Plan(changes=(replace_change(
        Action.DELETE_CREATE, "spec.adAccount cannot be updated; no quota headroom"),),
        quotas=(quota(50, 50, 50),)),
    "replace_create_first": lambda: Plan(changes=(replace_change(
        Action.CREATE_DELETE, "legacy event (R11): the enhanced API cannot update it"),),
        quotas=(quota(10, 10, 10),)),
    "delete": lambda: Plan(changes=(delete_change(),), quotas=(quota(37, 33, 37),)),
    "rename": lambda: Plan(changes=(ev(
        "demo-request", Action.UPDATE, renamed_from="demo", reason="metadata.renamedFrom: demo",
        before=form_doc(), after=form_doc(), live_id="ev_3"),), quotas=(quota(4, 4, 4),)),
    "drift": lambda: Plan(changes=(drift_change(),), quotas=(quota(4, 4, 4),)),
    "unmanaged": lambda: Plan(
        changes=(delete_change("pruned-one"),),
        unmanaged=(Unmanaged("acme", "hand-made", "ev_90", 4),
                   Unmanaged("acme", "pruned-one", "ev_7", 1)),
        quotas=(quota(45, 41, 45),)),
    "messages": lambda: Plan(
        changes=(create_change(),), quotas=(quota(48, 52, 52),),
        errors=(PlanMessage("E-QUOTA", "account acme would use 52 of 50 slots", "R9"),),
        warnings=(PlanMessage("W-WEBCONV", "syncWebConversions is false", "R17"),
                  PlanMessage("W-NOTE", "no rule attached"))),
    "summary_example": summary_example,
    "two_accounts": lambda: Plan(
        changes=(delete_change(), create_change(),
                 ev("signup", Action.CREATE, account="beta", after=funnel_doc(STAGES, "beta"),
                    quota_delta=4),
                 Change(kind="account", account="beta", name="beta", action=Action.UPDATE,
                        diffs=(FieldDiff("spec.tier", "professional", "enterprise"),),
                        before={"spec": {"tier": "professional"}},
                        after={"spec": {"tier": "enterprise"}})),
        quotas=(quota(0, 4, 4, "beta", "enterprise", 100), quota(37, 37, 37))),
    # LinkedIn and Google Ads events: their network and target drawn, Meta's as before
    "networks": lambda: planned("networks"),
}
EXT = {"text": "txt", "json": "json", "markdown": "md"}


@pytest.mark.parametrize("fmt", list(EXT))
@pytest.mark.parametrize("case", list(CASES))
def test_golden(case: str, fmt: str) -> None:
    out = render(CASES[case](), fmt)
    path = GOLDEN / f"{case}.{EXT[fmt]}"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(out, encoding="utf-8")
    assert out == path.read_text(encoding="utf-8")


def test_summary_line_formats() -> None:
    assert summary_line(summary_example()) == (
        "Plan: 1 to create, 1 to update, 0 to replace, 1 to delete. "
        "Quota acme: 37 -> 41 of 50 (peak 41).")
    assert summary_line(CASES["two_accounts"]()) == (
        "Plan: 2 to create, 0 to update, 0 to replace, 1 to delete. Accounts: 1 to update. "
        "Quota acme: 37 -> 37 of 50 (peak 37); Quota beta: 0 -> 4 of 100 (peak 4).")
    assert summary_line(CASES["empty"]()) == (
        "No changes. Live state matches the manifests. Quota acme: 37 -> 37 of 50 (peak 37).")
    assert summary_line(Plan()) == "No changes. Live state matches the manifests."
    assert render_text(summary_example()).splitlines()[-1] == summary_line(summary_example())


def test_colour_only_when_asked() -> None:
    plan = Plan(changes=(create_change(), update_change(), delete_change(),
                         replace_change(Action.DELETE_CREATE, "immutable")))
    assert "\x1b[" not in render_text(plan)
    coloured = render_text(plan, color=True)
    for code, sym in (("32", "+"), ("33", "~"), ("31", "-"), ("35", "-/+")):
        assert f"\x1b[{code}m{sym}\x1b[0m" in coloured
    assert "\x1b[" not in render_markdown(plan) + render_json(plan)


def test_no_cli_libraries_imported() -> None:
    code = ("import sys, reconciler.render; "
            "assert not {'click', 'rich'} & set(sys.modules), sorted(sys.modules)")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_markdown_fits_one_comment() -> None:
    changes = [ev(f"event-{i:04d}", Action.DELETE if i % 3 == 0 else Action.CREATE,
                  before=funnel_doc(STAGES) if i % 3 == 0 else None,
                  after=None if i % 3 == 0 else funnel_doc(STAGES), reason="bulk")
               for i in range(2000)]
    md = render_markdown(Plan(changes=tuple(changes), quotas=(quota(0, 0, 0),)))
    assert len(md) <= 65536
    assert md.startswith("<!-- convctl-plan -->\n### Plan: 1333 to create")
    assert re.search(r"… \d+ more changes not shown; run `convctl plan` locally for the full "
                     r"plan\.$", md)
    assert md.count("```") % 2 == 0
    assert md.count("<details>") == md.count("</details>") > 0
    shown = md.count("<details>")
    assert f"… {2000 - shown} more changes not shown" in md
    assert "⚠️ <b>" in md.split("<details>")[1]  # destructive first


def test_markdown_small_limit_never_cuts_a_block() -> None:
    plan = summary_example()
    full = render_markdown(plan)
    for limit in range(600, len(full), 97):
        md = render_markdown(plan, limit=limit)
        assert len(md) <= limit
        assert md.count("```") % 2 == 0 and md.count("<details>") == md.count("</details>")
        assert "locally for the full plan." in md
    assert render_markdown(plan, limit=len(full)) == full


@pytest.mark.parametrize("case", list(CASES))
def test_json_round_trips(case: str) -> None:
    plan = CASES[case]()
    out = render_json(plan)
    data = json.loads(out)
    assert Plan.from_json(data) == plan
    assert out == json.dumps(data, sort_keys=True, indent=2, ensure_ascii=False)
    assert data["summary"]["line"] == summary_line(plan)


def test_json_summary_and_actions() -> None:
    data = json.loads(render_json(CASES["replace_destroy_first"]()))
    zero = {"create": 0, "update": 0, "replace": 0, "delete": 0}
    assert data["summary"] == {**zero, "replace": 1, "accounts": zero, "total": 1,
                               "drifted": 0, "unmanaged": 0, "errors": 0, "warnings": 0,
                               "line": summary_line(CASES["replace_destroy_first"]())}
    assert data["changes"][0]["actions"] == ["delete", "create"]
    assert data["format_version"] == "1.0"


TOKEN = "EAA" + "Gm0PX4ZCpsBAKZBZCk1ZA7nZBZCZAcdEfGh1234567890abcdef"  # split: no literal token
SECRET = "hunter2-not-a-meta-token"


def leaky_plan() -> Plan:
    before = form_doc()
    before["spec"]["facebook"] = {"accessToken": SECRET, "pixelId": "123"}
    before["labels"] = {"note": f"copied {TOKEN} here"}
    after = form_doc()
    after["spec"]["facebook"] = {"accessToken": {"env": "ACME_META_TOKEN"}, "pixelId": "123"}
    after["spec"]["contact"] = {"email": "jane@example.com", "password": SECRET}
    change = ev("demo-request", Action.UPDATE, before=before, after=after,
                reason=f"token {TOKEN} seen",
                diffs=(FieldDiff("spec.facebook.accessToken", SECRET, {"env": "ACME_META_TOKEN"}),
                       FieldDiff("labels.note", f"copied {TOKEN} here", None)),
                drift=(FieldDiff("spec.facebook.accessToken", SECRET, "x"),))
    return Plan(changes=(change, ev("x", Action.CREATE, after=after)),
                warnings=(PlanMessage("W1", f"saw {TOKEN}"),),
                unmanaged=(Unmanaged("acme", "u", "ev_1", 0),))


@pytest.mark.parametrize("fmt", list(EXT))
def test_no_token_in_any_output(fmt: str) -> None:
    out = render(leaky_plan(), fmt, color=True)
    for leak in (TOKEN, SECRET, "jane@example.com", "EAAGm0PX4"):
        assert leak not in out
    assert "ACME_META_TOKEN" in out  # references stay visible
    assert "***redacted***" in out
    if fmt == "markdown":
        assert render_markdown(leaky_plan(), limit=700).count(TOKEN) == 0


def test_unknown_format() -> None:
    with pytest.raises(ValueError, match="unknown plan format"):
        render(Plan(), "yaml")


def test_markdown_table_counts_each_accounts_own_changes() -> None:
    """The table groups changes, unmanaged events and quotas by account (interleaved input)."""
    changes = tuple(ev(f"e{i}", Action.CREATE if i % 3 else Action.DELETE,
                       account=("acme", "globex", "initech")[i % 3], after=funnel_doc(["lead"]))
                    for i in range(9))
    plan = Plan(changes=changes, unmanaged=(Unmanaged("globex", "u1", "ev_1", 0),
                                            Unmanaged("globex", "u2", "ev_2", 0)),
                quotas=(quota(1, 2, 2, account="initech"), quota(0, 3, 3, account="acme")))
    rows = [line for line in render_markdown(plan).splitlines()
            if line.startswith("| ") and not line.startswith("| Account")]
    assert rows[:3] == ["| acme | 0 | 0 | 0 | 3 | 0 | 0 -> 3 / 50 | 3 |",
                        "| globex | 3 | 0 | 0 | 0 | 2 | n/a | n/a |",
                        "| initech | 3 | 0 | 0 | 0 | 0 | 1 -> 2 / 50 | 2 |"]
