"""``convctl schema [--check]``: write or verify the JSON Schema generated from the models."""

from __future__ import annotations

from pathlib import Path

import click

from reconciler.cli.app import App


@click.command("schema")
@click.option("--check", is_flag=True, help="Exit 1 if the files differ from the models.")
@click.option("--dir", "directory", type=click.Path(file_okay=False), default="schemas",
              show_default=True, help="Folder holding the schema files.")
def command(check: bool, directory: str) -> None:
    """Write the JSON Schema of the manifests (one file per kind plus a combined one).

    \b
    Examples:
      convctl schema            # regenerate schemas/
      convctl schema --check    # in CI: fail when schemas/ is stale
    """
    from reconciler.core.schema import schema_files

    app = App()
    folder = Path(directory)
    stale = []
    for name, text in schema_files().items():
        path = folder / name
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == text:
            continue
        stale.append(name)
        if not check:
            folder.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    if check and stale:
        app.err(f"error: {', '.join(stale)} in {folder}/ differ from the models; "
                "run `convctl schema` and commit the result")
        raise click.exceptions.Exit(1)
    verb = "up to date" if not stale else ("written: " + ", ".join(stale))
    app.out(f"schemas {verb}")
