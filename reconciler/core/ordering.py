"""Quota-safe ordering of one account's changes (product.md §3, R7, R9).

Phases, in apply order: account changes that keep or raise the limit; deletes and updates that
free slots (or use the same number); replaces that move an event off a network whose block the
account's change removes; account changes that remove a network block (the backends refuse that
while events of the network live, E128, R1: so after those deletes and replaces); the other
replaces; updates that take slots and creates; account changes that lower the limit (first
instead, when they also change what events may use (ad accounts, forms, stages, lead sync) and
the live use already fits the lower limit: every write is checked against its account, R1, R5,
R6, R12). Within a phase, by event name. A replace that moves an event off a removed block
*and* needs what the same account change adds cannot be ordered: its create is refused (apply
the account change in two steps). Walking that order decides each
replace: create-before-delete when there is headroom at that point, else delete-before-create.
The walk also records every step's slot use (``quota.simulate`` gives before/after/peak).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from reconciler.core.network_rules import BLOCKS
from reconciler.core.plan import Action, Change
from reconciler.core.quota import QuotaTrace, limit_for, simulate

RAISE, FREE, OFF, NARROW, REPLACE, GROW, LOWER = range(7)


@dataclass(frozen=True)
class Step:
    """A change before ordering, with what it does to its account's slots and limit."""

    change: Change
    adds: int = 0  # slots the new/updated object takes
    frees: int = 0  # slots the old object gives back
    limit_after: int | None = None  # account changes: the limit once applied

    @property
    def phase(self) -> int:
        c = self.change
        if c.kind == "account":
            if self.lowers:
                return LOWER
            return NARROW if self.narrows else RAISE
        if c.action.is_replace:
            return REPLACE
        if c.action is Action.CREATE or c.quota_delta > 0:
            return GROW
        return FREE

    @property
    def lowers(self) -> bool:
        return self.change.action is Action.UPDATE and self.limit_after is not None and (
            self.limit_after < _tier_limit(self.change))

    @property
    def narrows(self) -> bool:
        """An account update that removes a network block: after the events that need it."""
        return bool(_removed_blocks(self.change))


def _removed_blocks(change: Change) -> list[str]:
    before, after = change.before, change.after
    if change.kind != "account" or change.action is not Action.UPDATE or not before or not after:
        return []
    return [k for k in BLOCKS.values()
            if before["spec"].get(k) is not None and after["spec"].get(k) is None]


def _tier_limit(change: Change) -> int:
    before = change.before
    return limit_for(before["spec"]["tier"]) if before else 0


@dataclass(frozen=True)
class AccountWalk:
    """One account's changes in apply order and what they do to its slots."""

    changes: tuple[Change, ...]
    trace: QuotaTrace
    overflow: bool  # a step adding slots, or lowering the limit, ends above the limit then


def sort_key(step: Step, early: bool = False, removed: Collection[str] = ()
             ) -> tuple[int, str, str]:
    """``early``: a limit-lowering account change that goes first; ``removed``: the blocks the
    account's change removes (a replace of an event off one of them goes before it: OFF)."""
    if early:
        phase = NARROW if step.narrows else RAISE
    elif step.change.action.is_replace and _block_of(step.change.before) in removed:
        phase = OFF
    else:
        phase = step.phase
    return (phase, step.change.name, step.change.renamed_from or "")


def _block_of(event: dict[str, Any] | None) -> str | None:
    """The account block an event document's network needs."""
    return BLOCKS[event["spec"].get("network") or "meta"] if event else None


def _early(step: Step, used: int) -> bool:
    """A limit-lowering account change that must precede the events: it also changes more than
    the tier (they may need its new ad accounts, forms or stages), and the use already fits."""
    before, after = step.change.before, step.change.after
    if not (step.lowers and step.limit_after is not None and used <= step.limit_after
            and before and after):
        return False
    return {**before["spec"], "tier": None} != {**after["spec"], "tier": None}


def walk_account(steps: Sequence[Step], used: int, limit: int, final_limit: int) -> AccountWalk:
    """Order ``steps`` (one account), choose each replace's direction and trace the slots.

    ``used`` and ``limit`` are the live slot count and limit; ``final_limit`` the desired one.
    """
    start, ordered, deltas, overflow = used, list[Change](), list[int](), False
    early = {id(step) for step in steps if _early(step, used)}
    removed = {block for step in steps for block in _removed_blocks(step.change)}
    for step in sorted(steps, key=lambda s: sort_key(s, id(s) in early, removed)):
        change, sub = _resolve(step, used, limit)
        if step.limit_after is not None:
            limit = step.limit_after
        for delta in sub:
            used += delta
            overflow = overflow or (delta > 0 and used > limit)
        overflow = overflow or (step.lowers and used > limit)
        ordered.append(change)
        deltas.extend(sub)
    trace = simulate(start, deltas, final_limit)
    return AccountWalk(tuple(ordered), trace, overflow)


def _resolve(step: Step, used: int, limit: int) -> tuple[Change, tuple[int, ...]]:
    """The change with its final action and reason, and its slot deltas in execution order."""
    change = step.change
    if not change.action.is_replace:
        return change, (change.quota_delta,) if change.quota_delta else ()
    if used + step.adds <= limit:
        room = (f"quota headroom: {used} + {step.adds} <= {limit}" if step.adds
                else "it uses no lifecycle-stage slots")
        note = f"created before the old one is deleted ({room})"
        action, sub = Action.CREATE_DELETE, (step.adds, -step.frees)
    else:
        note = (f"the old one is deleted first: no quota headroom to create before deleting "
                f"({used} + {step.adds} > {limit})")
        action, sub = Action.DELETE_CREATE, (-step.frees, step.adds)
    reason = f"{change.reason}; {note}" if change.reason else note
    return dataclasses.replace(change, action=action, reason=reason), tuple(d for d in sub if d)
