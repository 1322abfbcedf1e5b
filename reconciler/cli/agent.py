"""``convctl agent ...``: the sync agent (product.md §5): ingest, run, status, retry-dead,
quality."""

from __future__ import annotations

import logging
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from reconciler.cli import agent_quality
from reconciler.cli.agent_coverage import coverage_lines
from reconciler.cli.app import App
from reconciler.cli.logs import log_options, setup_logging
from reconciler.cli.options import state_option
from reconciler.cli.progress import quiet_option, working

_STORE_HELP = ("Agent store: a SQLite file or a postgresql:// database that several agents "
               "share [env CONVCTL_AGENT_STORE; default: the SQLite state file or the "
               "PostgreSQL state database, else .convctl/agent.db].")


def store_option(func: Any) -> Any:
    return click.option("--store", envvar="CONVCTL_AGENT_STORE", default=None, metavar="PATH|URL",
                        help=_STORE_HELP)(func)


@click.group("agent")
def command() -> None:
    """Send CRM events (form submissions, lifecycle-stage changes) to the ad networks.

    \b
    Examples:
      convctl agent ingest backfill.jsonl
      convctl agent run --once --dry-run requests.jsonl
      ACME_META_TOKEN=... convctl agent run
      convctl agent status --format json
      convctl agent retry-dead --reason rejected
      convctl agent retry-dead --event acme/demo-request --since 24h --dry-run
      convctl agent quality --account acme
    """


@command.command("ingest")
@click.argument("file", type=click.Path(dir_okay=False))
@state_option
@store_option
@quiet_option
def ingest(file: str, state: str | None, store: str | None, quiet: bool) -> None:
    """Store the events and contacts of a JSONL FILE in the inbox (durably, deduplicated).

    One JSON object per line (not the HTTP form shape); unknown fields are refused:

    \b
      {"type": "contact", "portalId": 1, "contactId": "7", "metaLeadId": "...",
       "adInteraction": false, "properties": {"email": "...", ...}}
      {"type": "lifecycleStageChange", "portalId": 1, "contactId": "7",
       "stage": "customer", "occurredAt": "2026-11-20T14:03:00Z"}
      {"type": "formSubmission", "portalId": 1, "formId": "...", "submissionId": "...",
       "contactId": "7", "submittedAt": "2026-11-20T14:05:31+01:00", "pageUrl": "...",
       "ipAddress": "...", "userAgent": "..."}

    Times need a zone: ISO 8601 with Z or an offset, or Unix seconds or milliseconds. Every
    field and time format, with examples: docs/backfill.md.

    Bad lines are reported with their line number and skipped; the rest is ingested (exit 1
    when any line was bad).
    """
    from reconciler.services.agent_ingest import ingest_jsonl
    from reconciler.services.agent_setup import AgentSettings, open_store

    app = App()
    agent_store = open_store(AgentSettings(state=state, store=store))
    try:
        with working(f"Ingesting {file}", quiet=quiet):
            report = ingest_jsonl(agent_store, file)
    finally:
        agent_store.close()
    for number, message in report.errors:
        app.err(f"{file}:{number}: {message}")
    app.out(f"Ingested {report.stored} event(s) and {report.contacts} contact(s) from "
            f"{report.lines} line(s); {report.duplicates} duplicate(s) dropped, "
            f"{len(report.errors)} bad line(s) skipped.")
    if report.dropped:
        app.out("Invalid fields dropped (the events kept): " + ", ".join(
            f"{reason} {n}" for reason, n in sorted(report.dropped.items())) + ".")
    if report.errors:
        raise click.exceptions.Exit(1)


def run_options(func: Any) -> Any:
    """The agent's run settings, shared by `agent run` and `serve` (each names its env var)."""
    for option in reversed(_RUN_OPTIONS):
        func = option(func)
    return func


_RUN_OPTIONS = [
    click.option("--meta-base-url", "--graph-url", "meta_base_url",
                 envvar="CONVCTL_META_BASE_URL", default="https://graph.facebook.com",
                 show_default=True, help="Meta's Graph API base URL [env CONVCTL_META_BASE_URL]."),
    click.option("--linkedin-url", "linkedin_url", envvar="CONVCTL_LINKEDIN_URL",
                 default="https://api.linkedin.com", show_default=True,
                 help="LinkedIn's REST API base URL (Conversions API) [env CONVCTL_LINKEDIN_URL]."),
    click.option("--google-url", "google_url", envvar="CONVCTL_GOOGLE_URL",
                 default="https://datamanager.googleapis.com", show_default=True,
                 help="Google's Data Manager API base URL (Google Ads conversions) [env "
                 "CONVCTL_GOOGLE_URL]."),
    click.option("--api-version", envvar="CONVCTL_META_API_VERSION", default="v25.0",
                 show_default=True, help="Graph API version [env CONVCTL_META_API_VERSION]."),
    click.option("--test-event-code", envvar="CONVCTL_TEST_EVENT_CODE", default=None,
                 help="Route events to Events Manager's Test Events "
                 "[env CONVCTL_TEST_EVENT_CODE]. Such events still count: set it deliberately."),
    click.option("--batch-size", envvar="CONVCTL_AGENT_BATCH_SIZE", default=1000,
                 type=click.IntRange(1, 5000), show_default=True,
                 help="Events per request, at most each network's own limit (Meta 1,000, "
                 "Google Ads 2,000, LinkedIn 5,000) [env CONVCTL_AGENT_BATCH_SIZE]."),
    click.option("--poll-interval", envvar="CONVCTL_AGENT_POLL_INTERVAL", default=1.0,
                 type=click.FloatRange(0.01, 3600), show_default=True,
                 help="Seconds between idle cycles [env CONVCTL_AGENT_POLL_INTERVAL]."),
    click.option("--retention-days", envvar="CONVCTL_AGENT_RETENTION_DAYS", default=30,
                 type=click.IntRange(min=0), show_default=True,
                 help="Keep processed inbox rows and sent outbox rows this many days; 0 keeps "
                 "them all, else at least 8 (R16) [env CONVCTL_AGENT_RETENTION_DAYS]."),
    click.option("--timeout", envvar="CONVCTL_META_TIMEOUT", default=30.0,
                 type=click.FloatRange(0.1, 600), show_default=True,
                 help="Request timeout of every network's API, seconds [env "
                 "CONVCTL_META_TIMEOUT]."),
    click.option("--secrets-dir", envvar="CONVCTL_SECRETS_DIR", default="/run/secrets",
                 show_default=True, metavar="DIR",
                 help="Folder of the token files accessToken {file: PATH} may name; nothing "
                 "outside it is read, symlinks resolved [env CONVCTL_SECRETS_DIR]."),
    click.option("--contacts", envvar="CONVCTL_CONTACT_SOURCE", default="embedded",
                 type=click.Choice(["embedded", "hubspot"]), show_default=True,
                 help="Contact source [env CONVCTL_CONTACT_SOURCE]; hubspot reads "
                 "CONVCTL_HUBSPOT_TOKEN and CONVCTL_HUBSPOT_BASE_URL."),
    click.option("--lease-seconds", envvar="CONVCTL_AGENT_LEASE_SECONDS", default=60.0,
                 type=click.FloatRange(1, 3600), show_default=True,
                 help="On a PostgreSQL store, how long an agent's claim lasts at most: a "
                 "killed agent's work goes to the others at once, a stalled one's after this "
                 "[env CONVCTL_AGENT_LEASE_SECONDS]."),
]


def agent_settings(state: str | None, store: str | None, dry_run: str | None,
                   **run: Any) -> Any:
    """``AgentSettings`` from the state/store options and the ``run_options`` values."""
    import os

    from reconciler.services.agent_setup import HUBSPOT_BASE_URL, AgentSettings

    return AgentSettings(
        state=state, store=store, dry_run=Path(dry_run) if dry_run else None,
        hubspot_base_url=os.environ.get("CONVCTL_HUBSPOT_BASE_URL") or HUBSPOT_BASE_URL, **run)


def freeze_startup_heap() -> None:
    """For a long-running process: move what start-up allocated (modules, models, the app)
    out of the cyclic collector's reach, so its full passes stop rescanning it (a few % of
    the agent's CPU)."""
    import gc

    gc.collect()
    gc.freeze()


@command.command("run")
@click.option("--once", is_flag=True, help="Process the inbox and make one delivery pass.")
@click.option("--role", type=click.Choice(["all", "process", "deliver"]), default="all",
              show_default=True, envvar="CONVCTL_AGENT_ROLE",
              help="Do both halves, or only match and queue (process) or only send (deliver): "
              "run one of each to use two cores on one store [env CONVCTL_AGENT_ROLE].")
@click.option("--dry-run", "dry_run", type=click.Path(dir_okay=False), default=None,
              metavar="FILE", help="Append each request as a JSON line to FILE instead of "
              "sending. Works on a copy of the store taken at start: the store is left "
              "exactly as it was; no token is read or written.")
@run_options
@state_option
@store_option
@log_options
@quiet_option
def run(once: bool, role: str, dry_run: str | None, state: str | None, store: str | None,
        log_format: str, log_level: str, quiet: bool, **run_settings: Any) -> None:
    """Match inbox events, queue payloads and deliver them to their networks, until stopped.

    Tokens come from the accessToken reference ({env: NAME} or {file: PATH}) of each account's
    network block. A target (a Meta pixel, ...) that cannot send (token unset, refused by its
    network) is paused and held off, and a contact source that refuses the agent holds the
    inbox off: `agent status` says why. SIGTERM or Ctrl-C stops after the current cycle; a
    kill -9 loses nothing (events are re-sent with the same event id, which every network
    deduplicates).
    """
    from reconciler.services.agent_setup import open_agent

    setup_logging(log_format, log_level)
    handle = open_agent(agent_settings(state, store, dry_run, role=role, **run_settings))
    _stop_after_cycle(handle.agent.stop)
    if not once:
        freeze_startup_heap()
        logging.getLogger("reconciler.agent").info(
            "agent running (role %s; polls every %g s)", role, handle.agent.config.poll_interval)
    try:
        with working("Processing and delivering (one pass)", quiet=quiet or not once):
            handle.agent.run(once=once)
        if handle.dry_run is not None:
            App().out(f"Dry run: {handle.dry_run.requests} request(s) with "
                      f"{handle.dry_run.events} event(s) written to {dry_run}; the store is "
                      "left as it was.")
        elif once:
            App().out(status_text(handle.agent.status().as_json()))
    finally:
        handle.close()


@command.command("status")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="Output format.")
@state_option
@store_option
def status(fmt: str, state: str | None, store: str | None) -> None:
    """Counts per state and per target (with its network), skip reasons, dead-letter reasons,
    paused targets, and the match-key coverage of each event over the last 24 hours and 7
    days."""
    import orjson

    from reconciler.services.agent import agent_status
    from reconciler.services.agent_setup import AgentSettings, open_store

    agent_store = open_store(AgentSettings(state=state, store=store))
    try:
        data = agent_status(agent_store, events=_live_events(state)).as_json()
        data["recentDeadLetters"] = agent_store.dead_letters(20)
    finally:
        agent_store.close()
    if fmt == "json":
        App().out(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode())
    else:
        App().out(status_text(data))


@command.command("retry-dead")
@click.option("--reason", default=None, metavar="CODE",
              help="Only dead letters with this reason (e.g. rejected, expired, disabled).")
@click.option("--event", "events", multiple=True, metavar="ACCOUNT/NAME",
              help="Only this conversion event's dead letters (repeatable).")
@click.option("--since", default=None, metavar="WHEN",
              help="Only events that happened at or after WHEN: ISO 8601 with a zone "
              "(2026-11-20T14:00:00Z) or a duration back from now (24h, 90m, 3d).")
@click.option("--until", default=None, metavar="WHEN",
              help="Only events that happened before WHEN (same forms as --since).")
@click.option("--dry-run", is_flag=True,
              help="List what would be queued again; change nothing.")
@state_option
@store_option
def retry_dead(reason: str | None, events: tuple[str, ...], since: str | None,
               until: str | None, dry_run: bool, state: str | None, store: str | None) -> None:
    """Queue dead letters again; the next `agent run` re-checks and sends them.

    Events older than their network's window (Meta's 7 days, LinkedIn's and Google's 90, less
    the agent's 1-hour margin) would be refused: they are not queued, stay dead, and their
    count is printed.
    """
    from reconciler.cli.agent_replay import retry_dead_command

    retry_dead_command(reason=reason, events=events, since=since, until=until,
                       dry_run=dry_run, state=state, store=store)


@command.command("resume")
@click.argument("target")
@state_option
@store_option
def resume(target: str, state: str | None, store: str | None) -> None:
    """Resume sending for a TARGET paused by a token, permission or API version error: a Meta
    pixel id, a LinkedIn conversion rule urn or a Google CUSTOMER/ACTION (as `agent status`
    shows it)."""
    from reconciler.services.agent_setup import AgentSettings, open_store

    agent_store = open_store(AgentSettings(state=state, store=store))
    try:
        paused = agent_store.paused_targets().get(target)
        resumed = agent_store.resume_target(target)
        network = paused.destination if paused else next(
            (n for n, t in agent_store.status().targets if t == target), None)
    finally:
        agent_store.close()
    name = (_target_name(network, target) if network else
            f"Pixel {target}" if target.isdigit() else f"Target {target}")
    App().out(f"{name} resumed." if resumed else f"{name} was not paused.")


def _live_events(state: str | None) -> Any:
    """The live events (to name events in the coverage), or None if the state is unreadable."""
    from reconciler.adapters.state import open_provider
    from reconciler.errors import ConvctlError
    from reconciler.services.coverage import live_events_or_none

    try:
        provider = open_provider(state)
    except ConvctlError:
        return None
    try:
        return live_events_or_none(provider.list_events)
    finally:
        provider.close()


command.add_command(agent_quality.quality)


def status_text(data: dict[str, Any]) -> str:
    inbox, outbox = data["inbox"], data["outbox"]
    lines = [f"Inbox:  {inbox['new']} new, {inbox['processed']} processed",
             f"Outbox: {outbox['queued']} queued, {outbox['sent']} sent, {outbox['dead']} dead"]
    for target, counts in sorted(data["targets"].items()):
        lines.append(f"{_target_name(counts['network'], target)}: {counts['queued']} queued, "
                     f"{counts['sent']} sent, {counts['dead']} dead")
    for target, info in sorted(data["paused"].items()):
        lines.append(f"{_target_name(info.get('network', 'meta'), target)}: PAUSED since "
                     f"{info['since']} ({info['reason']}): {info['message']}")
    for target, info in sorted(data.get("held", {}).items()):
        lines.append(f"{target.capitalize()} processing: HELD OFF since {info['since']} "
                     f"({info['reason']}): {info['message']}")
    lines += _section("Skipped", data["skips"]) + _section("Dead letters", data["deadLetters"])
    lines += _section("Dropped at ingest", data.get("droppedFields", {}))
    lines += coverage_lines(data.get("coverage", []))
    return "\n".join(lines)


def _target_name(network: str, target: str) -> str:
    """``Pixel 123...`` for Meta (as before networks), ``LinkedIn target urn:...`` else."""
    if network == "meta":
        return f"Pixel {target}"
    from reconciler.core.networks import rules_for

    try:
        label = rules_for(network).label
    except ImportError:  # a network this convctl does not know (a newer agent's rows)
        label = network
    return f"{label} target {target}"


def _section(title: str, counts: dict[str, int]) -> list[str]:
    if not counts:
        return []
    width = max(len(reason or "-") for reason in counts)
    return [f"{title}:"] + [f"  {reason or '-':<{width}}  {n}"
                            for reason, n in sorted(counts.items(), key=lambda kv: kv[0] or "")]


def _stop_after_cycle(stop: Callable[[], None]) -> None:
    """SIGTERM, or a first Ctrl-C, ends the agent after its current cycle (exit 0); a second
    Ctrl-C interrupts it at once (exit 130: what was not settled is sent again on the next
    run, under the same event ids)."""
    def handler(signum: int, _frame: object) -> None:
        stop()
        if signum == signal.SIGINT:
            signal.signal(signal.SIGINT, signal.default_int_handler)

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
