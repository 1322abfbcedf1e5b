"""``convctl plan``: what apply would change, as text, JSON or a PR comment (product.md §3).

With a policies folder (``policies/`` when it exists, ``--policies DIR``, ``CONVCTL_POLICIES``)
every plan is checked against its Rego policies (docs/policies.md): each violation is printed
with its policy's name; a non-advisory one makes the plan fail (exit 1, nothing saved).
``--validate-remote`` asks Google Ads to validate (``validateOnly``) one synthetic event per
Google Ads conversion event the plan changes (docs/networks/google.md): a refusal is an error
diagnostic (E601-E609), exit 1, nothing saved.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from reconciler.cli.app import App
from reconciler.cli.options import account_option, manifests_argument, state_option

if TYPE_CHECKING:
    from reconciler.core.plan import Plan
    from reconciler.core.validate import ManifestSet


@click.command("plan")
@manifests_argument
@account_option
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
@click.option("--policies", "policies_opt", metavar="DIR", default=None,
              help="Check the plan against the Rego policies in DIR [env CONVCTL_POLICIES; "
              "default policies/ when it exists].")
@click.option("--no-policies", is_flag=True, help="Do not check any policy.")
@click.option("--validate-remote", is_flag=True,
              help="Ask Google Ads to validate (validateOnly, nothing recorded) one test event "
              "per Google Ads conversion event the plan creates or updates.")
@click.option("--google-url", envvar="CONVCTL_GOOGLE_URL", metavar="URL",
              default="https://datamanager.googleapis.com", show_default=True,
              help="Data Manager API base URL for --validate-remote [env CONVCTL_GOOGLE_URL].")
def command(paths: tuple[str, ...], accounts: tuple[str, ...], state: str | None, fmt: str,
            out: str | None,
            detailed_exitcode: bool, prune_unmanaged: bool, allow_mass_delete: bool,
            policies_opt: str | None, no_policies: bool, validate_remote: bool,
            google_url: str) -> None:
    """Compare the manifests with the live state and show the changes apply would make.

    PATHS default to manifests/. With --account, only the named accounts are planned (their
    manifests and live objects); without it, every account the manifests or the live state
    hold, so a live event of an account PATHS do not declare plans as a delete.
    Exit 0 when there is nothing to do, 1 on any error or policy violation, and with
    --detailed-exitcode 2 when there are changes.

    \b
    Examples:
      convctl plan
      convctl plan --format markdown --detailed-exitcode   # in a pull request
      convctl plan --out plan.json && convctl apply plan.json
      convctl plan --account acme --out acme.json   # one team's account only
      convctl plan --policies examples/policies
      convctl plan --validate-remote   # Google Ads checks each changed Google event
    """
    from reconciler.cli import lifetime

    lifetime.pause_collector()  # before the imports: a short command that frees nothing
    from reconciler.cli.planning import load_policies_or_exit, plan_or_exit, save_plan
    from reconciler.core.policy import blocking
    from reconciler.core.scope import make_scope
    from reconciler.render import render

    app = App()
    manifest_paths, scope = list(paths) or ["manifests"], make_scope(accounts)
    policies = None if no_policies else load_policies_or_exit(app, policies_opt)
    result = plan_or_exit(app, manifest_paths, state, prune_unmanaged, allow_mass_delete,
                          scope)
    plan, manifests = result.plan, result.manifests
    assert plan is not None
    violations = None
    if policies is not None:
        from reconciler.services.policies import check_plan

        violations = check_plan(plan, manifest_paths, policies, scope=scope,
                                manifests=manifests)
    app.out(render(plan, fmt, color=app.color, violations=violations))
    refused = blocking(violations or [])
    if policies is not None:
        app.err(f"Policies ({policies.directory}): {len(policies.policies)} checked, "
                f"{len(refused)} violation(s), {len(violations or []) - len(refused)} advisory.")
    if refused:
        saved = "; the plan was not saved" if out else ""
        app.err(f"error: the plan violates {len(refused)} policy rule(s) (listed above); "
                f"apply refuses it until they pass{saved}")
    remote_refused = validate_remote and not _validated_remotely(app, plan, manifests,
                                                                 google_url)
    if remote_refused and out:
        app.err("error: Google Ads refused the plan's test events; the plan was not saved")
    if plan.errors or refused or remote_refused:
        raise click.exceptions.Exit(1)
    if out:
        save_plan(plan, out, manifest_paths, state, scope)
        app.err(f"Saved the plan to {out}. Apply exactly it with: convctl apply {out}")
    if detailed_exitcode and not plan.is_empty:
        raise click.exceptions.Exit(2)



def _validated_remotely(app: App, plan: Plan, manifests: ManifestSet, google_url: str) -> bool:
    """Print Google's refusals as diagnostics; True when every test event was taken."""
    from reconciler.adapters.networks.google import GoogleDestination, reason_of
    from reconciler.adapters.secrets import resolve_secret
    from reconciler.services.remote_validation import validate_remote

    sender = GoogleDestination(google_url, validate_only=True)
    try:
        report = validate_remote(plan, manifests, sender, resolve_secret, reason_of)
    finally:
        sender.close()
    for diag in report.diagnostics.sorted():
        app.err(diag.render())
    refused = len(report.diagnostics.errors)
    app.err(f"Google Ads validated {report.checked} test event(s) (validateOnly, nothing "
            f"recorded): {refused} refused.")
    return refused == 0
