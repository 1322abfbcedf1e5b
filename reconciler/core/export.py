"""Live state -> manifest documents (``convctl import``, adoption of live events).

Pure: builds the documents only; ``adapters.export`` writes them. Each account gets
``<account>/account.yaml`` (its ``Account``) and, when it has events, ``<account>/events.yaml``
(its ``ConversionEvent`` documents, by name). Specs are dumped by alias without their default
values so a manifest says only what differs from the defaults; loading it back gives the live
spec again (the models fill the same defaults). A label value holding a token (stored before the
write rules refused them, E104) is written masked: a manifest goes to git, a token must not.
"""

from __future__ import annotations

from typing import Any

from reconciler.core.live import LiveAccount, LiveEvent
from reconciler.core.models import API_VERSION
from reconciler.core.redaction import mask_tokens

ACCOUNT_FILE = "account.yaml"
EVENTS_FILE = "events.yaml"


def _metadata(name: str, labels: dict[str, str]) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if labels:
        meta["labels"] = {key: mask_tokens(value) for key, value in sorted(labels.items())}
    return meta


def account_document(account: LiveAccount) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "Account",
        "metadata": _metadata(account.name, account.labels),
        "spec": account.spec.model_dump(mode="json", by_alias=True, exclude_defaults=True),
    }


def event_document(event: LiveEvent) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "ConversionEvent",
        "metadata": _metadata(event.name, event.labels),
        "spec": event.spec.model_dump(mode="json", by_alias=True, exclude_defaults=True),
    }


def export_documents(accounts: list[LiveAccount],
                     events: list[LiveEvent]) -> dict[str, list[dict[str, Any]]]:
    """Relative file name -> manifest documents, accounts and events sorted by name.

    Events of an account missing from ``accounts`` still get their events file (the caller
    decides whether that is acceptable)."""
    files: dict[str, list[dict[str, Any]]] = {}
    by_account: dict[str, list[LiveEvent]] = {}
    for event in events:
        by_account.setdefault(event.account, []).append(event)
    names = sorted({a.name for a in accounts} | set(by_account))
    live = {a.name: a for a in accounts}
    for name in names:
        if name in live:
            files[f"{name}/{ACCOUNT_FILE}"] = [account_document(live[name])]
        evs = sorted(by_account.get(name, []), key=lambda e: e.name)
        if evs:
            files[f"{name}/{EVENTS_FILE}"] = [event_document(e) for e in evs]
    return files


def legacy_events(events: list[LiveEvent]) -> list[LiveEvent]:
    """Events on the legacy API: adopting them means a replace at the next apply (R11)."""
    return sorted((e for e in events if e.api == "legacy"), key=lambda e: (e.account, e.name))
