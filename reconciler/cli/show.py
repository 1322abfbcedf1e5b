"""``convctl show PLANFILE``: render a saved plan exactly as ``plan`` printed it (Terraform's
``show``). Reads only the file: the live state is not opened, so it runs anywhere."""

from __future__ import annotations

import click

from reconciler.cli.app import App


@click.command("show")
@click.argument("planfile", type=click.Path(dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(["text", "json", "markdown"]),
              default="text", show_default=True, help="Output format.")
def command(planfile: str, fmt: str) -> None:
    """Show a plan saved with `convctl plan --out FILE`, without touching the state.

    The output is what `convctl plan --format FORMAT` printed when the plan was made, so a
    reviewer can read the exact plan an apply job is about to apply.

    \b
    Examples:
      convctl plan --out plan.json && convctl show plan.json
      convctl show plan.json --format markdown >> "$GITHUB_STEP_SUMMARY"
    """
    from reconciler.cli.planning import load_saved
    from reconciler.render import render

    app = App()
    plan, _paths, _state = load_saved(planfile)
    app.out(render(plan, fmt, color=app.color))
