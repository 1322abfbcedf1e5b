"""Make a plan: load the manifests, read the live state in one listing, call the planner."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from reconciler.core.live import LiveAccount, LiveEvent
from reconciler.core.plan import Plan
from reconciler.core.provider import SharesSpecs, StateReader
from reconciler.core.scope import Scope, check_known, in_scope
from reconciler.core.validate import ManifestSet
from reconciler.diagnostics import Diagnostics


@dataclass
class PlanResult:
    plan: Plan | None  # None when the manifests have errors
    manifests: ManifestSet
    diagnostics: Diagnostics


def manifests_hash(paths: Sequence[str | Path]) -> str:
    """SHA-256 over every manifest file (path and bytes), in discovery order."""
    from reconciler.adapters.manifests import discover

    digest = hashlib.sha256()
    for path in discover(paths, Diagnostics()):
        digest.update(str(path).encode() + b"\0")
        try:
            digest.update(path.read_bytes())
        except OSError:
            digest.update(b"<unreadable>")
        digest.update(b"\0")
    return digest.hexdigest()


@dataclass
class Loaded:
    """Manifests read from ``paths`` (no live state needed): planned later, under the lock.
    ``scope``: the accounts ``--account`` named (None: every account), see ``core.scope``."""

    paths: list[str]
    manifests: ManifestSet
    diagnostics: Diagnostics
    manifests_hash: str
    scope: Scope = None


def load_manifests(paths: Sequence[str | Path], scope: Scope = None) -> Loaded:
    """Load the manifests of ``scope``; refuse (``UsageError``) a scope naming an account the
    manifests do not mention only later, with the live state (``plan_loaded``)."""
    from reconciler.adapters.manifests import load

    manifests, diags = load(paths, scope=scope)
    return Loaded([str(p) for p in paths], manifests, diags, manifests_hash(paths), scope)


def plan_loaded(loaded: Loaded, reader: StateReader, *, prune_unmanaged: bool = False,
                allow_mass_delete: bool = False) -> PlanResult:
    """Plan ``loaded`` against the live state ``reader`` holds now (``plan`` is None when the
    manifests have errors)."""
    from reconciler.core.planner import build_plan

    manifests, diags, scope = loaded.manifests, loaded.diagnostics, loaded.scope
    if diags.has_errors:
        return PlanResult(None, manifests, diags)
    accounts = reader.list_accounts()
    check_known(scope, manifests, [a.name for a in accounts], " ".join(loaded.paths))
    accounts = [a for a in accounts if in_scope(scope, a.name)]
    # One listing for the whole state (every live event belongs to a live account), not one
    # round trip per account; the backend validates it in bulk.
    names = set(_account_names(manifests, accounts))
    events = [ev for ev in _live_events(reader, manifests) if ev.account in names]
    plan = build_plan(manifests, accounts, events, prune_unmanaged=prune_unmanaged,
                      allow_mass_delete=allow_mass_delete, manifests_hash=loaded.manifests_hash)
    return PlanResult(plan, manifests, diags)


def make_plan(paths: Sequence[str | Path], reader: StateReader, *,
              prune_unmanaged: bool = False, allow_mass_delete: bool = False,
              scope: Scope = None) -> PlanResult:
    return plan_loaded(load_manifests(paths, scope), reader, prune_unmanaged=prune_unmanaged,
                       allow_mass_delete=allow_mass_delete)


def _live_events(reader: StateReader, manifests: ManifestSet) -> list[LiveEvent]:
    """The whole live listing; a backend that can (``SharesSpecs``) hands unchanged events the
    manifests' own spec objects, which the planner then compares by identity."""
    if isinstance(reader, SharesSpecs):
        return reader.list_events_sharing(
            {(ev.model.spec.account, ev.model.metadata.name): ev.model.spec
             for ev in manifests.events})
    return reader.list_events()


def _account_names(manifests: ManifestSet, live: list[LiveAccount]) -> list[str]:
    return sorted({a.model.name for a in manifests.accounts} | {a.name for a in live})
