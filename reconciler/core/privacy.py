"""Limited Data Use (capi-contract.md, Meta's data processing options) and what leaves per event.

``dataProcessingOptions`` on an account applies to all its events; an event's own replaces it.

| manifest | sent with every server event (``data_processing_options`` ...) |
|---|---|
| ``{options: []}`` | ``[]`` (explicitly no restriction) |
| ``{options: [LDU]}`` | ``["LDU"]``; Meta geolocates the person |
| ``{options: [LDU], country: 0, state: 0}`` | ``["LDU"]``, ``_country: 0``, ``_state: 0`` |
| ``{options: [LDU], country: 1, state: 1000}`` | ``["LDU"]``, ``_country: 1``, ``_state: 1000`` |

(country 1 is the United States, state 1000 California, 0 asks Meta to geolocate.)

Checks (E114): options is ``[]`` or ``[LDU]``; country is 0 or 1 and state 0 or 1000, given
together, only with LDU; country 0 (geolocate) goes with state 0.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from reconciler.core.models import AccountSpec, DataProcessingOptions, DataSharing, EventSpec
from reconciler.core.normalize import UNHASHED_KEYS
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


def describe(options: DataProcessingOptions | None) -> str:
    """One line for plans and ``events show``: ``LDU (country 1, state 1000)``, ``[]``, ``none``."""
    if options is None:
        return "none"
    if not options.options:
        return "[] (no restriction)"
    if options.country is None:
        return "LDU (Meta geolocates)"
    return f"LDU (country {options.country}, state {options.state})"


def sent_keys(sharing: DataSharing, trigger_kind: str) -> list[str]:
    """The user_data keys an event can send (R15), in a stable order, hashed ones marked
    ``(hashed)``: a reviewer sees which personal data a change starts sending."""
    keys: list[str] = []
    for item in sharing.properties:
        key = PROPERTY_KEYS.get(item) if isinstance(item, str) else item.as_
        if key is not None and key not in keys:
            keys.append(key)
    clear = ["fbc", "fbp"]
    if trigger_kind == "formSubmission":
        clear.append("client_user_agent")
        if sharing.ip_address:
            clear.append("client_ip_address")
    else:
        clear.append("lead_id")
    return [k if k in UNHASHED_KEYS else f"{k} (hashed)" for k in keys] + clear
