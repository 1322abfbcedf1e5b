"""Helpers shared by ``plan`` and ``apply``: make a plan or explain why not, policies, save."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from reconciler.cli.app import App
from reconciler.core.plan import Plan
from reconciler.core.scope import Scope, make_scope
from reconciler.diagnostics import Diagnostics
from reconciler.errors import UsageError

if TYPE_CHECKING:
    from reconciler.adapters.policy import PolicySet
    from reconciler.services.planning import PlanResult


def plan_or_exit(app: App, paths: list[str], state: str | None, prune_unmanaged: bool,
                 allow_mass_delete: bool, scope: Scope = None) -> PlanResult:
    from reconciler.adapters.state import open_provider
    from reconciler.cli import lifetime
    from reconciler.services.planning import make_plan

    provider = open_provider(state)
    try:
        result = make_plan(paths, provider, prune_unmanaged=prune_unmanaged,
                           allow_mass_delete=allow_mass_delete, scope=scope)
    finally:
        provider.close()
    lifetime.keep(result)  # never freed: the process ends first (cli/lifetime.py)
    show_diagnostics(app, result.diagnostics)
    assert result.plan is not None  # no errors: show_diagnostics exits on them
    return result  # the plan and the manifests it was made from (policies read them too)


def show_diagnostics(app: App, diagnostics: Diagnostics) -> None:
    """Print the manifests' errors and exit 1, or print their warnings."""
    if diagnostics.has_errors:
        for diag in diagnostics.sorted():
            app.err(diag.render())
        app.err(f"error: the manifests have {len(diagnostics.errors)} error(s); "
                "nothing was planned")
        raise click.exceptions.Exit(1)
    for diag in diagnostics.warnings:
        app.err(diag.render())


def load_policies_or_exit(app: App, option: str | None) -> PolicySet | None:
    """The compiled policies (``--policies``, ``CONVCTL_POLICIES``, ``policies/``), or None
    without a policies folder; every error positioned, then exit 1, when one does not compile."""
    from reconciler.services.policies import load_policies, policies_dir

    directory = policies_dir(option)
    if directory is None:
        return None
    policies, diags = load_policies(directory)
    for diag in diags.sorted():
        app.err(diag.render())
    if diags.has_errors:
        app.err(f"error: the policies have {len(diags.errors)} error(s); nothing was planned")
        raise click.exceptions.Exit(1)
    return policies


SAVED_KIND = "convctl-saved-plan"


def save_plan(plan: Plan, out: str, paths: list[str], state: str | None,
              scope: Scope = None) -> None:
    """Write the plan with what apply needs to check it: paths, state URL, ``--account`` scope
    (``accounts``: null for every account)."""
    import orjson

    doc = {"kind": SAVED_KIND, "paths": paths, "state": state, "plan": plan.to_json(),
           "accounts": list(scope) if scope is not None else None}
    target = Path(out)
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
    os.replace(tmp, target)


def load_saved(path: str) -> tuple[Plan, list[str], str | None, Scope]:
    import orjson

    try:
        doc: Any = orjson.loads(Path(path).read_bytes())
    except OSError as exc:
        raise UsageError(f"cannot read plan file {path}: {exc.strerror}") from exc
    except orjson.JSONDecodeError as exc:
        raise UsageError(f"{path} is not a saved plan (invalid JSON)") from exc
    if not isinstance(doc, dict) or doc.get("kind") != SAVED_KIND:
        raise UsageError(f"{path} is not a plan saved with `convctl plan --out`")
    try:
        plan = Plan.from_json(doc["plan"])
    except (KeyError, TypeError, ValueError) as exc:
        raise UsageError(f"{path} is not a valid saved plan: {exc}") from exc
    accounts = doc.get("accounts")
    if accounts is not None and (not isinstance(accounts, list)
                                 or not all(isinstance(a, str) for a in accounts)):
        raise UsageError(f"{path} is not a valid saved plan: 'accounts' is not a list of names")
    scope = make_scope(accounts) if accounts is not None else None
    return plan, list(doc.get("paths") or ["manifests"]), doc.get("state"), scope
