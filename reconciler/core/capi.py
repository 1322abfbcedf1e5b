"""Meta Conversions API server events (capi-contract.md): payloads, ids, checks and batches.

Payloads are plain dicts (orjson-ready). Normalization and hashing live in ``normalize.py``,
the checks of a built payload against Meta's rules (``validate_payload``, the 7-day window) in
``capi_checks.py`` (both re-exported here): hashed keys are normalized then SHA-256
(lowercase hex); ``external_id`` is hashed too, after trim + lowercase; 64-char hex digests pass
through lowercased; clear keys (IP, user agent, fbc, fbp, lead_id) are never hashed. Choices
where the contracts are silent:

- ``event_id`` = first 32 hex chars of SHA-256(conversion event id, source event id): identical on
  every retry and rebuild, different per conversion event.
- user_data keys come only from the event's ``dataSharing.properties`` (standard names via
  ``vocabulary.PROPERTY_KEYS``, others through their explicit ``as``); when two properties map to
  the same key (``phone``, ``mobilephone``) the first listed with a value wins. The contact's Meta
  click/browser ids (``fbc``, ``fbp``) are added when known: they identify the ad, not the person.
- ``lead_id`` is sent as an integer of 15-17 digits, as Meta's payload specification gives it
  (orjson writes Python ints exactly; a reader that parses JSON numbers as doubles would not).
- Limited Data Use (``privacy.py``): the event's or else the account's ``dataProcessingOptions``
  become ``data_processing_options`` (+ ``_country``/``_state``) on every server event.
- Values that are not strings, or that normalize to nothing, are dropped and counted per
  ``(key, reason)`` in ``PayloadBuilder.dropped``.
- R13: the value's currency is sent lowercase; the predictive lead score goes to
  ``custom_data.predictive_lead_score`` (a number) when the contact has one.
- Lifecycle events use the CRM shape; a legacy live event (``api: legacy``, R11) sends
  ``event_name: Other`` as the legacy offline events did.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from functools import lru_cache
from typing import Any, Final

from reconciler.core.birthdates import date_order_for_calling_code
from reconciler.core.capi_checks import (
    INSUFFICIENT_KEY_SETS,
    MAX_AGE,
    SAFETY_MARGIN,
    InvalidReason,
    epoch_seconds,
    expires_at,
    has_customer_info,
    is_expired,
    validate_payload,
)
from reconciler.core.crm import Contact, FormSubmission, StageChange
from reconciler.core.live import LiveEvent
from reconciler.core.models import AccountSpec, DataSharing
from reconciler.core.normalize import (
    HASHED_KEYS,
    LEAD_ID,
    UNHASHED_KEYS,
    clear_value,
    digester,
    hash_value,
    is_hashed,
    normalize,
    sha256_hex,
    user_data,
)
from reconciler.core.places import country_code
from reconciler.core.privacy import effective_options, payload_fields
from reconciler.core.vocabulary import CUSTOM_EVENT_PREFIX, PROPERTY_KEYS, STAGE_LABELS

__all__ = [
    "HASHED_KEYS",
    "INSUFFICIENT_KEY_SETS",
    "LEAD_ID",
    "MAX_AGE",
    "MAX_BATCH",
    "SAFETY_MARGIN",
    "UNHASHED_KEYS",
    "InvalidReason",
    "PayloadBuilder",
    "batches",
    "build_payload",
    "event_id",
    "expires_at",
    "has_customer_info",
    "hash_value",
    "is_expired",
    "is_hashed",
    "lifecycle_event_name",
    "normalize",
    "sha256_hex",
    "user_data",
    "validate_payload",
]

MAX_BATCH: Final = 1000
CRM_NAME: Final = "HubSpot"
LEGACY_EVENT_NAME: Final = "Other"
PREDICTIVE_SCORE_PROPERTY: Final = "hs_predictivecontactscore_v2"


@lru_cache(maxsize=8192)  # asked several times per event while matching, building, checking
def event_id(conversion_event_id: str, source_id: str) -> str:
    """Deterministic event id: the same (conversion event, source event) always gives the same id.
    """
    raw = f"{conversion_event_id}\x1f{source_id}".encode()
    return hashlib.sha256(raw).hexdigest()[:32]


@lru_cache(maxsize=1024)  # a score repeats across contacts (0-100)
def _number(value: str | None) -> float | int | None:
    if value is None:
        return None
    try:
        number = float(value.strip())
    except ValueError:
        return None
    return int(number) if number.is_integer() else number


def meta_event_name(facebook_event: str) -> str:
    """R13: a standard event as it is; ``custom:<Name>`` -> ``<Name>``."""
    if facebook_event.startswith(CUSTOM_EVENT_PREFIX):
        return facebook_event[len(CUSTOM_EVENT_PREFIX):]
    return facebook_event


def lifecycle_event_name(live: LiveEvent, account: AccountSpec, stage: str) -> str:
    """The stage's display name; a custom stage's label; ``Other`` for legacy events (R11)."""
    if live.api == "legacy":
        return LEGACY_EVENT_NAME
    if stage in STAGE_LABELS:
        return STAGE_LABELS[stage]
    for custom in account.custom_lifecycle_stages:
        if custom.id == stage:
            return custom.label
    return stage


# What is sent for a raw string value of one key, given the contact's normalized country
# (None: nothing usable): a ``normalize.Digest`` for a hashed key.
_Send = Callable[[str, str | None], str | int | None]
# One shared property: (CRM property, user_data key, what is sent for its value).
_Share = tuple[str, str, _Send]


def _clear(key: str) -> _Send:
    return lambda value, _country: clear_value(key, value)


def _refuse(key: str) -> _Send:
    def send(value: str, _country: str | None) -> str | None:
        raise ValueError(f"unknown user_data key {key!r}")
    return send


def _shares(sharing: DataSharing, account: AccountSpec,
            date_order: str) -> tuple[_Share, ...]:
    """The event's shared properties (R15) with their user_data keys, in the order listed;
    a standard name without a key is not shared."""
    dcc = account.default_country_code
    shares: list[_Share] = []
    for item in sharing.properties:
        prop, key = (item, PROPERTY_KEYS.get(item)) if isinstance(item, str) else (
            item.property, item.as_)
        if key is not None:
            shares.append((prop, key, _clear(key) if key in UNHASHED_KEYS
                           else digester(key, dcc, date_order) if key in HASHED_KEYS
                           else _refuse(key)))
    return tuple(shares)


class PayloadBuilder:
    """The payloads of one live conversion event of one account.

    Everything that does not depend on the CRM event (the shared properties, their keys and
    normalizers, the event name, the value) is worked out once, so the agent builds one per
    live event and chunk of the inbox, not per CRM event. ``build`` raises ``ValueError`` when
    the CRM event does not fit the event's trigger.
    """

    __slots__ = ("_custom", "_default_country", "_event_name", "_form", "_ip", "_live_id",
                 "_names", "_needs_country", "_options", "_score", "_shared_keys", "_shares",
                 "account", "dropped", "live")

    def __init__(self, live: LiveEvent, account: AccountSpec) -> None:
        self.live, self.account, self._live_id = live, account, live.id
        date_order = account.date_order or date_order_for_calling_code(
            account.default_country_code)
        self._shares = _shares(live.spec.data_sharing, account, date_order)
        # two properties sent as one key (phone, mobilephone): the first with a value wins
        self._shared_keys = len({key for _, key, _ in self._shares}) < len(self._shares)
        # the contact's country matters only to the zip rule (US: first 5 digits)
        self._needs_country = any(key == "zp" for _, key, _ in self._shares)
        self._default_country = "us" if account.default_country_code == "1" else None
        self._ip = live.spec.data_sharing.ip_address
        self._options = payload_fields(effective_options(live.spec, account))
        self.dropped: Counter[tuple[str, str]] = Counter()  # (key, reason) -> values dropped
        self._names: dict[str, str] = {}  # lifecycle: stage -> event name
        form = self._form = live.spec.trigger.form_submission
        self._custom: dict[str, Any] = {}
        self._score = False
        self._event_name = ""
        if form is not None:
            self._event_name = meta_event_name(form.facebook_event or "")
            if form.value is not None:
                self._custom = {"value": form.value.amount,
                                "currency": form.value.currency.lower()}
            self._score = form.predictive_lead_score

    def build(self, crm_event: FormSubmission | StageChange,
              contact: Contact | None) -> dict[str, Any]:
        if isinstance(crm_event, FormSubmission):
            return self.form(crm_event, contact)
        return self.lifecycle(crm_event, contact)

    def user_data(self, contact: Contact | None) -> dict[str, str | int]:
        """Hashed user_data from only the properties the event shares (R15): when two
        properties map to one key, the first listed with a value wins; the contact's Meta
        click/browser ids are added when known."""
        if contact is None:
            return {}
        props = contact.properties
        country = None
        if self._needs_country:  # the contact's country, else the account's (zip rule)
            raw = props.get("country")
            country = (country_code(raw) if raw and type(raw) is str
                       else self._default_country)
        if self._shared_keys:
            out = self._first_wins(props, country)
        else:
            out = {}
            get, dropped = props.get, self.dropped
            for prop, key, send in self._shares:
                value = get(prop)
                if not value:  # missing or empty
                    continue
                if type(value) is not str:
                    dropped[(key, "not_a_string")] += 1
                    continue
                usable = send(value, country)
                if usable:
                    out[key] = usable
                elif value.strip():  # a value, but nothing Meta could match
                    dropped[(key, "unusable")] += 1
        if contact.fbc:
            out["fbc"] = contact.fbc
        if contact.fbp:
            out["fbp"] = contact.fbp
        return out

    def _first_wins(self, props: Mapping[str, object],
                    country: str | None) -> dict[str, str | int]:
        """``user_data`` when two shared properties give one key: the first with a value."""
        out: dict[str, str | int] = {}
        taken: set[str] = set()
        for prop, key, send in self._shares:
            if key in taken:
                continue
            value = props.get(prop)
            if not value:
                continue
            if type(value) is not str:
                self.dropped[(key, "not_a_string")] += 1
                continue
            usable = send(value, country)
            if usable:
                out[key] = usable
            elif value.strip():  # a value, but nothing Meta could match
                self.dropped[(key, "unusable")] += 1
            else:  # blank: as if missing, a later property may give the key
                continue
            taken.add(key)
        return out

    def form(self, submission: FormSubmission, contact: Contact | None) -> dict[str, Any]:
        """A website server event for a form submission (R13, R15)."""
        if self._form is None:
            raise ValueError(f"conversion event {self.live.id} has no formSubmission trigger")
        ud = self.user_data(contact)
        if submission.user_agent:
            ud["client_user_agent"] = submission.user_agent
        if self._ip and submission.ip_address:
            ud["client_ip_address"] = submission.ip_address
        payload: dict[str, Any] = {
            "event_name": self._event_name,
            "event_time": epoch_seconds(submission.submitted_at),
            "event_id": event_id(self._live_id, submission.source_id),
            "action_source": "website",
            "event_source_url": submission.page_url,
            "user_data": ud,
        }
        if self._options:
            payload.update(self._options)
        custom = dict(self._custom)
        if self._score and contact is not None:
            score = _number(contact.properties.get(PREDICTIVE_SCORE_PROPERTY))
            if score is not None:
                custom["predictive_lead_score"] = score
        if custom:
            payload["custom_data"] = custom
        return payload

    def lifecycle(self, change: StageChange, contact: Contact | None) -> dict[str, Any]:
        """A Conversions-API-for-CRM event for a lifecycle-stage change (R5-R11)."""
        if self.live.spec.trigger.lifecycle_stage_change is None:
            raise ValueError(
                f"conversion event {self.live.id} has no lifecycleStageChange trigger")
        ud = self.user_data(contact)
        if contact is not None and contact.meta_lead_id:
            lead = clear_value("lead_id", contact.meta_lead_id)
            if lead is not None:
                ud["lead_id"] = lead
        name = self._names.get(change.stage)
        if name is None:
            name = self._names[change.stage] = lifecycle_event_name(
                self.live, self.account, change.stage)
        return {
            "event_name": name,
            "event_time": epoch_seconds(change.occurred_at),
            "event_id": event_id(self._live_id, change.source_id),
            "action_source": "system_generated",
            "user_data": ud,
            "custom_data": {"event_source": "crm", "lead_event_source": CRM_NAME},
            **self._options,
        }


def build_payload(live: LiveEvent, account: AccountSpec, crm_event: FormSubmission | StageChange,
                  contact: Contact | None) -> dict[str, Any]:
    return PayloadBuilder(live, account).build(crm_event, contact)


def batches(events: Iterable[dict[str, Any]],
            size: int = MAX_BATCH) -> Iterator[list[dict[str, Any]]]:
    """Consecutive batches of at most ``size`` (<= 1,000, Meta's cap) events."""
    if not 1 <= size <= MAX_BATCH:
        raise ValueError(f"batch size must be between 1 and {MAX_BATCH}")
    batch: list[dict[str, Any]] = []
    for event in events:
        batch.append(event)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
