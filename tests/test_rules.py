"""Focused rule tests where one broken file is not enough: boundaries, acceptance, collection."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.adapters.manifests import discover, load
from reconciler.diagnostics import Diagnostics

STAGES = ("subscriber", "lead", "marketingqualifiedlead", "salesqualifiedlead", "opportunity",
          "customer", "evangelist")


def account(name: str = "acme", tier: str = "professional", portal: int = 4412345,
            extra: str = "") -> str:
    return f"""\
apiVersion: convctl/v1
kind: Account
metadata:
  name: {name}
spec:
  portalId: {portal}
  tier: {tier}
  leadSync: true
{extra}  forms:
    - {{id: f-1, name: Demo request}}
  facebook:
    businessId: "1122334455"
    pixelId: "123456789012345"
    adAccounts: [act_1234567890]
    accessToken: {{env: ACME_META_TOKEN}}
"""


def lifecycle(name: str, stages: list[str], acct: str = "acme") -> str:
    quoted = ", ".join(f'"{s}"' for s in stages)
    return f"""\
apiVersion: convctl/v1
kind: ConversionEvent
metadata:
  name: {name}
spec:
  account: {acct}
  adAccount: act_1234567890
  trigger:
    lifecycleStageChange:
      stages: [{quoted}]
"""


def form(name: str, extra: str = "", props: str = "[email]") -> str:
    return f"""\
apiVersion: convctl/v1
kind: ConversionEvent
metadata:
  name: {name}
spec:
  account: acme
  adAccount: act_1234567890
  trigger:
    formSubmission:
      formId: f-1
      facebookEvent: Lead
      consent: {{property: fb_consent, value: "yes"}}
{extra}  dataSharing:
    properties: {props}
"""


def write(folder: Path, name: str, *docs: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("---\n".join(docs), encoding="utf-8")
    return path


def events_using(slots: int, per_event: int = 5) -> list[str]:
    """Lifecycle events using exactly ``slots`` slots in total (R7)."""
    docs, i = [], 0
    while slots > 0:
        take = min(per_event, slots, len(STAGES))
        docs.append(lifecycle(f"ev-{i:03d}", list(STAGES[:take])))
        slots -= take
        i += 1
    return docs


def codes(diags: Diagnostics) -> list[str]:
    return [d.code for d in diags.sorted()]


# --- R9 / R7: quota -------------------------------------------------------------------------

@pytest.mark.parametrize(("tier", "limit"), [("professional", 50), ("enterprise", 100)])
def test_quota_exactly_at_the_limit_is_ok(tmp_path: Path, tier: str, limit: int) -> None:
    path = write(tmp_path, "m.yaml", account(tier=tier), *events_using(limit))
    manifests, diags = load([path])
    assert codes(diags) == []
    assert sum(e.model.stage_count for e in manifests.events) == limit


@pytest.mark.parametrize(("tier", "limit"), [("professional", 50), ("enterprise", 100)])
def test_quota_one_over_the_limit_fails_at_the_crossing_event(
        tmp_path: Path, tier: str, limit: int) -> None:
    docs = [account(tier=tier), *events_using(limit), lifecycle("one-more", ["lead"])]
    path = write(tmp_path, "m.yaml", *docs)
    _, diags = load([path])
    assert codes(diags) == ["E313"]
    (diag,) = diags.items
    assert diag.rule == "R9"
    assert f"would use {limit + 1} lifecycle-stage slots, limit {limit}" in diag.message
    assert f"from {limit} to {limit + 1}" in diag.message
    # The location is the stages list of the last event, the one that crosses the limit.
    stages_line = path.read_text().splitlines().index('      stages: ["lead"]') + 1
    assert (diag.location.line, diag.location.col) == (stages_line, 15)  # type: ignore[union-attr]


def test_quota_is_reported_once_per_account_with_the_total(tmp_path: Path) -> None:
    docs = [account(), *events_using(50), lifecycle("x1", ["lead"]), lifecycle("x2", ["lead"])]
    _, diags = load([write(tmp_path, "m.yaml", *docs)])
    assert codes(diags) == ["E313"]
    assert "would use 52 " in diags.items[0].message


def test_duplicate_stages_inside_one_event_count_once(tmp_path: Path) -> None:
    docs = [account(), *events_using(49), lifecycle("dup", ["lead", "lead", "lead"])]
    manifests, diags = load([write(tmp_path, "m.yaml", *docs)])
    assert codes(diags) == ["E306", "E306"]  # reported, but no E313: 49 + 1 = 50
    assert manifests.events[-1].model.stage_count == 1


def test_quota_is_per_account(tmp_path: Path) -> None:
    docs = [account(), account("globex", "professional", 9087321),
            *events_using(50), *(lifecycle(f"g-{i}", list(STAGES[:5]), "globex")
                                 for i in range(10))]
    _, diags = load([write(tmp_path, "m.yaml", *docs)])
    assert codes(diags) == []


def test_form_events_use_no_slots(tmp_path: Path) -> None:
    docs = [account(), *events_using(50), form("demo")]
    _, diags = load([write(tmp_path, "m.yaml", *docs)])
    assert codes(diags) == []


# --- R6: stages ------------------------------------------------------------------------------

def test_declared_custom_stage_is_accepted(tmp_path: Path) -> None:
    extra = '  customLifecycleStages:\n    - {id: "1452450030", label: Demo booked}\n'
    path = write(tmp_path, "m.yaml", account(extra=extra), lifecycle("booked", ["1452450030"]))
    manifests, diags = load([path])
    assert codes(diags) == []
    assert manifests.events[0].model.stage_count == 1


def test_custom_stage_of_another_account_is_refused(tmp_path: Path) -> None:
    extra = '  customLifecycleStages:\n    - {id: "1452450030", label: Demo booked}\n'
    docs = [account(extra=extra), account("globex", portal=2), lifecycle("x", ["1452450030"],
                                                                          "globex")]
    _, diags = load([write(tmp_path, "m.yaml", *docs)])
    assert codes(diags) == ["E305"]
    assert diags.items[0].rule == "R6"


def test_unknown_stage_suggests_the_close_one(tmp_path: Path) -> None:
    _, diags = load([write(tmp_path, "m.yaml", account(), lifecycle("x", ["custmer"]))])
    assert "did you mean 'customer'?" in diags.items[0].message


@pytest.mark.parametrize("stage", STAGES)
def test_every_standard_stage_is_accepted(tmp_path: Path, stage: str) -> None:
    _, diags = load([write(tmp_path, "m.yaml", account(), lifecycle("x", [stage]))])
    assert codes(diags) == []


# --- E101: unknown fields --------------------------------------------------------------------

@pytest.mark.parametrize(("typo", "suggestion"), [
    ("leadSynk", "leadSync"), ("teir", "tier"), ("portalID", "portalId"),
])
def test_unknown_field_suggestion(tmp_path: Path, typo: str, suggestion: str) -> None:
    text = account(extra=f"  {typo}: x\n")
    _, diags = load([write(tmp_path, "m.yaml", text)])
    assert [d.message for d in diags] == [
        f"unknown field '{typo}' at spec.{typo}; did you mean '{suggestion}'?"]


def test_suggestion_comes_from_the_fields_at_that_place(tmp_path: Path) -> None:
    # 'formId' is a field of formSubmission, not of an account spec: no self-suggestion.
    # 'labelz' in metadata means 'labels' (not CustomStage.label).
    text = account(extra="  formId: x\n").replace("  name: acme\n",
                                                   "  name: acme\n  labelz: {a: b}\n")
    _, diags = load([write(tmp_path, "m.yaml", text)])
    assert sorted(d.message for d in diags) == [
        "unknown field 'formId' at spec.formId",
        "unknown field 'labelz' at metadata.labelz; did you mean 'labels'?",
    ]


def test_no_suggestion_for_nonsense(tmp_path: Path) -> None:
    _, diags = load([write(tmp_path, "m.yaml", account(extra="  zzzzzz: 1\n"))])
    assert [d.message for d in diags] == ["unknown field 'zzzzzz' at spec.zzzzzz"]


def test_unknown_field_does_not_hide_rule_checks(tmp_path: Path) -> None:
    text = form("x", props="[crm_id]").replace("  account: acme\n",
                                                "  account: acme\n  enabeld: true\n")
    _, diags = load([write(tmp_path, "m.yaml", account(), text)])
    assert codes(diags) == ["E101", "W301", "E312"]


def test_a_broken_account_does_not_cascade_into_undeclared_references(tmp_path: Path) -> None:
    broken = account().replace("portalId: 4412345", "portalId: many")
    _, diags = load([write(tmp_path, "m.yaml", broken, form("x"))])
    assert codes(diags) == ["E103"]  # not also E201 'account acme is not declared'


def test_unquoted_number_for_a_string_says_to_quote(tmp_path: Path) -> None:
    text = account().replace('pixelId: "123456789012345"', "pixelId: 123456789012345")
    _, diags = load([write(tmp_path, "m.yaml", text)])
    assert codes(diags) == ["E103"]
    assert "quote the value" in diags.items[0].message


# --- all diagnostics of a run, files in a deterministic order ---------------------------------

def test_diagnostics_of_several_files_are_all_collected(tmp_path: Path) -> None:
    write(tmp_path, "a/account.yaml", account())
    write(tmp_path, "b/bad-name.yaml", form("Bad_Name"))
    write(tmp_path, "c/syntax.yaml", "a: [1, 2\n")
    write(tmp_path, "d/dupkey.yaml", "a: 1\na: 2\n")
    write(tmp_path, "e/no-consent.yaml", form("e").replace(
        '      consent: {property: fb_consent, value: "yes"}\n', ""))
    write(tmp_path, "f/other.yaml", lifecycle("f", ["other"]))
    _, diags = load([tmp_path])
    got = [(Path(d.location.file).parent.name, d.code) for d in diags.sorted()  # type: ignore[union-attr]
           ]
    assert got == [("b", "E106"), ("c", "E002"), ("d", "E003"), ("e", "E307"), ("f", "E304")]


def test_discovery_is_sorted_and_skips_hidden_entries(tmp_path: Path) -> None:
    for rel in ["z.yaml", "a.yml", "m/b.yaml", "m/a.yaml", ".hidden/x.yaml", ".x.yaml",
                "notes.txt", "B.yaml", "m/.git/c.yaml"]:
        write(tmp_path, rel, "")
    diags = Diagnostics()
    found = [p.relative_to(tmp_path).as_posix() for p in discover([tmp_path], diags)]
    assert found == ["B.yaml", "a.yml", "m/a.yaml", "m/b.yaml", "z.yaml"]
    assert list(diags) == []


def test_load_order_does_not_depend_on_creation_order(tmp_path: Path) -> None:
    write(tmp_path, "2-events.yaml", form("b"), form("a"))
    write(tmp_path, "1-account.yaml", account())
    manifests, diags = load([tmp_path])
    assert codes(diags) == []
    assert [e.model.name for e in manifests.events] == ["b", "a"]


def test_references_resolve_across_files(tmp_path: Path) -> None:
    write(tmp_path, "events.yaml", form("demo"))
    write(tmp_path, "zz/account.yaml", account())
    manifests, diags = load([tmp_path])
    assert codes(diags) == [] and len(manifests.events) == 1


def test_explicit_file_and_folder_arguments(tmp_path: Path) -> None:
    acc = write(tmp_path, "acc/account.yaml", account())
    write(tmp_path, "ev/e.yaml", form("demo"))
    manifests, diags = load([acc, tmp_path / "ev"])
    assert codes(diags) == [] and [e.model.name for e in manifests.events] == ["demo"]


def test_shipped_manifests_are_valid() -> None:
    root = Path(__file__).resolve().parents[1] / "manifests"
    manifests, diags = load([root])
    assert codes(diags) == []
    assert (len(manifests.accounts), len(manifests.events)) == (2, 7)
