"""Tier limits (R9) and lifecycle-stage slot accounting (R7).

Each selected stage of a lifecycle-stage event uses one slot of its account; form events use
none. ``simulate`` walks an ordered sequence of quota deltas and reports the peak, which the
planner uses to prove that no step of a plan exceeds the limit.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from reconciler.core.vocabulary import TIER_LIMITS


def limit_for(tier: str) -> int:
    """The account's lifecycle-stage event limit (R9)."""
    return TIER_LIMITS[tier]


@dataclass(frozen=True)
class QuotaTrace:
    """Slots used before, after and at the highest point of an ordered sequence of steps."""

    before: int
    after: int
    peak: int
    limit: int

    @property
    def exceeded(self) -> bool:
        return self.peak > self.limit


def simulate(before: int, deltas: Iterable[int], limit: int) -> QuotaTrace:
    """Apply ``deltas`` in order starting from ``before``; record the peak (R9)."""
    used = peak = before
    for delta in deltas:
        used += delta
        peak = max(peak, used)
    return QuotaTrace(before, used, peak, limit)
