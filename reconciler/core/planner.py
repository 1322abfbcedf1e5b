"""The planner: desired state + live state -> an ordered, quota-safe ``Plan`` (product.md §3).

Pure: no I/O, no clock, no environment. Events are paired by ``ResourceKey(account, name)``
(architecture rule 3), or by ``metadata.renamedFrom`` for an in-place rename. Each pair or
lone side is classified (create, update, replace, delete, adopt, unmanaged, no-op); then each
account's changes are ordered so that no step exceeds its tier limit (R7, R9, ``ordering``),
and guards (``protect``, mass deletion) turn into plan errors. Reasons explain decisions; they
never drive them (architecture rule 2).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from operator import attrgetter

from reconciler.core.diff import (
    account_document,
    document_diffs,
    event_document,
    immutable_changes,
    mark_forcing,
)
from reconciler.core.live import LiveAccount, LiveEvent
from reconciler.core.models import Account, ConversionEvent, ResourceKey
from reconciler.core.ordering import AccountWalk, Step, walk_account
from reconciler.core.plan import AccountQuota, Action, Change, Plan, PlanMessage, Unmanaged
from reconciler.core.quota import limit_for
from reconciler.core.validate import ManifestSet

R4_NOTE = "replacing resets createdAt, so earlier submissions/stage changes will not count (R4)"
R11_NOTE = ("legacy event (offline event set, event name 'Other'): replaced by an event using "
            "the enhanced Conversions API (R11)")
DRIFT_NOTE = "changed outside convctl (drift)"


@dataclass
class _Draft:
    """What the classification found, before ordering."""

    steps: list[Step] = field(default_factory=list)
    unmanaged: list[Unmanaged] = field(default_factory=list)
    warnings: list[PlanMessage] = field(default_factory=list)
    errors: list[PlanMessage] = field(default_factory=list)


def build_plan(desired: ManifestSet, live_accounts: list[LiveAccount],
               live_events: list[LiveEvent], *, prune_unmanaged: bool = False,
               allow_mass_delete: bool = False, manifests_hash: str = "") -> Plan:
    """Plan the changes that make ``live_*`` match ``desired``; see the module docstring."""
    accounts = _first_by_name(a.model for a in desired.accounts)
    live_acc = {a.name: a for a in sorted(live_accounts, key=lambda a: a.name)}
    live_sorted = sorted(live_events, key=attrgetter("account", "name", "id"))
    draft = _Draft()
    _plan_accounts(accounts, live_acc, draft)
    _plan_events([e.model for e in desired.events], live_sorted, prune_unmanaged, draft)
    changes, quotas = _order(draft, accounts, live_acc, live_sorted)
    errors = [*draft.errors, *_protect_errors(changes)]
    if not allow_mass_delete:
        errors.extend(_mass_delete_errors(changes, live_sorted))
    return Plan(changes=changes, quotas=quotas, unmanaged=tuple(draft.unmanaged),
                errors=tuple(errors), warnings=tuple(draft.warnings + _replace_warnings(changes)),
                fingerprints=_Fingerprints(list(live_acc.values()), live_sorted),
                manifests_hash=manifests_hash)


class _Fingerprints(Mapping[str, str]):
    """``Plan.fingerprints`` of the live objects a plan read (``account:<name>``,
    ``event:<id>``), computed when first used: by a saved or JSON plan and by apply, never by
    a plan printed as text."""

    def __init__(self, accounts: list[LiveAccount], events: list[LiveEvent]) -> None:
        self._live: tuple[list[LiveAccount], list[LiveEvent]] | None = (accounts, events)
        self._prints: dict[str, str] = {}

    def _all(self) -> dict[str, str]:
        if self._live is not None:
            accounts, events = self._live
            self._prints = {f"account:{a.name}": a.fingerprint() for a in accounts}
            self._prints.update({f"event:{e.id}": e.fingerprint() for e in events})
            self._live = None
        return self._prints

    def __getitem__(self, key: str) -> str:
        return self._all()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())


def _first_by_name(accounts: Iterable[Account]) -> dict[str, Account]:
    out: dict[str, Account] = {}
    for acc in sorted(accounts, key=lambda a: a.name):
        out.setdefault(acc.name, acc)
    return out


# ---- accounts ---------------------------------------------------------------------------------

def _plan_accounts(accounts: dict[str, Account], live: dict[str, LiveAccount],
                   draft: _Draft) -> None:
    for name, acc in accounts.items():
        after = account_document(name, acc.spec, acc.metadata.labels)
        limit = limit_for(acc.spec.tier)
        current = live.get(name)
        if current is None:
            change = Change("account", name, name, Action.CREATE, "declared, not live yet",
                            after=after)
            draft.steps.append(Step(change, limit_after=limit))
            continue
        before = account_document(name, current.spec, current.labels)
        diffs = document_diffs(before, after)
        if diffs:
            reason = "account settings changed"
            if current.limit != limit:
                reason += f"; tier limit {current.limit} -> {limit} (R9)"
            change = Change("account", name, name, Action.UPDATE, reason, tuple(diffs), before,
                            after, live_version=current.version)
            draft.steps.append(Step(change, limit_after=limit))
    for name in live:
        if name not in accounts:
            draft.warnings.append(PlanMessage(
                "W402", f"account '{name}' is live but declared in no manifest; accounts are "
                "never deleted by plan"))


# ---- events -----------------------------------------------------------------------------------

def _plan_events(desired: Sequence[ConversionEvent], live: list[LiveEvent], prune: bool,
                 draft: _Draft) -> None:
    pairs, leftover = _pair(desired, live, draft)
    for ev, current in pairs:
        step = _pair_step(ev, current)
        if step is not None:
            draft.steps.append(step)
    for current in leftover:
        if not current.managed:
            draft.unmanaged.append(Unmanaged(current.account, current.name, current.id,
                                             current.stage_count))
        if current.managed or prune:
            reason = ("declared in no manifest" if current.managed
                      else "unmanaged, deleted because of --prune-unmanaged")
            draft.steps.append(_delete_step(current, reason))


def _pair(desired: Sequence[ConversionEvent], live: list[LiveEvent], draft: _Draft,
          ) -> tuple[list[tuple[ConversionEvent, LiveEvent | None]], list[LiveEvent]]:
    """Pair by key, then by ``renamedFrom``; return the pairs and the unpaired live events.
    Keys are plain ``(account, name)`` tuples here (equal to ``ResourceKey``s, built once
    each: a large plan pairs thousands)."""
    by_key: dict[tuple[str, str], LiveEvent] = {}
    for event in live:
        by_key.setdefault((event.account, event.name), event)
    first: dict[tuple[str, str], ConversionEvent] = {}
    for ev in desired:  # the first of a key wins (rules report the others: E205)
        first.setdefault((ev.spec.account, ev.metadata.name), ev)
    wanted = {key: first[key] for key in sorted(first)}
    claimed = {id(by_key[k]) for k in wanted if k in by_key}
    pairs: list[tuple[ConversionEvent, LiveEvent | None]] = []
    for key, ev in wanted.items():
        found = by_key.get(key)
        old = ev.metadata.renamed_from
        source = by_key.get((key[0], old)) if old else None
        if source is None or (key[0], old) in wanted:
            pass
        elif found is None and id(source) not in claimed:
            found = source
            claimed.add(id(source))
        elif found is not None:
            draft.warnings.append(PlanMessage(
                "W403", f"event '{ResourceKey(*key)}': renamedFrom '{old}' ignored "
                f"because '{ev.name}' already exists; '{old}' is planned on its own"))
        pairs.append((ev, found))
    return pairs, [e for e in live if id(e) not in claimed]


def _unchanged(ev: ConversionEvent, current: LiveEvent) -> bool:
    """The cheap no-op test (model equality, no serialization): most events of a plan. A
    plan's listing may hand an unchanged live event the desired spec itself
    (``provider.SharesSpecs``)."""
    return (current.managed and current.api != "legacy" and current.name == ev.name
            and (current.spec is ev.spec or current.spec == ev.spec)
            and current.labels == ev.metadata.labels)


def _pair_step(ev: ConversionEvent, current: LiveEvent | None) -> Step | None:
    if current is not None and _unchanged(ev, current):
        return None
    after = event_document(ev.name, ev.spec, ev.metadata.labels)
    n = ev.stage_count
    if current is None:
        change = Change("event", ev.spec.account, ev.name, Action.CREATE,
                        "declared, not live yet", after=after, quota_delta=n)
        return Step(change, adds=n)
    before = event_document(current.name, current.spec, current.labels)
    causes = immutable_changes(current.spec, ev.spec)
    diffs = mark_forcing(document_diffs(before, after), causes)
    content = tuple(d for d in diffs if d.path != "metadata.name")
    drift = content if current.drifted else ()
    renamed = current.name if current.name != ev.name else None
    if causes or current.api == "legacy":
        reason = _replace_reason(causes, current)
        action = Action.CREATE_DELETE  # the direction is chosen by ``ordering``
    elif not diffs and current.managed:
        return None
    else:
        reason, action = _update_reason(current, renamed, bool(content)), Action.UPDATE
    change = Change("event", ev.spec.account, ev.name, action, reason, diffs, before, after,
                    current.id, current.version, n - current.stage_count, renamed, drift)
    return Step(change, adds=n, frees=current.stage_count)


def _replace_reason(causes: dict[str, str], current: LiveEvent) -> str:
    parts = []
    labels = list(dict.fromkeys(causes.values()))
    if labels:
        parts.append(f"{', '.join(labels)} cannot be changed in place")
    if current.api == "legacy":
        parts.append(R11_NOTE)
    if not current.managed:
        parts.append("adopt unmanaged event")
    if current.drifted:
        parts.append(DRIFT_NOTE)
    return "; ".join([*parts, R4_NOTE])


def _update_reason(current: LiveEvent, renamed: str | None, content: bool) -> str:
    parts = []
    if not current.managed:
        parts.append("adopt unmanaged event")
    if renamed:
        parts.append(f"rename in place from '{renamed}' (metadata.renamedFrom)")
    if current.drifted and content:
        parts.append(DRIFT_NOTE)
    elif content:
        parts.append("manifest changed")
    return "; ".join(parts)


def _delete_step(current: LiveEvent, reason: str) -> Step:
    before = event_document(current.name, current.spec, current.labels)
    change = Change("event", current.account, current.name, Action.DELETE, reason,
                    before=before, live_id=current.id, live_version=current.version,
                    quota_delta=-current.stage_count)
    return Step(change, frees=current.stage_count)


# ---- ordering, quota, guards ------------------------------------------------------------------

def _order(draft: _Draft, accounts: dict[str, Account], live_acc: dict[str, LiveAccount],
           live: list[LiveEvent]) -> tuple[tuple[Change, ...], tuple[AccountQuota, ...]]:
    by_account: dict[str, list[Step]] = defaultdict(list)
    for step in draft.steps:
        by_account[step.change.account].append(step)
    used: dict[str, int] = defaultdict(int)
    for current in live:
        used[current.account] += current.stage_count
    changes: list[Change] = []
    quotas: list[AccountQuota] = []
    for name in sorted(set(by_account) | set(used)):
        steps = by_account.get(name, [])
        if name not in accounts and name not in live_acc:
            changes.extend(s.change for s in sorted(steps, key=lambda s: s.change.name))
            draft.errors.append(PlanMessage(
                "E403", f"account '{name}' is neither declared nor live: its events cannot be "
                "planned", "R1"))
            continue
        tier = (accounts[name].spec.tier if name in accounts else live_acc[name].spec.tier)
        start = live_acc[name].limit if name in live_acc else 0
        walk = walk_account(steps, used[name], start, limit_for(tier))
        changes.extend(walk.changes)
        quotas.append(AccountQuota(name, tier, walk.trace.limit, walk.trace.before,
                                   walk.trace.after, walk.trace.peak))
        _quota_messages(name, tier, walk, draft)
    return tuple(changes), tuple(quotas)


def _quota_messages(name: str, tier: str, walk: AccountWalk, draft: _Draft) -> None:
    if walk.overflow:
        draft.errors.append(_quota_error(name, tier, walk))
    elif walk.trace.after > walk.trace.limit:
        draft.warnings.append(PlanMessage(
            "W404", f"account '{name}' ({tier}) already uses {walk.trace.after} "
            f"lifecycle-stage slots of {walk.trace.limit}; nothing planned adds any", "R9"))


def _quota_error(name: str, tier: str, walk: AccountWalk) -> PlanMessage:
    adders = [f"{c.name} (+{c.quota_delta})" for c in walk.changes
              if c.kind == "event" and c.quota_delta > 0]
    worst = max(walk.trace.peak, walk.trace.after)
    return PlanMessage(
        "E313", f"account '{name}' ({tier}) allows {walk.trace.limit} lifecycle-stage events "
        f"but the plan would use {worst} (now {walk.trace.before}, after "
        f"{walk.trace.after}); events adding slots: {', '.join(adders) or 'none'}", "R9")


def _protect_errors(changes: Iterable[Change]) -> list[PlanMessage]:
    errors: list[PlanMessage] = []
    for c in changes:
        if c.kind != "event" or not (c.action is Action.DELETE or c.action.is_replace):
            continue
        live_protected = bool(c.before and c.before["spec"].get("protect"))
        if live_protected or (c.action.is_replace and c.after and c.after["spec"]["protect"]):
            verb = "deleted" if c.action is Action.DELETE else "replaced"
            errors.append(PlanMessage(
                "E401", f"event '{c.account}/{c.name}' is protected and would be {verb}: "
                "remove protect: true first"))
    return errors


def _mass_delete_errors(changes: Sequence[Change], live: list[LiveEvent]) -> list[PlanMessage]:
    if not any(c.action is Action.DELETE for c in changes):
        return []  # the usual plan: no need to index every live event
    managed: dict[str, set[str]] = defaultdict(set)
    for current in live:
        if current.managed:
            managed[current.account].add(current.id)
    deleted: dict[str, int] = defaultdict(int)
    for c in changes:
        if c.action is Action.DELETE and c.live_id in managed[c.account]:
            deleted[c.account] += 1
    errors: list[PlanMessage] = []
    for name in sorted(deleted):
        total, n = len(managed[name]), deleted[name]
        if n == total or n * 2 > total:
            what = "every one" if n == total else "more than half"
            errors.append(PlanMessage(
                "E402", f"the plan deletes {n} of the {total} managed events of account "
                f"'{name}' ({what}); pass --allow-mass-delete if that is intended"))
    return errors


def _replace_warnings(changes: Iterable[Change]) -> list[PlanMessage]:
    return [PlanMessage("W401", f"event '{c.account}/{c.name}' is replaced: createdAt resets, "
                        "earlier submissions/stage changes will not count", "R4")
            for c in changes if c.action.is_replace]
