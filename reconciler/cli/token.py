"""``convctl token create|list|revoke``: bearer tokens of the control plane, in the state
(the SQLite file or the PostgreSQL database)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from reconciler.cli.app import App
from reconciler.cli.options import state_option

if TYPE_CHECKING:
    from reconciler.adapters.state.tokens import TokenStore

SCOPES = ("read", "write", "ingest", "admin")


def _store(state: str | None) -> TokenStore:
    from reconciler.adapters.state import open_token_store

    return open_token_store(state)


@click.group("token")
def command() -> None:
    """Manage the control plane's bearer tokens (stored as SHA-256 hashes only).

    Scopes: read (plan), write (apply; includes read), ingest (agent endpoints), admin.

    \b
    Examples:
      convctl token create --scope read --name ci-plan
      convctl token list
      convctl token revoke ci-plan
    """


@command.command("create")
@click.option("--scope", "scopes", multiple=True, required=True, type=click.Choice(SCOPES),
              help="A scope to grant (repeatable).")
@click.option("--name", help="A unique name (default token-<id>).")
@state_option
def create(scopes: tuple[str, ...], name: str | None, state: str | None) -> None:
    """Create a token and print it once: it cannot be shown again."""
    store = _store(state)
    try:
        info, secret = store.create(list(scopes), name)
    finally:
        store.close()
    App().out(secret)
    App().err(f"Created token '{info.name}' (id {info.id}, scopes {', '.join(info.scopes)}). "
              "It is shown only this once; store it as a secret (CONVCTL_TOKEN).")


@command.command("list")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="Output format (json carries a format_version).")
@state_option
def list_(fmt: str, state: str | None) -> None:
    """List tokens (names, ids, scopes, dates; never the tokens)."""
    store = _store(state)
    try:
        tokens = store.list()
    finally:
        store.close()
    app = App()
    if fmt == "json":
        import orjson

        rows = [{"id": t.id, "name": t.name, "scopes": list(t.scopes),
                 "createdAt": t.created_at.isoformat(),
                 "revokedAt": t.revoked_at.isoformat() if t.revoked_at else None}
                for t in tokens]
        app.out(orjson.dumps({"format_version": "1", "tokens": rows},
                             option=orjson.OPT_INDENT_2).decode())
        return
    app.out(f"{'ID':<9} {'NAME':<24} {'SCOPES':<24} {'CREATED':<20} STATUS")
    for t in tokens:
        status = f"revoked {t.revoked_at:%Y-%m-%d %H:%M}" if t.revoked_at else "active"
        app.out(f"{t.id:<9} {t.name:<24} {','.join(t.scopes):<24} "
                f"{t.created_at:%Y-%m-%d %H:%M:%S}  {status}")


@command.command("revoke")
@click.argument("name_or_id")
@state_option
def revoke(name_or_id: str, state: str | None) -> None:
    """Revoke the active token with this name or id (effective at once)."""
    store = _store(state)
    try:
        info = store.revoke(name_or_id)
    finally:
        store.close()
    App().err(f"Revoked token '{info.name}' (id {info.id}).")
