"""``convctl schema [--check]``: write or verify the JSON Schema generated from the models."""

from __future__ import annotations

from pathlib import Path

import click

from reconciler.cli.app import App


@click.command("schema")
@click.option("--check", is_flag=True,
              help="Exit 1 if the files are missing or differ from the models.")
@click.option("--dir", "directory", type=click.Path(file_okay=False), default="schemas",
              show_default=True, help="Folder holding the schema files.")
@click.option("--reference", is_flag=True,
              help="Also write (with --check: check) docs/manifest-reference.md, the manifest "
              "reference in markdown generated from the field descriptions.")
def command(check: bool, directory: str, reference: bool) -> None:
    """Write the JSON Schema of the manifests (one file per kind plus a combined one).

    \b
    Examples:
      convctl schema                        # regenerate schemas/
      convctl schema --check                # in CI: fail when schemas/ is stale
      convctl schema --reference --check    # also docs/manifest-reference.md
    """
    from reconciler.core.schema import schema_files

    app = App()
    folder = Path(directory)
    files = {folder / name: text for name, text in schema_files().items()}
    if reference:
        from reconciler.core.reference import REFERENCE_PATH, reference_markdown

        files[Path(REFERENCE_PATH)] = reference_markdown()
    stale: list[str] = []
    missing: list[str] = []
    for path, text in files.items():
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == text:
            continue
        (missing if current is None else stale).append(path.as_posix())
        if not check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    if check and (stale or missing):
        fix = "convctl schema --reference" if reference else "convctl schema"
        problems = [f"{', '.join(names)} {verb}" for names, verb in
                    ((missing, "missing"), (stale, "differ from the models")) if names]
        app.err(f"error: {'; '.join(problems)}; run `{fix}` and commit the result")
        raise click.exceptions.Exit(1)
    stale += missing
    verb = "up to date" if not stale else ("written: " + ", ".join(stale))
    app.out(f"schemas {verb}")
