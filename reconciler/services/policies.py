"""Plan policies: the document they read, where they live, and the check plan and apply call.

The input document (``input`` in Rego) is the plan exactly as ``convctl plan --format json``
prints it (``changes``, ``quotas``, ``unmanaged``, ``summary``...) plus ``desired``: every
account (``{name: {name, labels, spec}}``) and every event (``[{name, labels, spec}]``) the
manifests declare, in the shape of a change's ``after``, redacted like the plan. A change only
shows what moves; ``desired`` lets a rule see the account labels of an event or count the
events of an ad account. Policies live in ``policies/`` next to ``manifests/``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from reconciler.adapters.policy import PolicySet, evaluate
from reconciler.core.diff import account_document, event_document
from reconciler.core.plan import Plan
from reconciler.core.policy import Violation
from reconciler.core.scope import Scope
from reconciler.core.validate import ManifestSet
from reconciler.diagnostics import Diagnostics
from reconciler.errors import PolicyError, UsageError
from reconciler.render.json import render_json
from reconciler.render.redact import redact

DEFAULT_DIR = "policies"
ENV = "CONVCTL_POLICIES"


def policies_dir(option: str | None) -> str | None:
    """The folder to use: ``--policies`` / ``CONVCTL_POLICIES``, else ``policies`` when it
    exists, else none. A folder asked for by name must exist."""
    chosen = option or os.environ.get(ENV) or None
    if chosen is None:
        return DEFAULT_DIR if Path(DEFAULT_DIR).is_dir() else None
    if not Path(chosen).is_dir():
        raise UsageError(f"{chosen}: error[E504]: no such policies folder (--policies / {ENV})")
    return chosen


def load_policies(directory: str) -> tuple[PolicySet, Diagnostics]:
    """Parse and compile every policy of ``directory``; errors are positioned diagnostics."""
    from reconciler.adapters.policy import load

    diags = Diagnostics()
    return load(directory, diags), diags


def policy_input(plan: Plan, manifests: ManifestSet) -> dict[str, Any]:
    """The document every policy reads: the JSON plan plus the desired accounts and events."""
    doc: dict[str, Any] = json.loads(render_json(plan))
    accounts = {a.model.name: account_document(a.model.name, a.model.spec,
                                               a.model.metadata.labels)
                for a in manifests.accounts}
    events = [event_document(e.model.name, e.model.spec, e.model.metadata.labels)
              for e in manifests.events]
    doc["desired"] = redact({"accounts": accounts, "events": events})
    return doc


def check_policies(plan_json: dict[str, Any], policies: PolicySet) -> list[Violation]:
    """Every violation of ``policies`` over ``plan_json`` (a ``policy_input`` document).

    Advisory ones have ``advisory=True``; ``core.policy.blocking`` keeps those that refuse an
    apply. Raises ``PolicyError`` (E505) when a policy fails to evaluate."""
    return evaluate(policies, plan_json)


def check_plan(plan: Plan, paths: Sequence[str | Path], policies: PolicySet, *,
               scope: Scope = None, manifests: ManifestSet | None = None) -> list[Violation]:
    """``check_policies`` over ``plan`` and the desired state it was made from: ``manifests``
    when the caller has them loaded already, else those at ``paths`` in ``scope`` (a saved plan
    is only applied while they are unchanged)."""
    if manifests is None:
        from reconciler.adapters.manifests import load

        manifests, diags = load(paths, scope=scope)
        if diags.has_errors:
            raise PolicyError("; ".join(d.render() for d in diags.sorted()[:3]))
    return check_policies(policy_input(plan, manifests), policies)
