"""``convctl fmt [PATH...] [--check] [--diff]``: canonical manifests, comments kept."""

from __future__ import annotations

import click

from reconciler.cli.app import App


@click.command("fmt")
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--check", is_flag=True,
              help="Write nothing; exit 1 and list the files that would change.")
@click.option("--diff", "show_diff", is_flag=True,
              help="Write nothing; print a unified diff of the changes on stdout.")
def command(paths: tuple[str, ...], check: bool, show_diff: bool) -> None:
    """Format manifests canonically, keeping comments.

    Two-space indentation, list items indented under their key, `---` between documents, keys
    in the models' order (apiVersion, kind, metadata, spec, then the spec's fields); quoting,
    flow style ({...}, [...]) and comments stay as written. Files are rewritten in place
    (atomically) and their names printed.

    PATHS are folders (every *.yaml / *.yml inside, recursively) or files; default manifests/.
    Exit 0 when done (or, with --check, when nothing would change); 1 when a file cannot be
    read or parsed (it is left untouched) or, with --check, when a file would change.

    \b
    Examples:
      convctl fmt                 # rewrite manifests/ in place
      convctl fmt --check         # in CI: fail when a manifest is not formatted
      convctl fmt --diff manifests/acme/events.yaml
    """
    import difflib

    from reconciler.adapters.fmt import check_files, write_atomic
    from reconciler.diagnostics import Diagnostics, SourceLocation

    app = App()
    diags = Diagnostics()
    results = check_files(list(paths) or ["manifests"], diags)
    changed = [(path, old, new) for path, old, new in results if old != new]
    for path, old, new in changed:
        if show_diff:
            app.out("".join(difflib.unified_diff(old.splitlines(True), new.splitlines(True),
                                                 f"a/{path}", f"b/{path}")).rstrip("\n"))
        if check:
            app.err(f"would reformat {path}")
        elif not show_diff:
            try:
                write_atomic(path, new)
            except OSError as exc:
                diags.error("E001", f"cannot write file: {exc.strerror}", SourceLocation(path))
                continue
            app.out(path)
    for diag in diags.sorted():
        app.err(diag.render())
    _summary(app, len(changed), len(results) - len(changed), check or show_diff)
    if diags.has_errors or (check and changed):
        raise click.exceptions.Exit(1)


def _summary(app: App, changed: int, unchanged: int, dry: bool) -> None:
    verb = "would be reformatted" if dry else "reformatted"
    app.err(f"{changed} file{'s' if changed != 1 else ''} {verb}, {unchanged} unchanged")
