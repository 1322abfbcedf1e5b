"""``convctl history``: the audit log, newest first (issue 14 item 4)."""

from __future__ import annotations

import click

from reconciler.cli.app import App
from reconciler.cli.options import state_option

FORMAT_VERSION = "1"


@click.command("history")
@click.option("--account", default=None, metavar="NAME",
              help="Only what touched this account (and whole-state operations).")
@click.option("--limit", type=click.IntRange(1, 1000), default=20, show_default=True,
              help="How many entries.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="json: with format_version and each apply's steps.")
@state_option
def command(account: str | None, limit: int, fmt: str, state: str | None) -> None:
    """Show the audit log: applies (with each step's outcome), imports, event toggles and
    deletes, unlocks and token changes; who (OS user, or token:NAME through the control
    plane), when, the plan's hash and the git commit (CONVCTL_GIT_SHA / GITHUB_SHA).

    An apply that was cut off (killed, crashed) shows as interrupted, with the steps it had
    journaled.

    \b
    Examples:
      convctl history
      convctl history --account acme --limit 5 --format json
    """
    import orjson

    from reconciler.adapters.state import open_provider
    from reconciler.services.history import history

    app = App()
    provider = open_provider(state)
    try:
        entries = history(provider, account=account, limit=limit)
    finally:
        provider.close()
    if fmt == "json":
        doc = {"format_version": FORMAT_VERSION, "entries": [e.to_json() for e in entries]}
        app.out(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode())
        return
    if not entries:
        app.out("No history yet.")
    for entry in entries:
        rec = entry.record
        scope = ",".join(rec.accounts) if rec.accounts else "*"
        what = f"{rec.action} {rec.target}".strip()
        extra = "".join(f" {k}={v[:12]}" for k, v in (("plan", rec.plan_hash),
                                                       ("commit", rec.git_sha)) if v)
        app.out(f"{entry.started_at:%Y-%m-%d %H:%M:%S} {rec.id} {what} [{scope}] by "
                f"{rec.actor}: {entry.outcome}{f' ({rec.detail})' if rec.detail else ''}{extra}")
        for step in entry.steps:
            app.out(f"    [{step['index']}] {step['description']}: {step['status']}")
