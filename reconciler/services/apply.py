"""Executing an apply against a live-state backend: under the lock, plan or check, then steps.

``apply`` decides what to do while it holds the state lock: it takes the lock, reads the live
state, plans the manifests (or checks that a saved plan is still fresh: every live object it read
and the manifests unchanged), shows and confirms, then runs the steps and releases the lock. So
two applies never interleave, and an apply that succeeds leaves the state equal to its own
manifests. Each ``Change`` becomes one or more provider calls, in the plan's (quota-safe) order.
Every step is journaled; the first failure, or a lost lock, stops the run and the report says
what was done, what failed and what is pending. Re-running plan + apply converges: writes carry
the managed marker and the hash of what was applied, so a step that landed before a crash plans
as a no-op next time.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from reconciler.core.live import EventWrite, LiveEvent, content_hash
from reconciler.core.models import AccountSpec, EventSpec
from reconciler.core.plan import Action, Change, Plan
from reconciler.core.policy import Violation, blocking
from reconciler.core.provider import Provider
from reconciler.core.scope import Scope, in_scope
from reconciler.diagnostics import Diagnostics
from reconciler.errors import ConvctlError, LockedError, StalePlanError
from reconciler.render.common import summary_line
from reconciler.services.history import audit
from reconciler.services.locking import HeldLock, LockPolicy, Progress, hold_lock
from reconciler.services.planning import Loaded, manifests_hash, plan_loaded


@dataclass
class StepResult:
    index: int
    description: str
    status: str  # done | failed | pending
    detail: str = ""


@dataclass
class ApplyReport:
    """The steps of one run; ``stopped`` says why it stopped early when no step failed (a lost
    lock). Counts are kept as steps are added, so ``ok`` costs the same at any length."""

    run_id: str
    steps: list[StepResult] = field(default_factory=list)
    stopped: str = ""
    _counts: Counter[str] = field(default_factory=Counter, repr=False)

    def add(self, step: StepResult) -> None:
        self.steps.append(step)
        self._counts[step.status] += 1

    @property
    def ok(self) -> bool:
        return not self.stopped and self._counts["done"] == len(self.steps)

    def count(self, status: str) -> int:
        return self._counts[status]


@dataclass(frozen=True)
class SavedPlan:
    """A plan saved by ``convctl plan --out``, made from the manifests in ``paths``."""

    plan: Plan
    paths: list[str]
    scope: Scope = None  # the accounts it was planned for (``--account``), None: all


@dataclass(frozen=True)
class FromManifests:
    """Plan these (already loaded) manifests against the live state, under the lock."""

    loaded: Loaded
    prune_unmanaged: bool = False
    allow_mass_delete: bool = False


@dataclass
class ApplyOutcome:
    """What ``apply`` did: ``report`` is None when nothing was run (manifest errors, plan
    errors, no changes, or the user said no: ``cancelled``)."""

    plan: Plan | None
    diagnostics: Diagnostics = field(default_factory=Diagnostics)
    report: ApplyReport | None = None
    cancelled: bool = False
    violations: list[Violation] | None = None  # None: no policies were checked

    @property
    def refused(self) -> list[Violation]:
        """The violations of blocking policies: the plan was not applied."""
        return blocking(self.violations or [])


def live_fingerprints(provider: Provider,
                      scope: Scope = None) -> tuple[dict[str, str], dict[str, str]]:
    """Fingerprint of every live object (of the accounts in ``scope``), keyed like
    ``Plan.fingerprints``, and the readable name (``event acme/funnel (ev_...)``) of each key."""
    prints, names = {}, {}
    for acc in provider.list_accounts():
        if not in_scope(scope, acc.name):
            continue
        prints[f"account:{acc.name}"] = acc.fingerprint()
        names[f"account:{acc.name}"] = f"account {acc.name}"
    for ev in provider.list_events():
        if not in_scope(scope, ev.account):
            continue
        prints[f"event:{ev.id}"] = ev.fingerprint()
        names[f"event:{ev.id}"] = f"event {ev.account}/{ev.name} ({ev.id})"
    return prints, names


def check_fresh(plan: Plan, provider: Provider, manifests_hash: str | None,
                scope: Scope = None) -> None:
    """Refuse a saved plan when any live object it read (of its scope), or the manifests,
    changed since."""
    if manifests_hash is not None and manifests_hash != plan.manifests_hash:
        raise StalePlanError("the manifests changed since this plan was made; run "
                             "`convctl plan --out` again")
    now, names = live_fingerprints(provider, scope)
    for key in sorted(set(now) | set(plan.fingerprints)):
        old, new = plan.fingerprints.get(key), now.get(key)
        if old == new:
            continue
        what = "appeared" if old is None else "was deleted" if new is None else "changed"
        name = names.get(key, key.replace(":", " ", 1))
        raise StalePlanError(f"saved plan is stale: live {name} {what} since the plan was "
                             "made; nothing was applied. Run `convctl plan` again")


def _event_write(change: Change, name: str | None = None) -> EventWrite:
    after = change.after or {}
    doc = {"labels": after.get("labels", {}), "spec": after["spec"]}
    return EventWrite(account=change.account, name=name or change.name,
                      spec=EventSpec.model_validate(after["spec"]),
                      labels=dict(after.get("labels", {})), last_applied_hash=content_hash(doc))


def _steps(change: Change) -> list[tuple[str, Callable[[Provider], object]]]:
    """The provider calls one change needs, each with a description for progress/journal."""
    addr, action = change.address, change.action
    if change.kind == "account":
        after = change.after or {}
        spec = AccountSpec.model_validate(after["spec"])
        labels = dict(after.get("labels", {}))
        version = change.live_version if action is Action.UPDATE else None
        verb = "create" if action is Action.CREATE else "update"
        return [(f"{verb} {addr}", lambda p: p.put_account(change.account, spec, labels, version))]
    live_id, version = change.live_id or "", change.live_version
    if action is Action.CREATE:
        return [(f"create {addr}", lambda p: p.create_event(_event_write(change)))]
    if action is Action.UPDATE:
        return [(f"update {addr}",
                 lambda p: p.update_event(live_id, _event_write(change), version or 0))]
    if action is Action.DELETE:
        return [(f"delete {addr}", lambda p: p.delete_event(live_id, version))]
    if action is Action.DELETE_CREATE:
        return [(f"delete {addr} (replace, destroy first)",
                 lambda p: p.delete_event(live_id, version)),
                (f"create {addr} (replace)", lambda p: p.create_event(_event_write(change)))]
    if action is Action.CREATE_DELETE:
        # (account, name) is unique: park the old event under a name no manifest can use
        # ('.' is not allowed in names), create the new one, then delete the old.
        parked = f"{change.name}.replaced-{live_id}"
        old = change.before or {}
        park = EventWrite(account=change.account, name=parked,
                          spec=EventSpec.model_validate(old["spec"]),
                          labels=dict(old.get("labels", {})), last_applied_hash=None)
        return [(f"park {addr} as {parked} (replace, create first)",
                 lambda p: p.update_event(live_id, park, version or 0)),
                (f"create {addr} (replace)", lambda p: p.create_event(_event_write(change))),
                (f"delete old {addr}", lambda p: p.delete_event(live_id, None))]
    return []


def apply(provider: Provider, source: SavedPlan | FromManifests, *, holder: str,
          progress: Progress,
          show: Callable[[Plan, list[Violation] | None], None] | None = None,
          confirm: Callable[[Plan], bool] | None = None,
          policy: LockPolicy | None = None,
          check: Callable[[Plan], list[Violation]] | None = None) -> ApplyOutcome:
    """Take the lock, decide the plan under it (plan now, or refuse a stale saved plan with
    ``StalePlanError`` before any write), ``check`` it against the policies, ``show`` it, refuse
    it when a blocking policy is violated, ask ``confirm`` (still holding the lock), run its
    steps, release. Raises ``LockedError`` when the lock cannot be had in time."""
    scope = source.scope if isinstance(source, SavedPlan) else source.loaded.scope
    with hold_lock(provider, holder, "apply", policy or LockPolicy(), progress,
                   accounts=scope) as held:
        if isinstance(source, SavedPlan):
            check_fresh(source.plan, provider, manifests_hash(source.paths), source.scope)
            outcome = ApplyOutcome(source.plan)
        else:
            result = plan_loaded(source.loaded, provider, prune_unmanaged=source.prune_unmanaged,
                                 allow_mass_delete=source.allow_mass_delete)
            outcome = ApplyOutcome(result.plan, result.diagnostics)
        plan = outcome.plan
        if plan is None:
            return outcome
        if check is not None:
            outcome.violations = check(plan)
        if show is not None:
            show(plan, outcome.violations)
        if plan.errors or plan.is_empty or outcome.refused:
            return outcome
        if confirm is not None and not confirm(plan):
            outcome.cancelled = True
            return outcome
        outcome.report = _audited_run(plan, provider, held, progress, scope)
    return outcome


def _audited_run(plan: Plan, provider: Provider, held: HeldLock, progress: Progress,
                 scope: Scope) -> ApplyReport:
    """``run_steps`` between two audit records: ``started`` before the first step (so a crash
    leaves a record of the run), then the outcome."""
    run_id = uuid.uuid4().hex[:12]
    audit(provider, "apply", "started", accounts=scope, run_id=run_id, plan=plan,
          detail=f"{len(plan.changes)} change(s); {summary_line(plan)}")
    report = run_steps(plan, provider, held, progress=progress, run_id=run_id)
    result = "done" if report.ok else "stopped" if report.stopped else "failed"
    audit(provider, "apply", result, accounts=scope, run_id=run_id, plan=plan,
          detail=f"{report.count('done')} done, {report.count('failed')} failed, "
          f"{report.count('pending')} pending")
    return report


def apply_plan(plan: Plan, provider: Provider, *, progress: Progress, holder: str,
               policy: LockPolicy | None = None) -> ApplyReport:
    """Run ``plan`` as it is under the state lock (no freshness check: for callers that just
    planned it themselves, such as tests and benches); never raises for a failed step."""
    with hold_lock(provider, holder, "apply", policy or LockPolicy(), progress) as held:
        return run_steps(plan, provider, held, progress=progress)


def run_steps(plan: Plan, provider: Provider, held: HeldLock, *, progress: Progress,
              clock: Callable[[], float] = time.monotonic,
              run_id: str | None = None) -> ApplyReport:
    """The plan's steps in order, each after checking the lock still holds; never raises for a
    failed step (see the report)."""
    run_id = run_id or uuid.uuid4().hex[:12]
    steps = [step for change in plan.changes for step in _steps(change)]
    report = ApplyReport(run_id)
    for index, (description, call) in enumerate(steps, 1):
        if report.ok:
            try:
                held.ensure_held()
            except LockedError as exc:
                report.stopped = str(exc)
                progress(f"error: {exc}")
        if not report.ok:
            report.add(StepResult(index, description, "pending"))
            continue
        started = clock()
        try:
            call(provider)
        except ConvctlError as exc:
            step = StepResult(index, description, "failed", str(exc))
        else:
            step = StepResult(index, description, "done", f"{clock() - started:.2f}s")
        report.add(step)
        provider.record_step(run_id, index, description, step.status, step.detail)
        progress(f"[{index}/{len(steps)}] {description}: {step.status}"
                 + (f" ({step.detail})" if step.detail else ""))
    for step in report.steps:
        if step.status == "pending":
            provider.record_step(run_id, step.index, step.description, "pending")
    return report


def adopt_events(provider: Provider, events: list[LiveEvent]) -> int:
    """Mark unmanaged live events as managed, as applied now (``convctl import``): the manifests
    written for them then plan to no changes, and deleting one from git deletes it."""
    adopted = 0
    for ev in events:
        if ev.managed:
            continue
        write = EventWrite(account=ev.account, name=ev.name, spec=ev.spec, labels=ev.labels,
                           api=ev.api, last_applied_hash=ev.current_hash())
        provider.update_event(ev.id, write, ev.version)
        adopted += 1
    return adopted
