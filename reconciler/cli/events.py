"""``convctl events list|show|enable|disable|delete``: manage live events directly (R19).

Changes made here are outside git: the next ``convctl plan`` reports them as drift and apply
puts the manifests' intent back. Output is redacted as a plan is (``render.redact``): tokens
masked, control and bidi characters in names escaped.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from reconciler.cli.app import App
from reconciler.cli.options import state_option

if TYPE_CHECKING:
    from reconciler.core.live import LiveEvent


@click.group("events")
def command() -> None:
    """List, show, switch on/off and delete live conversion events (R19)."""


def _trigger(ev: LiveEvent) -> str:
    """The trigger column; a LinkedIn or Google Ads event adds its network and target."""
    lc = ev.spec.trigger.lifecycle_stage_change
    fs = ev.spec.trigger.form_submission
    text = (f"stages: {','.join(lc.stages)}" if lc is not None
            else f"form: {fs.form_id}" if fs is not None else "-")
    if ev.spec.destination != "meta":
        text += f" -> {ev.spec.destination} {ev.spec.target or '-'}"
    return text


LIST_FORMAT_VERSION = "1"


@command.command("list")
@click.option("--account", help="Only this account's events.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="Output format (json carries a format_version).")
@state_option
def list_(account: str | None, fmt: str, state: str | None) -> None:
    """List live events: id, account/name, state, api, trigger (and, for LinkedIn and Google
    Ads events, the network and its conversion rule or action)."""
    from reconciler.adapters.state import open_provider
    from reconciler.render.redact import printable

    app, provider = App(), open_provider(state)
    try:
        events = sorted(provider.list_events(account), key=lambda e: (e.account, e.name))
    finally:
        provider.close()
    if fmt == "json":
        import orjson

        doc = {"format_version": LIST_FORMAT_VERSION, "events": [_row(ev) for ev in events]}
        app.out(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode())
        return
    app.out(f"{'ID':<20} {'EVENT':<40} {'ENABLED':<8} {'API':<9} {'MANAGED':<8} TRIGGER")
    for ev in events:
        app.out(printable(f"{ev.id:<20} {ev.account + '/' + ev.name:<40} "
                          f"{'yes' if ev.spec.enabled else 'no':<8} {ev.api:<9} "
                          f"{'yes' if ev.managed else 'no':<8} {_trigger(ev)}"))


def _row(ev: LiveEvent) -> dict[str, object]:
    lc, fs = ev.spec.trigger.lifecycle_stage_change, ev.spec.trigger.form_submission
    return {"id": ev.id, "account": ev.account, "name": ev.name, "enabled": ev.spec.enabled,
            "api": ev.api, "managed": ev.managed, "drifted": ev.drifted,
            "trigger": "lifecycleStageChange" if lc is not None else "formSubmission",
            "stages": list(lc.stages) if lc is not None else None,
            "formId": fs.form_id if fs is not None else None,
            "stageCount": ev.stage_count, "version": ev.version,
            "createdAt": ev.created_at.isoformat(), "updatedAt": ev.updated_at.isoformat(),
            # LinkedIn / Google Ads only: a Meta event's row is what it was before networks
            **({"network": ev.spec.destination, "target": ev.spec.target}
               if ev.spec.destination != "meta" else {})}


@command.command("show")
@click.argument("ref")
@state_option
def show(ref: str, state: str | None) -> None:
    """Show one event (REF: an id or ACCOUNT/NAME) as JSON, with what it sends to Meta."""
    import orjson

    from reconciler.adapters.state import open_provider
    from reconciler.core.network_rules import destination_of, is_hashed, sent_keys
    from reconciler.core.privacy import effective_options, payload_fields
    from reconciler.render.redact import printable_lines, redact
    from reconciler.services.events import find_event

    provider = open_provider(state)
    try:
        ev = find_event(provider, ref)
        account = next((a for a in provider.list_accounts() if a.name == ev.account), None)
    finally:
        provider.close()
    data = redact(ev.model_dump(mode="json", by_alias=True))
    data["stageCount"], data["drifted"] = ev.stage_count, ev.drifted
    # what leaves per event: the user_data keys and the Limited Data Use fields it sends
    keys, network = sent_keys(data["spec"]), destination_of(data["spec"])[0]
    data["sends"] = {"userData": keys, "hashed": [k for k in keys if is_hashed(k, network)],
                     "dataProcessingOptions": payload_fields(
                         effective_options(ev.spec, account.spec if account else None))}
    text = orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode()
    App().out(printable_lines(text))


def _toggle(ref: str, state: str | None, enabled: bool) -> None:
    from reconciler.adapters.state import open_provider
    from reconciler.render.redact import printable
    from reconciler.services.events import set_enabled

    provider = open_provider(state)
    try:
        ev = set_enabled(provider, ref, enabled)
    finally:
        provider.close()
    word = "on: sending resumes" if enabled else "off: sending stops at once"
    App().out(printable(f"Event {ev.account}/{ev.name} ({ev.id}) switched {word} (R19)."))


@command.command("enable")
@click.argument("ref")
@state_option
def enable(ref: str, state: str | None) -> None:
    """Switch an event's sync on (R19); events while it was off are not back-filled."""
    _toggle(ref, state, True)


@command.command("disable")
@click.argument("ref")
@state_option
def disable(ref: str, state: str | None) -> None:
    """Switch an event's sync off (R19): sending stops at once."""
    _toggle(ref, state, False)


@command.command("delete")
@click.argument("ref")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--force", is_flag=True, help="Delete it even if it is protected (protect: true).")
@state_option
def delete(ref: str, yes: bool, force: bool, state: str | None) -> None:
    """Delete a live event (its quota slots are freed). A protected event (protect: true) is
    refused, as a plan would refuse it (E401), unless --force."""
    from reconciler.adapters.state import open_provider
    from reconciler.errors import UsageError
    from reconciler.render.redact import printable
    from reconciler.services.events import check_deletable, find_event
    from reconciler.services.history import audit

    provider = open_provider(state)
    try:
        ev = find_event(provider, ref)
        check_deletable(ev, force)
        if not yes:
            if not sys.stdin.isatty():
                raise UsageError(f"no terminal to confirm deleting {ev.account}/{ev.name} on; "
                                 "pass --yes")
            click.confirm(printable(f"Delete {ev.account}/{ev.name} ({ev.id})?"), abort=True)
        provider.delete_event(ev.id, ev.version)
        audit(provider, "delete", "ok", target=f"{ev.account}/{ev.name}", accounts=(ev.account,),
              detail=ev.id + (" (--force)" if force else ""))
    finally:
        provider.close()
    App().out(printable(f"Event {ev.account}/{ev.name} ({ev.id}) deleted."))
