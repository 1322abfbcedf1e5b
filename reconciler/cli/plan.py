"""``convctl plan``: what apply would change, as text, JSON or a PR comment (product.md §3)."""

from __future__ import annotations

import click

from reconciler.cli.app import App
from reconciler.cli.options import manifests_argument, state_option


@click.command("plan")
@manifests_argument
@state_option
@click.option("--format", "fmt", type=click.Choice(["text", "json", "markdown"]),
              default="text", show_default=True, help="Output format.")
@click.option("--out", "out", type=click.Path(dir_okay=False),
              help="Also save the plan (JSON, with fingerprints) for `convctl apply FILE`.")
@click.option("--detailed-exitcode", is_flag=True,
              help="Exit 2 when there are changes (0 none, 1 error).")
@click.option("--prune-unmanaged", is_flag=True,
              help="Also delete live events that are not in git.")
@click.option("--allow-mass-delete", is_flag=True,
              help="Allow deleting every event of an account, or more than half of them.")
def command(paths: tuple[str, ...], state: str | None, fmt: str, out: str | None,
            detailed_exitcode: bool, prune_unmanaged: bool, allow_mass_delete: bool) -> None:
    """Compare the manifests with the live state and show the changes apply would make.

    PATHS default to manifests/. Exit 0 when there is nothing to do, 1 on any error, and with
    --detailed-exitcode 2 when there are changes.

    \b
    Examples:
      convctl plan
      convctl plan --format markdown --detailed-exitcode   # in a pull request
      convctl plan --out plan.json && convctl apply plan.json
    """
    from reconciler.cli.planning import plan_or_exit, render, save_plan

    app = App()
    plan = plan_or_exit(app, list(paths) or ["manifests"], state, prune_unmanaged,
                          allow_mass_delete)
    app.out(render(plan, fmt, color=app.color))
    if plan.errors:
        raise click.exceptions.Exit(1)
    if out:
        save_plan(plan, out, list(paths) or ["manifests"], state)
        app.err(f"Saved the plan to {out}. Apply exactly it with: convctl apply {out}")
    if detailed_exitcode and not plan.is_empty:
        raise click.exceptions.Exit(2)
