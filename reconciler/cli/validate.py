"""``convctl validate [PATH...]``: offline checks of the manifests (product.md §3)."""

from __future__ import annotations

import click

from reconciler.cli.app import App


@click.command("validate")
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="json: the diagnostics as a JSON array on stdout.")
@click.option("--secrets-dir", envvar="CONVCTL_SECRETS_DIR", default="/run/secrets",
              show_default=True, metavar="DIR",
              help="The agent's secrets folder: accessToken {file: PATH} must be inside it "
              "[env CONVCTL_SECRETS_DIR].")
def command(paths: tuple[str, ...], fmt: str, secrets_dir: str) -> None:
    """Check manifests: schema, references, R-rules and the quota of the desired state.

    PATHS are folders (every *.yaml / *.yml inside, recursively) or files; default manifests/.
    Exit 0 when valid (warnings allowed), 1 when any error was found.

    \b
    Examples:
      convctl validate
      convctl validate manifests/acme.yaml --format json
    """
    import orjson

    from reconciler.adapters.manifests import load
    from reconciler.core.summary import summarize

    app = App()
    manifests, diags = load(list(paths) or ["manifests"], secrets_dir=secrets_dir)
    ordered = diags.sorted()
    if fmt == "json":
        app.out(orjson.dumps([d.to_json() for d in ordered], option=orjson.OPT_INDENT_2).decode())
    else:
        for diag in ordered:
            app.err(diag.render())
        app.out(summarize(manifests, diags))
    if diags.has_errors:
        raise click.exceptions.Exit(1)
