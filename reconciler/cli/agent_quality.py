"""``convctl agent quality``: Meta's Event Match Quality per pixel beside our coverage."""

from __future__ import annotations

from typing import Any

import click

from reconciler.cli.agent_coverage import percent
from reconciler.cli.app import App
from reconciler.cli.options import state_option


@click.command("quality")
@click.option("--account", default=None, metavar="NAME", help="Only this account's pixel.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="Output format.")
@click.option("--meta-base-url", envvar="CONVCTL_META_BASE_URL",
              default="https://graph.facebook.com", show_default=True,
              help="Graph API base URL [env CONVCTL_META_BASE_URL].")
@click.option("--api-version", envvar="CONVCTL_META_API_VERSION", default="v25.0",
              show_default=True, help="Graph API version [env CONVCTL_META_API_VERSION].")
@click.option("--timeout", envvar="CONVCTL_META_TIMEOUT", default=30.0,
              type=click.FloatRange(0.1, 600), show_default=True,
              help="Graph API request timeout, seconds [env CONVCTL_META_TIMEOUT].")
@state_option
@click.option("--store", envvar="CONVCTL_AGENT_STORE", default=None, metavar="PATH",
              help="Agent store file [env CONVCTL_AGENT_STORE; default: the SQLite state "
              "file, else .convctl/agent.db].")
def quality(account: str | None, fmt: str, meta_base_url: str, api_version: str,
            timeout: float, state: str | None, store: str | None) -> None:
    """Meta's own match score (Dataset Quality API) for each pixel, beside our coverage.

    Reads each account's token as the agent does (its accessToken reference). For each web
    event name Meta reports: its Event Match Quality (out of 10), its per-key feedback and
    diagnostics, next to the share of our sent events (last 7 days) that carried each key.
    Meta scores web events only: lifecycle-stage (CRM) events are listed apart.
    """
    import orjson

    from reconciler.adapters.meta_quality import DatasetQualityClient
    from reconciler.adapters.secrets import resolve_secret
    from reconciler.adapters.state import open_provider
    from reconciler.services.agent_setup import AgentSettings, open_store
    from reconciler.services.quality import read_quality

    provider = open_provider(state)
    agent_store = open_store(AgentSettings(state=state, store=store))
    client = DatasetQualityClient(meta_base_url, api_version, timeout=timeout)
    try:
        report = read_quality(provider, agent_store, client, resolve_secret, account)
    finally:
        client.close()
        agent_store.close()
        provider.close()
    if fmt == "json":
        App().out(orjson.dumps({"accounts": [p.to_json() for p in report]},
                               option=orjson.OPT_INDENT_2).decode())
    else:
        App().out("\n".join(line for pixel in report for line in pixel_lines(pixel)))


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:g}%"


def pixel_lines(pixel: Any) -> list[str]:
    lines = [f"{pixel.account} (pixel {pixel.pixel_id}):"]
    if not pixel.events:
        lines.append("  Meta reports no web events for this pixel yet.")
    for event in pixel.events:
        lines += _event_lines(event)
    if pixel.crm_events:
        lines.append("  CRM events (Meta scores web events only): " + ", ".join(
            pixel.crm_events))
    return lines


def _event_lines(event: Any) -> list[str]:
    from reconciler.core.coverage import MATCH_KEYS

    meta = event.meta
    score = "no score from Meta" if meta is None or meta.composite_score is None else (
        f"Meta's Event Match Quality {meta.composite_score:g}/10")
    lines = [f"  {event.event_name}: {score}"
             + (f"; event coverage {_pct(meta.event_coverage)}" if meta and
                meta.event_coverage is not None else "")]
    ours = ", ".join(event.our_events) or "none"
    lines.append(f"    our events: {ours}; {event.ours.sent} sent in 7 d")
    theirs = event.meta_keys()
    keys = [k for k in MATCH_KEYS if k in theirs or event.ours.count(k)]
    keys += sorted(k for k in theirs if k not in MATCH_KEYS)
    if keys:
        width = max(len(k) for k in keys)
        lines.append(f"    {'key':<{width}}  {'Meta':>6}  ours (7 d)")
        lines += [f"    {k:<{width}}  {_pct(theirs.get(k)):>6}  "
                  f"{percent(event.ours.share(k)) if event.ours.sent else '-'}" for k in keys]
    for d in meta.diagnostics if meta else ():
        share = f" ({_pct(d.percentage)} of events)" if d.percentage is not None else ""
        lines.append(f"    diagnostic: {d.name}: {d.description}{share}"
                     + (f" Fix: {d.solution}" if d.solution else ""))
    return lines
