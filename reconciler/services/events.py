"""Live events changed outside git (R19): find one, switch it on or off, delete it.

The one implementation the CLI (``convctl events ...``) and the dashboard share: a switch keeps
the managed marker and the hash of what was last applied, so the next ``convctl plan`` reports
it as drift; a protected event (``protect: true``) is not deleted unless forced. Every write
goes through the provider, which enforces the write rules and the version check.
"""

from __future__ import annotations

from reconciler.core.live import EventWrite, LiveEvent
from reconciler.core.provider import Provider
from reconciler.errors import NotFoundError, UsageError


def find_event(provider: Provider, ref: str) -> LiveEvent:
    """An event by id, or by ``ACCOUNT/NAME``."""
    if "/" in ref:
        account, name = ref.split("/", 1)
        for ev in provider.list_events(account):
            if ev.name == name:
                return ev
        raise NotFoundError(f"no live event {ref}")
    return provider.get_event(ref)


def set_enabled(provider: Provider, ref: str, enabled: bool,
                expected_version: int | None = None) -> LiveEvent:
    """Switch the event's sync on or off (R19: off stops sending at once). With
    ``expected_version``, only if the event is still at that version (a stale page)."""
    ev = find_event(provider, ref)
    version = ev.version if expected_version is None else expected_version
    spec = ev.spec.model_copy(update={"enabled": enabled})
    write = EventWrite(account=ev.account, name=ev.name, spec=spec, labels=ev.labels,
                       api=ev.api, managed_by=ev.managed_by,
                       last_applied_hash=ev.last_applied_hash)
    return provider.update_event(ev.id, write, version)


def check_deletable(ev: LiveEvent, force: bool) -> None:
    """Refuse deleting a protected event (``protect: true``), as a plan would, unless forced."""
    if ev.spec.protect and not force:
        raise UsageError(f"event {ev.account}/{ev.name} is protected (protect: true): remove "
                         "protect: true from its manifest and apply, or pass --force")
