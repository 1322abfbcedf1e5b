"""Test helpers for the planner: live objects built from manifests, and a pure simulator that
applies a ``Plan`` to lists of ``LiveAccount``/``LiveEvent`` the way a backend would."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

from reconciler.core.diff import stage_count_of
from reconciler.core.live import (
    MANAGER,
    LiveAccount,
    LiveEvent,
    content_hash,
    desired_hash,
    spec_document,
)
from reconciler.core.models import Account, AccountSpec, ConversionEvent, EventSpec
from reconciler.core.plan import Change, Plan
from reconciler.core.quota import limit_for
from reconciler.core.validate import ManifestSet

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def live_account(acc: Account, version: int = 1) -> LiveAccount:
    return LiveAccount(name=acc.name, spec=acc.spec, labels=dict(acc.metadata.labels),
                       version=version, updated_at=T0)


def live_event(ev: ConversionEvent, event_id: str, *, managed: bool = True,
               api: str = "enhanced", last_applied_hash: str | None = None,
               version: int = 1) -> LiveEvent:
    """The live twin of ``ev``; managed ones carry the hash of what was applied."""
    applied = last_applied_hash or (desired_hash(ev) if managed else None)
    return LiveEvent(id=event_id, account=ev.spec.account, name=ev.name, spec=ev.spec,
                     labels=dict(ev.metadata.labels), api=api, created_at=T0, updated_at=T0,
                     version=version, managed_by=MANAGER if managed else None,
                     last_applied_hash=applied)


def live_from(ms: ManifestSet) -> tuple[list[LiveAccount], list[LiveEvent]]:
    """A live state that matches ``ms`` exactly, every event managed."""
    accounts = [live_account(a.model) for a in ms.accounts]
    events = [live_event(e.model, f"ev-{i}") for i, e in enumerate(ms.events)]
    return accounts, events


def _written(change: Change, event_id: str, version: int, api: str) -> LiveEvent:
    after = change.after
    assert after is not None
    spec = EventSpec.model_validate(after["spec"])
    labels = dict(after["labels"])
    return LiveEvent(id=event_id, account=change.account, name=after["name"],
                     spec=spec, labels=labels, api=api, created_at=T0, updated_at=T0,
                     version=version, managed_by=MANAGER,
                     last_applied_hash=content_hash(spec_document(spec, labels)))


def apply_plan(plan: Plan, accounts: list[LiveAccount], events: list[LiveEvent],
               ) -> tuple[list[LiveAccount], list[LiveEvent]]:
    """What the live state becomes once every change of ``plan`` is applied in order."""
    accs = {a.name: a for a in accounts}
    evs = {e.id: e for e in events}
    for n, change in enumerate(plan.changes):
        if change.kind == "account":
            assert change.after is not None
            old = accs.get(change.name)
            accs[change.name] = LiveAccount(
                name=change.name, spec=AccountSpec.model_validate(change.after["spec"]),
                labels=dict(change.after["labels"]),
                version=old.version + 1 if old else 1, updated_at=T0)
            continue
        for verb in change.action.actions:
            if verb == "delete":
                assert change.live_id is not None
                del evs[change.live_id]
            elif verb == "create":
                new = _written(change, f"new-{n}", 1, "enhanced")
                evs[new.id] = new
            else:
                assert change.live_id is not None
                cur = evs[change.live_id]
                evs[cur.id] = _written(change, cur.id, cur.version + 1, cur.api)
    return list(accs.values()), list(evs.values())


def sub_steps(change: Change) -> list[int]:
    """Slot deltas of one change, in execution order (a replace has two)."""
    deltas = []
    for verb in change.action.actions:
        if verb == "create":
            deltas.append(stage_count_of(change.after))
        elif verb == "delete":
            deltas.append(-stage_count_of(change.before))
        elif verb == "update":
            deltas.append(stage_count_of(change.after) - stage_count_of(change.before))
    return deltas


def walk(plan: Plan, accounts: list[LiveAccount], events: list[LiveEvent],
         ) -> dict[str, list[tuple[int, int, int]]]:
    """Per account, ``(delta, used, limit in force)`` after each slot-changing step."""
    used: dict[str, int] = defaultdict(int)
    for e in events:
        used[e.account] += e.stage_count
    limit = {a.name: a.limit for a in accounts}
    out: dict[str, list[tuple[int, int, int]]] = defaultdict(list)
    for change in plan.changes:
        if change.kind == "account":
            assert change.after is not None
            limit[change.name] = limit_for(change.after["spec"]["tier"])
            continue
        for delta in sub_steps(change):
            used[change.account] += delta
            out[change.account].append((delta, used[change.account],
                                        limit.get(change.account, 0)))
    return out


def expected_json(plan: Plan) -> dict[str, Any]:
    """The golden form of a plan: its JSON without fingerprints (they hash timestamps)."""
    data = plan.to_json()
    data.pop("fingerprints")
    return data
