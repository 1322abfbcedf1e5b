"""``convctl serve``: the control plane (product.md §4) over an embedded SQLite state, with the
sync agent's ingest endpoints and, unless ``--no-agent``, the agent itself (product.md §5)."""

from __future__ import annotations

import logging
import os
from typing import Any

import click

from reconciler.cli.agent import agent_settings, freeze_startup_heap, run_options
from reconciler.cli.logs import log_options, setup_logging
from reconciler.cli.options import state_option

SECRET_ENV = "CONVCTL_HUBSPOT_CLIENT_SECRET"
UI_KEY_ENV = "CONVCTL_UI_SESSION_KEY"


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, envvar="CONVCTL_HOST",
              help="Address to bind [env CONVCTL_HOST]. Non-loopback needs TLS or --insecure.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535),
              envvar="CONVCTL_PORT", help="Port to listen on [env CONVCTL_PORT].")
@state_option
@click.option("--tls-cert", type=click.Path(exists=True, dir_okay=False),
              envvar="CONVCTL_TLS_CERT", help="TLS certificate (PEM) [env CONVCTL_TLS_CERT].")
@click.option("--tls-key", type=click.Path(exists=True, dir_okay=False),
              envvar="CONVCTL_TLS_KEY", help="TLS private key (PEM) [env CONVCTL_TLS_KEY].")
@click.option("--insecure", is_flag=True,
              help="Allow plain HTTP on a non-loopback address (e.g. behind a TLS proxy).")
@click.option("--no-agent", is_flag=True,
              help="Do not run the sync agent: the ingest endpoints only store events.")
@click.option("--max-body-bytes", default=1 << 20, show_default=True,
              type=click.IntRange(1024), help="Largest request body accepted (413 above).")
@click.option("--public-url", envvar="CONVCTL_PUBLIC_URL", default=None, metavar="URL",
              help="Public base URL HubSpot calls, used to check webhook signatures behind a "
              "proxy [env CONVCTL_PUBLIC_URL; default: the URL the server sees].")
@click.option("--hubspot-legacy-signatures", is_flag=True,
              envvar="CONVCTL_HUBSPOT_LEGACY_SIGNATURES",
              help="Also accept v1/v2 webhook signatures (no timestamp: replayable) "
              "[env CONVCTL_HUBSPOT_LEGACY_SIGNATURES].")
@click.option("--dry-run", "dry_run", type=click.Path(dir_okay=False), default=None,
              metavar="FILE", help="The agent appends each request to FILE instead of sending.")
@click.option("--forwarded-allow-ips", envvar="CONVCTL_FORWARDED_ALLOW_IPS", default=None,
              metavar="IPS", help="Proxies (comma-separated IPs, or *) whose X-Forwarded-For "
              "and X-Forwarded-Proto are trusted [env CONVCTL_FORWARDED_ALLOW_IPS; default: "
              "none, the headers are ignored].")
@log_options
@run_options
def command(host: str, port: int, state: str | None, tls_cert: str | None,
            tls_key: str | None, insecure: bool, no_agent: bool, max_body_bytes: int,
            public_url: str | None, hubspot_legacy_signatures: bool, dry_run: str | None,
            forwarded_allow_ips: str | None, log_format: str, log_level: str,
            **run: Any) -> None:
    """Serve the live state over HTTP for `convctl plan/apply --state http(s)://HOST:PORT`,
    take CRM events in and run the sync agent.

    The state is a SQLite file or a PostgreSQL database (several servers may share one);
    its tokens come from `convctl token create`. Clients send
    `Authorization: Bearer <token>` (CONVCTL_TOKEN). Binds loopback only unless --tls-cert and
    --tls-key, or --insecure, are given. SIGTERM or Ctrl-C stops accepting connections, lets
    in-flight requests finish, stops the agent after its current batch and exits 0. Probes:
    /livez, /readyz (database, schema, not shutting down), /healthz; metrics at /metrics.
    The dashboard is at /ui (log in with a read token); replicas share its sessions when
    they share CONVCTL_UI_SESSION_KEY.

    HubSpot webhooks (POST /v1/webhooks/hubspot) need the app's client secret in
    CONVCTL_HUBSPOT_CLIENT_SECRET (never on the command line); form submissions
    (POST /v1/ingest/forms) need a token with the ingest scope. The agent options are those
    of `convctl agent run`.

    \b
    Examples:
      convctl token create --scope write --name ci-apply
      convctl serve --port 8080
      CONVCTL_HUBSPOT_CLIENT_SECRET=... convctl serve --public-url https://hooks.example.com
      convctl serve --host 0.0.0.0 --tls-cert cert.pem --tls-key key.pem --no-agent
    """
    from reconciler.adapters.state import is_postgres, resolve_url, sqlite_path
    from reconciler.server.run import check_bind

    check_bind(host, tls_cert, tls_key, insecure)  # before the heavy imports: fails fast
    url = resolve_url(state)
    if not is_postgres(url):
        sqlite_path(url)
    from reconciler.server.ingest import WebhookSettings, check_public_url

    webhooks = WebhookSettings(
        client_secret=os.environ.get(SECRET_ENV, "").strip() or None,
        public_url=check_public_url(public_url) if public_url else None,
        allow_legacy=hubspot_legacy_signatures)
    settings = agent_settings(url, None, dry_run, **run)
    setup_logging(log_format, log_level)
    _serve(url, webhooks, None if no_agent else settings, host, port, tls_cert, tls_key,
           max_body_bytes, {"log_level": log_level, "forwarded_allow_ips": forwarded_allow_ips})


def _serve(url: str, webhooks: Any, settings: Any, host: str, port: int,
           tls_cert: str | None, tls_key: str | None, max_body_bytes: int,
           server_options: dict[str, Any]) -> None:
    from reconciler.adapters.state import open_provider, open_token_store, redact_url
    from reconciler.server.app import create_app
    from reconciler.server.health import Readiness
    from reconciler.server.run import serve
    from reconciler.services.agent_loop import AgentLoop, Stopper
    from reconciler.services.agent_setup import AgentHandle, open_agent, open_store

    provider = open_provider(url)
    closers = [provider.close]
    handle: AgentHandle | None = None
    try:
        tokens = open_token_store(url)
        closers.append(tokens.close)
        inbox = open_store(settings or agent_settings(url, None, None))
        closers.append(inbox.close)
        loop = None
        if settings is not None:
            stopper = Stopper()
            handle = open_agent(settings, sleep=stopper.sleep)
            loop = AgentLoop(handle.agent, stopper)
        app = create_app(provider, tokens, max_body_bytes=max_body_bytes, inbox=inbox,
                         webhooks=webhooks, background=loop,
                         readiness=Readiness(_schema_check(url)),
                         ui_session_key=os.environ.get(UI_KEY_ENV, "").encode() or None)
        scheme = "https" if tls_cert else "http"
        agent = "with the agent" if loop else "without the agent"
        hooks = "on" if webhooks.client_secret else "off (no CONVCTL_HUBSPOT_CLIENT_SECRET)"
        logging.getLogger("reconciler.serve").info(
            "convctl control plane on %s://%s:%d (state %s; %s; webhooks %s)", scheme, host,
            port, redact_url(url), agent, hooks)
        freeze_startup_heap()
        serve(app, host, port, tls_cert=tls_cert, tls_key=tls_key, **server_options)
    finally:
        if handle is not None:
            handle.close()
        for close in reversed(closers):
            close()


def _schema_check(url: str) -> Any:
    """The readiness probe's schema check for the state at ``url`` (read-only, no migration)."""
    from reconciler.adapters.state import is_postgres, sqlite_path

    if is_postgres(url):
        from reconciler.adapters.state.admin import status
        from reconciler.errors import ConvctlError

        def postgres_problem() -> str | None:
            try:
                found = status(url)
            except ConvctlError as exc:
                return f"cannot read the schema version: {exc}"
            return None if found.up_to_date else (
                f"schema version {found.schema_version}, this convctl needs "
                f"{found.latest_version}")
        return postgres_problem
    from reconciler.adapters.state.sqlite_schema import schema_problem

    path = sqlite_path(url)
    return lambda: schema_problem(path)
