"""``convctl state status|migrate|copy``: the state store itself (SQLite file or PostgreSQL)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from reconciler.cli.app import App
from reconciler.cli.options import state_option

if TYPE_CHECKING:
    from reconciler.adapters.state.admin import StateStatus


@click.group("state")
def command() -> None:
    """Look after the live-state store: schema version, contents, migrations, moving it.

    \b
    Examples:
      convctl state status
      convctl state migrate --state postgresql://convctl@db.internal/convctl
      convctl state copy sqlite:///.convctl/state.db postgresql://convctl@db.internal/convctl
    """


@command.command("status")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="Output format (json carries a format_version).")
@state_option
def status(fmt: str, state: str | None) -> None:
    """Show the backend, the schema version and what the state holds (changes nothing)."""
    from reconciler.adapters.state import admin

    found = admin.status(state)
    if fmt == "json":
        import orjson

        doc = {"format_version": "1", "backend": found.backend, "state": found.url,
               "schema_version": found.schema_version, "latest_version": found.latest_version,
               "up_to_date": found.up_to_date, "counts": found.counts,
               "lock": found.lock.model_dump(mode="json") if found.lock else None}
        App().out(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode())
        return
    App().out(_render(found))


def _render(found: StateStatus) -> str:
    if found.up_to_date:
        schema = f"{found.schema_version} (up to date)"
    elif found.schema_version < found.latest_version:
        schema = (f"{found.schema_version} (this convctl: {found.latest_version}; "
                  "run `convctl state migrate`)")
    else:
        schema = f"{found.schema_version} (newer than this convctl: {found.latest_version})"
    rows = [("backend", found.backend), ("state", found.url), ("schema version", schema)]
    for table in ("accounts", "events", "tokens", "journal"):
        if table in found.counts:
            label = {"tokens": "active tokens", "journal": "journal steps"}.get(table, table)
            rows.append((label, str(found.counts[table])))
    rows.append(("lock", found.lock.describe() if found.lock else "free"))
    return "\n".join(f"{label:<15} {value}" for label, value in rows)


@command.command("migrate")
@state_option
def migrate(state: str | None) -> None:
    """Bring the state's schema up to this convctl's version (each step in one transaction,
    once, even when several servers start together). Opening a state migrates it too; run this
    ahead of an upgrade to do it at a time of your choosing."""
    from reconciler.adapters.state import admin, redact_url, resolve_url

    before, after = admin.migrate(state)
    shown = redact_url(resolve_url(state))
    if before == after:
        App().out(f"Schema of {shown} is at version {after}: nothing to migrate.")
    else:
        App().out(f"Migrated {shown} from schema version {before} to {after}.")


@command.command("copy")
@click.argument("source", metavar="FROM_URL")
@click.argument("target", metavar="TO_URL")
def copy(source: str, target: str) -> None:
    """Copy the live state FROM_URL into the empty state TO_URL, e.g. the embedded SQLite file
    into PostgreSQL: accounts, events (same ids and versions), tokens (hashes), the apply
    journal and the agent's queues (inbox, outbox with its dead letters, contacts, skip counts,
    paused pixels, holds; stop the agents first). Holds the source's lock while it runs; refuses
    a target that holds anything; reads the copy back and prints the counts it verified. A plan
    against TO_URL shows no changes."""
    from reconciler.adapters.state import redact_url
    from reconciler.adapters.state.snapshot import copy_state

    copied = copy_state(source, target)
    app = App()
    app.out(f"Copied {redact_url(source)} to {redact_url(target)}; read back and verified:")
    for what, count in {**copied.counts(), **copied.agent_rows}.items():
        app.out(f"  {what:<14} {count}")
