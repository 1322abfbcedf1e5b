"""``convctl serve``: the control plane (product.md §4) over an embedded SQLite state."""

from __future__ import annotations

import click

from reconciler.cli.options import state_option


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
              help="Serve the API only, without the sync agent's ingest endpoints and worker.")
@click.option("--max-body-bytes", default=1 << 20, show_default=True,
              type=click.IntRange(1024), help="Largest request body accepted (413 above).")
def command(host: str, port: int, state: str | None, tls_cert: str | None,
            tls_key: str | None, insecure: bool, no_agent: bool, max_body_bytes: int) -> None:
    """Serve the live state over HTTP for `convctl plan/apply --state http(s)://HOST:PORT`.

    The state must be a SQLite file; its tokens come from `convctl token create`. Clients send
    `Authorization: Bearer <token>` (CONVCTL_TOKEN). Binds loopback only unless --tls-cert and
    --tls-key, or --insecure, are given. SIGTERM stops accepting connections and lets in-flight
    requests finish. --no-agent: serve the control-plane API without the sync agent (until the
    agent ships, this is what always happens).

    \b
    Examples:
      convctl token create --scope write --name ci-apply
      convctl serve --port 8080
      convctl serve --host 0.0.0.0 --tls-cert cert.pem --tls-key key.pem
    """
    from reconciler.adapters.state import open_provider, resolve_url, sqlite_path
    from reconciler.server.run import check_bind, serve

    check_bind(host, tls_cert, tls_key, insecure)  # before the heavy imports: fails fast
    url = resolve_url(state)
    path = sqlite_path(url)
    from reconciler.adapters.state.tokens import SqliteTokenStore
    from reconciler.server.app import create_app

    provider = open_provider(url)
    tokens = SqliteTokenStore(path)
    try:
        app = create_app(provider, tokens, max_body_bytes=max_body_bytes)
        scheme = "https" if tls_cert else "http"
        click.echo(f"convctl control plane on {scheme}://{host}:{port} (state {url})", err=True)
        serve(app, host, port, tls_cert=tls_cert, tls_key=tls_key)
    finally:
        tokens.close()
        provider.close()
