"""Apply: ordered steps under the lock, journal, failure report, convergence after any fault."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from reconciler.adapters.state.memory import MemoryProvider
from reconciler.core.live import EventWrite
from reconciler.core.plan import Action
from reconciler.errors import LockedError, StalePlanError, StateError
from reconciler.services.apply import apply_plan, check_fresh
from reconciler.services.planning import make_plan

ROOT = Path(__file__).resolve().parents[1]
MANIFESTS = ROOT / "manifests"


class FailingProvider:
    """Wraps a real provider and fails its ``fail_at``-th write (fault injection)."""

    WRITES = ("put_account", "create_event", "update_event", "delete_event")

    def __init__(self, inner: MemoryProvider, fail_at: int) -> None:
        self.inner, self.fail_at, self.writes = inner, fail_at, 0

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.inner, name)
        if name not in self.WRITES:
            return attr

        def write(*args: Any, **kwargs: Any) -> Any:
            self.writes += 1
            if self.writes == self.fail_at:
                raise StateError(f"injected fault at write {self.writes}")
            return attr(*args, **kwargs)

        return write


def _plan(provider: Any, paths: list[Path] | None = None, **kw: Any) -> Any:
    result = make_plan([str(p) for p in (paths or [MANIFESTS])], provider, **kw)
    assert result.plan is not None, [d.render() for d in result.diagnostics]
    return result.plan


def _apply(provider: Any, **kw: Any) -> Any:
    plan = _plan(provider, **kw)
    assert not plan.errors, plan.errors
    return apply_plan(plan, provider, progress=lambda _: None, holder="test")


def _snapshot(provider: MemoryProvider) -> list[tuple[str, str, Any]]:
    return sorted((e.account, e.name, e.spec.model_dump()) for e in provider.list_events())


def test_apply_creates_everything_and_replans_empty() -> None:
    provider = MemoryProvider()
    report = _apply(provider)
    assert report.ok and report.count("done") > 0
    assert {e.name for e in provider.list_events()} >= {"funnel", "demo-request", "pipeline"}
    assert _plan(provider).is_empty


def _count_writes(provider: MemoryProvider) -> int:
    counter = FailingProvider(provider, fail_at=0)
    plan = _plan(counter)
    apply_plan(plan, counter, progress=lambda _: None, holder="count")  # type: ignore[arg-type]
    return counter.writes


def test_a_fault_at_any_step_reports_and_a_rerun_converges() -> None:
    reference = MemoryProvider()
    total = _count_writes(reference)
    expected = _snapshot(reference)
    assert total >= 8
    for k in range(1, total + 1):
        inner = MemoryProvider()
        flaky = FailingProvider(inner, fail_at=k)
        lines: list[str] = []
        report = apply_plan(_plan(flaky), flaky, progress=lines.append,  # type: ignore[arg-type]
                            holder="ci")
        assert not report.ok
        assert report.count("done") == k - 1 and report.count("failed") == 1
        assert any("failed" in line and "injected fault" in line for line in lines)
        journal = [(j["index"], j["status"]) for j in inner.journal(report.run_id)]
        assert journal == [(s.index, s.status) for s in report.steps], "every step journaled"
        assert inner.current_lock() is None, "the lock is released after a failed apply"
        assert _apply(inner).ok
        assert _snapshot(inner) == expected, f"fault at write {k}: state did not converge"
        assert _plan(inner).is_empty


def test_second_apply_fails_at_once_naming_the_holder() -> None:
    provider = MemoryProvider()
    lock = provider.acquire_lock("alice@laptop", "apply", 600)
    with pytest.raises(LockedError) as err:
        _apply(provider)
    assert "alice@laptop" in str(err.value) and lock.id in str(err.value)
    assert provider.list_events() == []


def test_saved_plan_refused_when_a_live_object_changed() -> None:
    provider = MemoryProvider()
    _apply(provider)
    plan = _plan(provider)
    check_fresh(plan, provider, plan.manifests_hash)  # fresh: no error
    ev = next(e for e in provider.list_events() if e.name == "funnel")
    spec = ev.spec.model_copy(update={"enabled": False})
    provider.update_event(ev.id, EventWrite(account=ev.account, name=ev.name, spec=spec,
                                            labels=ev.labels, last_applied_hash=
                                            ev.last_applied_hash), ev.version)
    with pytest.raises(StalePlanError, match=f"event acme/funnel \\({ev.id}\\) changed"):
        check_fresh(plan, provider, plan.manifests_hash)
    with pytest.raises(StalePlanError, match="manifests changed"):
        check_fresh(plan, provider, "0" * 64)


def test_drift_is_planned_as_update_and_apply_heals_it() -> None:
    provider = MemoryProvider()
    _apply(provider)
    ev = next(e for e in provider.list_events() if e.name == "funnel")
    spec = ev.spec.model_copy(update={"enabled": False})
    provider.update_event(ev.id, EventWrite(account=ev.account, name=ev.name, spec=spec,
                                            labels=ev.labels,
                                            last_applied_hash=ev.last_applied_hash), ev.version)
    plan = _plan(provider)
    [change] = plan.changes
    assert change.action is Action.UPDATE and change.name == "funnel" and change.drift
    assert _apply(provider).ok
    assert _plan(provider).is_empty


def _pipeline_on_another_ad_account(tmp_path: Path) -> Path:
    """The shipped manifests with globex/pipeline moved to another ad account (an immutable
    field: a replace, created first)."""
    copy = tmp_path / "manifests"
    shutil.copytree(MANIFESTS, copy)
    events = copy / "globex" / "events.yaml"
    events.write_text(events.read_text().replace("adAccount: act_2233445566\n  trigger:\n"
                                                 "    lifecycleStageChange",
                                                 "adAccount: act_7788990011\n  trigger:\n"
                                                 "    lifecycleStageChange"))
    return copy


def test_replace_runs_create_first_with_headroom(tmp_path: Path) -> None:
    provider = MemoryProvider()
    _apply(provider)
    copy = _pipeline_on_another_ad_account(tmp_path)
    plan = _plan(provider, [copy])
    [change] = plan.changes
    assert change.action.is_replace and change.name == "pipeline"
    old_id = change.live_id
    report = apply_plan(plan, provider, progress=lambda _: None, holder="t")
    assert report.ok
    [new] = [e for e in provider.list_events() if e.name == "pipeline"]
    assert new.id != old_id and new.spec.ad_account == "act_7788990011"
    assert not [e for e in provider.list_events() if ".replaced-" in e.name]
    assert _plan(provider, [copy]).is_empty


def test_a_fault_inside_a_create_first_replace_converges_on_rerun(tmp_path: Path) -> None:
    """Each of the three writes of a create-before-delete replace (park the old event, create
    the new one, delete the old) fails in turn: the rerun leaves exactly the new event, no
    parked copy, and an empty plan."""
    copy = _pipeline_on_another_ad_account(tmp_path)
    for k in (1, 2, 3):
        inner = MemoryProvider()
        _apply(inner)
        flaky = FailingProvider(inner, fail_at=k)
        plan = _plan(flaky, [copy])
        [change] = plan.changes
        assert change.action is Action.CREATE_DELETE
        report = apply_plan(plan, flaky, progress=lambda _: None,  # type: ignore[arg-type]
                            holder="ci")
        assert report.count("failed") == 1 and report.count("done") == k - 1
        rerun = _plan(inner, [copy])
        assert not rerun.errors, rerun.errors
        assert apply_plan(rerun, inner, progress=lambda _: None, holder="ci").ok
        pipelines = [e for e in inner.list_events() if e.name.startswith("pipeline")]
        assert [(e.name, e.spec.ad_account) for e in pipelines] == [
            ("pipeline", "act_7788990011")], f"fault at write {k}"
        assert _plan(inner, [copy]).is_empty, f"fault at write {k}"


def test_a_tier_downgrade_that_adds_an_ad_account_goes_before_the_events_using_it(
        tmp_path: Path) -> None:
    """Every event write is checked against its account (issue 10 item 9, R1): an account
    change that lowers the tier but adds an ad account must run before the event that uses it
    (it used to run last, and the event was then refused with E202 on every rerun)."""
    account = """\
apiVersion: convctl/v1
kind: Account
metadata: {{name: acme}}
spec:
  portalId: 1
  tier: {tier}
  leadSync: true
  facebook: {{businessId: "1122334455", pixelId: "123456789012345", adAccounts: [{ads}],
             accessToken: {{env: T}}}}
"""
    event = """\
---
apiVersion: convctl/v1
kind: ConversionEvent
metadata: {{name: {name}}}
spec:
  account: acme
  adAccount: {ad}
  trigger: {{lifecycleStageChange: {{stages: [{stage}]}}}}
  dataSharing: {{properties: [email]}}
"""
    first = account.format(tier="enterprise", ads="act_1") + event.format(
        name="one", ad="act_1", stage="lead")
    second = account.format(tier="professional", ads="act_1, act_2") + event.format(
        name="one", ad="act_1", stage="lead") + event.format(name="two", ad="act_2",
                                                               stage="customer")
    provider = MemoryProvider()
    (tmp_path / "m.yaml").write_text(first)
    assert _apply(provider, paths=[tmp_path]).ok
    (tmp_path / "m.yaml").write_text(second)
    plan = _plan(provider, paths=[tmp_path])
    assert [c.kind for c in plan.changes] == ["account", "event"]
    assert apply_plan(plan, provider, progress=lambda _: None, holder="test").ok
    assert provider.list_accounts()[0].spec.tier == "professional"
    assert not _plan(provider, paths=[tmp_path]).changes


_NETWORKS_ACCOUNT = """\
apiVersion: convctl/v1
kind: Account
metadata: {{name: nets}}
spec:
  portalId: 2
  tier: professional
  forms: [{forms}]
  facebook: {{businessId: "1122334455", pixelId: "123456789012345", adAccounts: [act_1],
             accessToken: {{env: T}}}}
{linkedin}"""
_LINKEDIN_BLOCK = """\
  linkedin: {adAccount: "urn:li:sponsoredAccount:5123", accessToken: {env: L}}
"""
_FORM_A, _FORM_B = "3f9a1c2e-7b4d-4e8f-a0b1-c2d3e4f5a6b7", "4f9a1c2e-7b4d-4e8f-a0b1-c2d3e4f5a6b7"
_NETWORK_EVENT = """\
---
apiVersion: convctl/v1
kind: ConversionEvent
metadata: {{name: {name}}}
spec:
  account: nets
  {target}
  trigger: {{formSubmission: {{formId: {form}{meta}, consent: {{property: c, value: "y"}}}}}}
  dataSharing: {{properties: [email]}}
"""


def _nets(tmp_path: Path, linkedin: bool, forms: list[str], *events: tuple[str, str, str]
          ) -> Path:
    text = _NETWORKS_ACCOUNT.format(linkedin=_LINKEDIN_BLOCK if linkedin else "", forms=", ".join(
        f"{{id: {form}, name: F{i}}}" for i, form in enumerate(forms)))
    for rule, (name, network, form) in enumerate(events):
        target = (f"network: linkedin\n  conversionRule: urn:lla:llaPartnerConversion:{rule}"
                  if network == "linkedin" else "adAccount: act_1")
        text += _NETWORK_EVENT.format(name=name, target=target, form=form,
                                      meta=", facebookEvent: Lead" if network == "meta" else "")
    (tmp_path / "m.yaml").write_text(text)
    return tmp_path


@pytest.mark.parametrize("adds_a_form", [False, True])
def test_removing_a_network_block_and_its_events_deletes_the_events_first(
        tmp_path: Path, adds_a_form: bool) -> None:
    """The backends refuse an account update that strands live events of a network (E128, R1):
    a plan that removes the linkedin block and the LinkedIn events runs the delete and the
    replace of a LinkedIn event by a Meta one before the account update; when the update also
    adds a form, the replace of an event onto it and the create of one using it run after."""
    provider = MemoryProvider()
    first = _nets(tmp_path, True, [_FORM_A], ("li", "linkedin", _FORM_A),
                  ("moved", "linkedin", _FORM_A), ("reformed", "meta", _FORM_A))
    assert _apply(provider, paths=[first]).ok
    events = [("moved", "meta", _FORM_A),  # network is immutable: a replace
              ("reformed", "meta", _FORM_B if adds_a_form else _FORM_A)]  # formId too
    if adds_a_form:
        events.append(("new", "meta", _FORM_B))
    second = _nets(tmp_path, False, [_FORM_A, _FORM_B] if adds_a_form else [_FORM_A],
                   *events)
    plan = _plan(provider, paths=[second])
    expected = ([("event", "li"), ("event", "moved"), ("account", "nets"),
                 ("event", "reformed"), ("event", "new")]
                if adds_a_form else
                [("event", "li"), ("event", "moved"), ("account", "nets")])
    assert [(c.kind, c.name) for c in plan.changes] == expected
    result = apply_plan(plan, provider, progress=lambda _: None, holder="test")
    assert result.ok, [s.detail for s in result.steps]
    assert provider.list_accounts()[0].spec.linkedin is None
    assert sorted((e.name, e.spec.destination) for e in provider.list_events()) == sorted(
        (name, network) for name, network, _ in events)
    assert _plan(provider, paths=[second]).is_empty
