"""``convctl apply [PLANFILE]``: make the live state match (product.md §3)."""

from __future__ import annotations

import getpass
import os
import socket
import sys
from typing import TYPE_CHECKING

import click

from reconciler.cli.app import App
from reconciler.cli.options import state_option

if TYPE_CHECKING:
    from reconciler.services.apply import ApplyReport


@click.command("apply")
@click.argument("planfile", required=False, type=click.Path(dir_okay=False))
@click.option("--path", "paths", multiple=True, type=click.Path(),
              help="Manifest folder or file (repeatable; default manifests/). Without PLANFILE.")
@state_option
@click.option("--auto-approve", is_flag=True, envvar="CONVCTL_AUTO_APPROVE",
              help="Do not ask for confirmation (required without a terminal).")
@click.option("--prune-unmanaged", is_flag=True, help="Also delete live events not in git.")
@click.option("--allow-mass-delete", is_flag=True,
              help="Allow deleting every event of an account, or more than half of them.")
def command(planfile: str | None, paths: tuple[str, ...], state: str | None, auto_approve: bool,
            prune_unmanaged: bool, allow_mass_delete: bool) -> None:
    """Apply a saved plan exactly, or plan now, show it, ask, and apply.

    A saved plan (from `convctl plan --out FILE`) is refused, with nothing changed, when any live
    object it read or any manifest changed since it was made. Apply holds the state lock, shows
    each step, and on a failure stops and reports done / failed / pending steps (exit 1);
    running plan + apply again converges.

    \b
    Examples:
      convctl apply                      # plan, review, type 'yes'
      convctl apply --auto-approve       # in CI on merge to main
      convctl plan --out plan.json && convctl apply plan.json
    """
    from reconciler.adapters.state import open_provider
    from reconciler.cli.planning import load_saved, plan_or_exit, render
    from reconciler.services.apply import apply_plan, check_fresh
    from reconciler.services.planning import manifests_hash

    app = App()
    if planfile:
        plan, saved_paths, saved_state = load_saved(planfile)
        state = state or saved_state
        provider = open_provider(state)
        try:
            check_fresh(plan, provider, manifests_hash(saved_paths))
        except BaseException:
            provider.close()
            raise
    else:
        plan = plan_or_exit(app, list(paths) or ["manifests"], state, prune_unmanaged,
                            allow_mass_delete)
        app.out(render(plan, "text", color=app.color))
        if plan.errors:
            raise click.exceptions.Exit(1)
        if plan.is_empty:
            return
        _confirm(app, auto_approve)
        provider = open_provider(state)
    try:
        report = apply_plan(plan, provider, progress=app.err, holder=_holder())
    finally:
        provider.close()
    _summarize(app, report)


def _confirm(app: App, auto_approve: bool) -> None:
    if auto_approve:
        return
    if not sys.stdin.isatty():
        app.err("error: no terminal to confirm on; review the plan and pass --auto-approve, or "
                "apply a saved plan file")
        raise click.exceptions.Exit(1)
    answer = click.prompt("Do you want to perform these actions? Only 'yes' will be accepted",
                          default="", show_default=False)
    if answer.strip() != "yes":
        app.err("Apply cancelled.")
        raise click.exceptions.Exit(1)


def _holder() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return os.environ.get("CONVCTL_LOCK_HOLDER") or f"{user}@{socket.gethostname()}"


def _summarize(app: App, report: ApplyReport) -> None:
    if report.ok:
        app.out(f"Apply complete: {report.count('done')} step(s) done (run {report.run_id}).")
        return
    app.err(f"Apply failed (run {report.run_id}): {report.count('done')} done, "
            f"{report.count('failed')} failed, {report.count('pending')} pending.")
    for step in report.steps:
        if step.status != "done":
            detail = f": {step.detail}" if step.detail else ""
            app.err(f"  {step.status:<7} {step.description}{detail}")
    app.err("Fix the cause and run `convctl plan` / `convctl apply` again: it converges.")
    raise click.exceptions.Exit(1)
