"""``agent retry-dead``: queue dead letters again, chosen by reason, event and event time.

Events whose time is now older than their network's window (Meta's 7 days, LinkedIn's and
Google's 90, less the agent's safety margin, as delivery expires them) would be refused: they
are not queued, stay dead and are counted. A dry run changes nothing and lists what would be
queued.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from reconciler.adapters.agentquality import DeadSelection, Replay
from reconciler.core.capi import SAFETY_MARGIN
from reconciler.core.models import NETWORKS
from reconciler.core.networks import rules_for
from reconciler.core.provider import StateReader
from reconciler.errors import UsageError
from reconciler.services.ports import AgentStore


def oldest_sendable(now: datetime, network: str = "meta") -> int:
    """The earliest event time (epoch seconds) the agent still sends to ``network`` at ``now``
    (the bound delivery expires events at)."""
    window = rules_for(network).max_age - SAFETY_MARGIN
    return int(now.timestamp()) - int(window.total_seconds())


def event_ids(provider: StateReader, refs: Sequence[str]) -> tuple[str, ...]:
    """The conversion event ids of ``ACCOUNT/NAME`` refs; ``UsageError`` for one that is not
    in the live state."""
    ids: list[str] = []
    for ref in refs:
        account, sep, name = ref.partition("/")
        if not sep or not account or not name or "/" in name:
            raise UsageError(f"--event {ref!r}: give it as ACCOUNT/NAME, e.g. acme/demo-request")
        found = [e.id for e in provider.list_events(account) if e.name == name]
        if not found:
            raise UsageError(f"--event {ref}: no such conversion event in the live state")
        ids.extend(found)
    return tuple(ids)


def replay(store: AgentStore, selection: DeadSelection, now: datetime, *,
           dry_run: bool = False) -> Replay:
    if (selection.since is not None and selection.until is not None
            and selection.since >= selection.until):
        raise UsageError("--since must be before --until")
    return store.replay_dead(selection, {n: oldest_sendable(now, n) for n in NETWORKS},
                             dry_run=dry_run)
