"""Limited Data Use (capi-contract.md, Meta's data processing options) and what leaves per event.

``dataProcessingOptions`` on an account applies to all its events; an event's own replaces it.

| manifest | sent with every server event (``data_processing_options`` ...) |
|---|---|
| ``{options: []}`` | ``[]`` (explicitly no restriction) |
| ``{options: [LDU]}`` | ``["LDU"]``; Meta geolocates the person |
| ``{options: [LDU], country: 0, state: 0}`` | ``["LDU"]``, ``_country: 0``, ``_state: 0`` |
| ``{options: [LDU], country: 1, state: 1000}`` | ``["LDU"]``, ``_country: 1``, ``_state: 1000`` |

(country 1 is the United States, state 1000 California, 0 asks Meta to geolocate.)

Checks (E115): options is ``[]`` or ``[LDU]``; country is 0 or 1 and state 0 or 1000, given
together, only with LDU; country 0 (geolocate) goes with state 0.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from reconciler.core.models import AccountSpec, DataProcessingOptions, EventSpec
from reconciler.core.vocabulary import PROPERTY_KEYS

LDU = "LDU"
COUNTRIES = (0, 1)
STATES = (0, 1000)

_MEANING = {"country": "1 (United States) or 0 (Meta geolocates)",
            "state": "1000 (California) or 0 (Meta geolocates)"}

Report = Callable[[str, tuple[str | int, ...]], None]


def check_options(options: DataProcessingOptions, report: Report) -> None:
    """Report each problem of ``options`` as (message, path below dataProcessingOptions)."""
    if options.options not in ([], [LDU]):
        report(f"options must be [] or [LDU], got {options.options}", ("options",))
        return
    ldu = options.options == [LDU]
    for field, value, allowed in (("country", options.country, COUNTRIES),
                                  ("state", options.state, STATES)):
        if value is None:
            continue
        if not ldu:
            report(f"{field} applies only with options [LDU]", (field,))
        elif value not in allowed:
            report(f"{field} must be {_MEANING[field]}, got {value}", (field,))
    if ldu and (options.country is None) != (options.state is None):
        missing = "state" if options.state is None else "country"
        report(f"give country and state together (0/0: Meta geolocates; 1/1000: California); "
               f"{missing} is missing", ())
    elif ldu and options.country == 0 and options.state not in (0, None):
        report("country 0 (Meta geolocates) needs state 0", ("state",))


def effective_options(event: EventSpec,
                      account: AccountSpec | None) -> DataProcessingOptions | None:
    """The event's options, else its account's, else None (nothing sent)."""
    if event.data_processing_options is not None:
        return event.data_processing_options
    return account.data_processing_options if account is not None else None


def payload_fields(options: DataProcessingOptions | None) -> dict[str, Any]:
    """The server-event fields for ``options`` (empty when none are set)."""
    if options is None:
        return {}
    fields: dict[str, Any] = {"data_processing_options": list(options.options)}
    if options.country is not None:
        fields["data_processing_options_country"] = options.country
    if options.state is not None:
        fields["data_processing_options_state"] = options.state
    return fields


def sent_keys(spec: Mapping[str, Any]) -> list[str]:
    """The user_data keys an event sends (R15), from its spec as dumped with aliases (a plan's
    before/after document or ``EventSpec.model_dump(by_alias=True)``): the shared properties'
    keys in the order listed (Meta receives them hashed, except the clear keys), then the clear
    keys (``fbc``/``fbp`` when the contact has them; the user agent and, unless switched off, the
    IP of a form event; the lead id of a lifecycle event). A reviewer sees which personal data
    a change starts sending."""
    sharing = spec.get("dataSharing") or {}
    keys: list[str] = []
    for item in sharing.get("properties") or []:
        key = PROPERTY_KEYS.get(item) if isinstance(item, str) else (
            item.get("as") if isinstance(item, Mapping) else None)
        if isinstance(key, str) and key not in keys:
            keys.append(key)
    clear = ["fbc", "fbp"]
    if (spec.get("trigger") or {}).get("formSubmission") is not None:
        clear.append("client_user_agent")
        if sharing.get("ipAddress", True):
            clear.append("client_ip_address")
    else:
        clear.append("lead_id")
    return keys + [k for k in clear if k not in keys]
