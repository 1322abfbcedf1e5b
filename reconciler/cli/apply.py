"""``convctl apply [PLANFILE]``: make the live state match (product.md §3)."""

from __future__ import annotations

import sys
from functools import partial
from typing import TYPE_CHECKING

import click

from reconciler.cli.app import App
from reconciler.cli.options import Duration, account_option, state_option

if TYPE_CHECKING:
    from reconciler.core.plan import Plan
    from reconciler.core.policy import Violation
    from reconciler.services.apply import ApplyReport


@click.command("apply")
@click.argument("planfile", required=False, type=click.Path(dir_okay=False))
@click.option("--path", "paths", multiple=True, type=click.Path(),
              help="Manifest folder or file (repeatable; default manifests/). Without PLANFILE.")
@account_option
@state_option
@click.option("--auto-approve", is_flag=True, envvar="CONVCTL_AUTO_APPROVE",
              help="Do not ask for confirmation (required without a terminal).")
@click.option("--lock-timeout", type=Duration(), default="0", envvar="CONVCTL_LOCK_TIMEOUT",
              metavar="DURATION",
              help="Wait this long (e.g. 30s, 5m) for a state lock another apply holds "
              "[env CONVCTL_LOCK_TIMEOUT; default 0: fail at once, naming the holder].")
@click.option("--policies", "policies_opt", metavar="DIR", default=None,
              help="Refuse the plan when it violates a blocking Rego policy in DIR [env "
              "CONVCTL_POLICIES; default policies/ when it exists].")
@click.option("--prune-unmanaged", is_flag=True, help="Also delete live events not in git.")
@click.option("--allow-mass-delete", is_flag=True,
              help="Allow deleting every event of an account, or more than half of them.")
def command(planfile: str | None, paths: tuple[str, ...], accounts: tuple[str, ...],
            state: str | None, auto_approve: bool,
            lock_timeout: float, policies_opt: str | None, prune_unmanaged: bool,
            allow_mass_delete: bool) -> None:
    """Apply a saved plan exactly, or plan now, show it, ask, and apply.

    Apply takes the state lock first and holds it to the end (renewed while it runs): the plan is
    made, or a saved plan checked, under the lock. A saved plan (from `convctl plan --out FILE`)
    is refused, with nothing changed, when any live object it read or any manifest changed since
    it was made. Apply shows each step, and on a failure stops and reports done / failed /
    pending steps (exit 1); running plan + apply again converges.

    \b
    Examples:
      convctl apply                      # plan, review, type 'yes'
      convctl apply --auto-approve       # in CI on merge to main
      convctl apply --auto-approve --lock-timeout 5m   # wait for another apply to finish
      convctl plan --out plan.json && convctl apply plan.json
      convctl apply --account acme --auto-approve   # only acme: other accounts untouched

    A saved plan keeps the --account scope it was planned with (--account then is refused).
    With a policies folder, the plan decided under the lock is checked against its policies
    and refused (exit 1, nothing applied) when a blocking one is violated.
    """
    from reconciler.adapters.state import open_provider
    from reconciler.cli.planning import load_policies_or_exit, load_saved, show_diagnostics
    from reconciler.core.scope import make_scope
    from reconciler.services.apply import FromManifests, SavedPlan, apply
    from reconciler.services.locking import LockPolicy, default_holder
    from reconciler.services.planning import load_manifests

    app = App()
    source: SavedPlan | FromManifests
    policies = load_policies_or_exit(app, policies_opt)  # before the lock: compile errors
    if planfile:
        if accounts:
            app.err("error: a saved plan keeps the --account scope it was planned with; "
                    "drop --account")
            raise click.exceptions.Exit(1)
        plan, saved_paths, saved_state, scope = load_saved(planfile)
        source, state = SavedPlan(plan, saved_paths, scope), state or saved_state
        show, confirm, manifest_paths, loaded = None, None, saved_paths, None
    else:
        manifest_paths = list(paths) or ["manifests"]
        scope = make_scope(accounts)
        loaded = load_manifests(manifest_paths, scope)
        show_diagnostics(app, loaded.diagnostics)  # before the lock: no live state needed
        if not auto_approve and not sys.stdin.isatty():
            app.err("error: no terminal to confirm on; review the plan and pass --auto-approve, "
                    "or apply a saved plan file")
            raise click.exceptions.Exit(1)
        source = FromManifests(loaded, prune_unmanaged, allow_mass_delete)
        show = partial(_show, app)
        confirm = None if auto_approve else partial(_confirm, app)
    check = None
    if policies is not None:
        from reconciler.services.policies import check_plan

        check = partial(check_plan, paths=manifest_paths, policies=policies,  # loaded: read once
                        scope=scope, manifests=loaded.manifests if loaded else None)
    provider = open_provider(state)
    try:
        outcome = apply(provider, source, holder=default_holder(), progress=app.err, show=show,
                        confirm=confirm, policy=LockPolicy(timeout_seconds=lock_timeout),
                        check=check)
    finally:
        provider.close()
    if outcome.refused:
        _refuse(app, outcome.refused, listed=show is not None)
    if outcome.cancelled or (outcome.plan is not None and outcome.plan.errors):
        raise click.exceptions.Exit(1)
    if outcome.report is not None:
        _summarize(app, outcome.report)
    elif planfile:
        app.out("No changes: the saved plan is empty and still fresh; nothing was applied.")


def _show(app: App, plan: Plan, violations: list[Violation] | None) -> None:
    from reconciler.render import render

    app.out(render(plan, "text", color=app.color, violations=violations))


def _refuse(app: App, refused: list[Violation], *, listed: bool) -> None:
    if not listed:  # a saved plan is not printed again: name each violation here
        for violation in refused:
            app.err(f"error: policy {violation.render()}")
    app.err(f"error: the plan violates {len(refused)} policy rule(s); nothing was applied")
    raise click.exceptions.Exit(1)


def _confirm(app: App, plan: Plan) -> bool:
    """Asked while the lock is held (like Terraform): the plan shown is the plan applied."""
    answer = click.prompt("Do you want to perform these actions? Only 'yes' will be accepted",
                          default="", show_default=False)
    if answer.strip() != "yes":
        app.err("Apply cancelled.")
        return False
    return True


def _summarize(app: App, report: ApplyReport) -> None:
    if report.ok:
        app.out(f"Apply complete: {report.count('done')} step(s) done (run {report.run_id}).")
        return
    verb = "stopped" if report.stopped else "failed"
    app.err(f"Apply {verb} (run {report.run_id}): {report.count('done')} done, "
            f"{report.count('failed')} failed, {report.count('pending')} pending.")
    for step in report.steps:
        if step.status != "done":
            detail = f": {step.detail}" if step.detail else ""
            app.err(f"  {step.status:<7} {step.description}{detail}")
    app.err("Fix the cause and run `convctl plan` / `convctl apply` again: it converges.")
    raise click.exceptions.Exit(1)
