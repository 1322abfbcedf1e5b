"""``convctl validate [PATH...]``: offline checks of the manifests (product.md §3)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from reconciler.cli.app import App
from reconciler.cli.options import account_option
from reconciler.cli.progress import quiet_option, working

if TYPE_CHECKING:
    from reconciler.diagnostics import Diagnostics


@click.command("validate")
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="json: the diagnostics as a JSON array on stdout.")
@click.option("--policies", "policies_opt", metavar="DIR", default=None,
              help="Also compile the Rego policies in DIR [env CONVCTL_POLICIES; default "
              "policies/ when it exists].")
@click.option("--secrets-dir", envvar="CONVCTL_SECRETS_DIR", default="/run/secrets",
              show_default=True, metavar="DIR",
              help="The agent's secrets folder: accessToken {file: PATH} must be inside it "
              "[env CONVCTL_SECRETS_DIR].")
@account_option
@quiet_option
def command(paths: tuple[str, ...], fmt: str, policies_opt: str | None, secrets_dir: str,
            accounts: tuple[str, ...], quiet: bool) -> None:
    """Check manifests: schema, references, R-rules and the quota of the desired state.

    PATHS are folders (every *.yaml / *.yml inside, recursively) or files; default manifests/.
    The plan policies (policies/ when it exists) must compile too. Exit 0 when valid (warnings
    allowed), 1 when any error was found.

    \b
    Examples:
      convctl validate
      convctl validate manifests/acme --format json
      convctl validate --account acme

    --account NAME checks only that account's Account and events; naming an account no
    manifest mentions is an error (exit 1).
    """
    from reconciler.cli import lifetime

    lifetime.pause_collector()  # before the imports: a short command that frees nothing
    import orjson

    from reconciler.adapters.manifests import load
    from reconciler.core.scope import check_known, make_scope
    from reconciler.core.summary import summarize

    app = App()
    where, scope = list(paths) or ["manifests"], make_scope(accounts)
    with working("Validating " + " ".join(where), quiet=quiet):
        manifests, diags = load(where, secrets_dir=secrets_dir, scope=scope)
    lifetime.keep(manifests, diags)  # never freed: the process ends first (cli/lifetime.py)
    check_known(scope, manifests, None, " ".join(where))
    _check_policies(policies_opt, diags)
    ordered = diags.sorted()
    if fmt == "json":
        app.out(orjson.dumps([d.to_json() for d in ordered], option=orjson.OPT_INDENT_2).decode())
    else:
        for diag in ordered:
            app.err(diag.render())
        app.out(summarize(manifests, diags))
    if diags.has_errors:
        raise click.exceptions.Exit(1)


def _check_policies(option: str | None, diags: Diagnostics) -> None:
    from reconciler.services.policies import load_policies, policies_dir

    directory = policies_dir(option)
    if directory is not None:
        diags.extend(load_policies(directory)[1])
