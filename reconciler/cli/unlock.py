"""``convctl unlock LOCK_ID``: break a lock left by a dead apply."""

from __future__ import annotations

import click

from reconciler.cli.app import App
from reconciler.cli.options import state_option


@click.command("unlock")
@click.argument("lock_id")
@state_option
def command(lock_id: str, state: str | None) -> None:
    """Release the state lock LOCK_ID (shown in the error of a blocked apply).

    Only break a lock whose holder is gone: an apply still running stops before its next
    write (the rest reported pending).

    \b
    Example:
      convctl unlock 3f9c2a1b7d4e
    """
    from reconciler.adapters.state import open_provider

    provider = open_provider(state)
    try:
        provider.release_lock(lock_id)
    finally:
        provider.close()
    App().out(f"Lock {lock_id} released.")
