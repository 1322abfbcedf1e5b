"""Executing a plan against a live-state backend: lock, staleness check, ordered steps, journal.

Each ``Change`` becomes one or more provider calls, in the plan's (quota-safe) order. Every step
is journaled; the first failure stops the run and the report says what was done, what failed and
what is pending. Re-running plan + apply converges: writes carry the managed marker and the hash
of what was applied, so a step that landed before a crash plans as a no-op next time.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from reconciler.core.live import EventWrite, LiveEvent, content_hash
from reconciler.core.models import AccountSpec, EventSpec
from reconciler.core.plan import Action, Change, Plan
from reconciler.core.provider import Provider
from reconciler.errors import ConvctlError, StalePlanError

Progress = Callable[[str], None]
LOCK_TTL_SECONDS = 15 * 60


@dataclass
class StepResult:
    index: int
    description: str
    status: str  # done | failed | pending
    detail: str = ""


@dataclass
class ApplyReport:
    run_id: str
    steps: list[StepResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(s.status == "done" for s in self.steps)

    def count(self, status: str) -> int:
        return sum(1 for s in self.steps if s.status == status)


def live_fingerprints(provider: Provider) -> tuple[dict[str, str], dict[str, str]]:
    """Fingerprint of every live object, keyed like ``Plan.fingerprints``, and the readable
    name (``event acme/funnel (ev_...)``) of each key."""
    prints, names = {}, {}
    for acc in provider.list_accounts():
        prints[f"account:{acc.name}"] = acc.fingerprint()
        names[f"account:{acc.name}"] = f"account {acc.name}"
    for ev in provider.list_events():
        prints[f"event:{ev.id}"] = ev.fingerprint()
        names[f"event:{ev.id}"] = f"event {ev.account}/{ev.name} ({ev.id})"
    return prints, names


def check_fresh(plan: Plan, provider: Provider, manifests_hash: str | None) -> None:
    """Refuse a saved plan when any live object it read, or the manifests, changed since."""
    if manifests_hash is not None and manifests_hash != plan.manifests_hash:
        raise StalePlanError("the manifests changed since this plan was made; run "
                             "`convctl plan --out` again")
    now, names = live_fingerprints(provider)
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


def apply_plan(plan: Plan, provider: Provider, *, progress: Progress, holder: str,
               clock: Callable[[], float] = time.monotonic) -> ApplyReport:
    """Apply ``plan`` under the state lock; never raises for a failed step (see the report)."""
    run_id = uuid.uuid4().hex[:12]
    steps = [step for change in plan.changes for step in _steps(change)]
    report = ApplyReport(run_id)
    lock = provider.acquire_lock(holder, "apply", LOCK_TTL_SECONDS)
    try:
        for index, (description, call) in enumerate(steps, 1):
            if not report.ok:
                report.steps.append(StepResult(index, description, "pending"))
                continue
            started = clock()
            try:
                call(provider)
            except ConvctlError as exc:
                report.steps.append(StepResult(index, description, "failed", str(exc)))
            else:
                report.steps.append(StepResult(index, description, "done",
                                               f"{clock() - started:.2f}s"))
            step = report.steps[-1]
            provider.record_step(run_id, index, description, step.status, step.detail)
            progress(f"[{index}/{len(steps)}] {description}: {step.status}"
                     + (f" ({step.detail})" if step.detail else ""))
        for step in report.steps:
            if step.status == "pending":
                provider.record_step(run_id, step.index, step.description, "pending")
    finally:
        provider.release_lock(lock.id)
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
