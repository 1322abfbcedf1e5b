"""``convctl import [--account NAME] [--out DIR]``: write manifests for live accounts and events."""

from __future__ import annotations

import click

from reconciler.cli.app import App


@click.command("import")
@click.option("--account", "accounts", multiple=True, metavar="NAME",
              help="Only this account (repeatable); default every account.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="manifests",
              show_default=True, help="Folder to write <account>/account.yaml and events.yaml.")
@click.option("--force", is_flag=True, help="Overwrite existing files.")
@click.option("--state", "state_url", envvar="CONVCTL_STATE", show_envvar=True, metavar="URL",
              help="Live state: sqlite:///PATH or http(s)://HOST:PORT "
              "[default sqlite:///.convctl/state.db].")
def command(accounts: tuple[str, ...], out_dir: str, force: bool, state_url: str | None) -> None:
    """Write manifests for the live accounts and their events (adoption).

    One folder per account under --out: account.yaml (the Account) and events.yaml (its
    ConversionEvents, by name), canonically formatted, defaults left out, each starting with a
    `# yaml-language-server: $schema=` line pointing at schemas/convctl.schema.json relative to
    the current folder. Existing files are left alone (nothing is written) unless --force.
    Unmanaged events are adopted: marked as managed and applied as they are, so the written
    manifests plan to no changes and removing one from git later deletes it. Review the files
    and commit them.

    \b
    Examples:
      convctl import --account acme
      convctl import --out adopted --state sqlite:///.convctl/state.db
    """
    from pathlib import Path

    from reconciler.adapters.export import render_files, write_files
    from reconciler.adapters.state import open_provider
    from reconciler.core.export import export_documents, legacy_events
    from reconciler.errors import UsageError
    from reconciler.services.apply import adopt_events
    from reconciler.services.history import audit
    from reconciler.services.locking import LockPolicy, default_holder, hold_lock

    app = App()
    provider = open_provider(state_url)
    try:
        with hold_lock(provider, default_holder(), "import", LockPolicy(), app.err):
            live_accounts = provider.list_accounts()
            known = {a.name for a in live_accounts}
            missing = sorted(set(accounts) - known)
            if missing:
                raise UsageError(f"no such account in the live state: {', '.join(missing)} "
                                 f"(known: {', '.join(sorted(known)) or 'none'})")
            chosen = [a for a in live_accounts if not accounts or a.name in accounts]
            events = [e for a in chosen for e in provider.list_events(a.name)]
            files = export_documents(chosen, events)
            if not files:
                app.err("nothing to import: the live state has no accounts")
                return
            written = write_files(render_files(files, Path(out_dir), Path.cwd()), force=force)
            adopted = adopt_events(provider, events)
            audit(provider, "import", "ok", accounts=tuple(sorted(accounts)) or None,
                  detail=f"{len(chosen)} account(s), {len(events)} event(s), {adopted} adopted")
    finally:
        provider.close()
    for path in written:
        app.out(str(path))
    for ev in legacy_events(events):
        app.err(f"warning: event {ev.account}/{ev.name} uses the legacy API: the next apply "
                "replaces it (R11)")
    app.err(f"imported {len(chosen)} account{'s' if len(chosen) != 1 else ''} and "
            f"{len(events)} event{'s' if len(events) != 1 else ''} into {len(written)} files; "
            f"{adopted} unmanaged event{'s' if adopted != 1 else ''} now managed by convctl")
