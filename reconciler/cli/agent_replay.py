"""``convctl agent retry-dead`` with its filters (``services.replay``)."""

from __future__ import annotations

from datetime import UTC, datetime

from reconciler.cli.app import App
from reconciler.errors import UsageError


def _moment(option: str, text: str | None, now: datetime) -> int | None:
    from reconciler.core.timespec import parse_moment

    if text is None:
        return None
    try:
        return int(parse_moment(text, now).timestamp())
    except ValueError as exc:
        raise UsageError(f"{option}: {exc}") from None


def retry_dead_command(*, reason: str | None, events: tuple[str, ...], since: str | None,
                       until: str | None, dry_run: bool, state: str | None,
                       store: str | None) -> None:
    from reconciler.adapters.agentquality import DeadSelection
    from reconciler.services.agent_setup import AgentSettings, open_store
    from reconciler.services.replay import replay

    now = datetime.now(UTC)
    selection = DeadSelection(reason, _event_ids(state, events) if events else None,
                              _moment("--since", since, now), _moment("--until", until, now))
    agent_store = open_store(AgentSettings(state=state, store=store))
    try:
        result = replay(agent_store, selection, now, dry_run=dry_run)
    finally:
        agent_store.close()
    app = App()
    for row in result.rows:
        at = datetime.fromtimestamp(row["eventTime"], UTC).isoformat().replace("+00:00", "Z")
        app.out(f"  {row['eventName']} {row['eventId']} at {at} ({row['network']} {row['target']}, "
                f"{row['reason']})")
    if dry_run and len(result.rows) < result.queued:
        app.out(f"  ... and {result.queued - len(result.rows)} more")
    verb = "Would queue" if dry_run else "Queued"
    text = f"{verb} {result.queued} dead letter(s) again" + (
        f" (reason {reason})." if reason else ".")
    if result.too_old:
        text += (f" Refused {result.too_old} older than their network's window (Meta 7 days, "
                 "LinkedIn and Google Ads 90): they stay dead (the network would reject them).")
    app.out(text)


def _event_ids(state: str | None, refs: tuple[str, ...]) -> tuple[str, ...]:
    from reconciler.adapters.state import open_provider
    from reconciler.services.replay import event_ids

    provider = open_provider(state)
    try:
        return event_ids(provider, refs)
    finally:
        provider.close()


