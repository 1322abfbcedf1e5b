"""Google Ads through the Data Manager API (docs/networks/google.md): pure rules and payloads.

One ``Event`` object per match, as ``events:ingest`` documents it (JSON field names):

- ``transactionId``: our deterministic event id (``capi.event_id``), Google's dedup key;
- ``eventTimestamp``: RFC 3339 UTC (``2026-12-01T10:00:00Z``), at most 90 days old;
- ``destinationReferences``: ``[conversionAction]``, the reference the sender gives the one
  destination of the request (so a stored payload says where it goes);
- ``adIdentifiers``: one click id from the account's ``clickIdProperties`` (gclid before gbraid
  before wbraid: Google refuses a conversion carrying several);
- ``userData.userIdentifiers``: ``emailAddress``, ``phoneNumber`` (SHA-256 lowercase hex of the
  normalized value, ``encoding: HEX``) and ``address`` (hashed given and family names, clear
  ``regionCode`` and ``postalCode``; only when all four are known), from the event's shared
  properties (R15) and only while ``adUserData`` is granted;
- ``consent``: ``adUserData`` granted for a form whose R14 consent matched, the account's
  default otherwise; ``adPersonalization`` the account's default;
- ``conversionValue`` + ``currency`` when the event has a value (R13); ``eventSource: WEB``.

Normalization (Google's formatting guidelines, stricter where they leave room): emails are
cleaned, trimmed, stripped of every whitespace and lower-cased; for ``gmail.com`` and
``googlemail.com`` the dots and any ``+suffix`` of the local part go; a value without exactly
one ``@`` is dropped. Phones are E.164 with ``+`` (phonenumbers, the account's calling code for
national numbers); a number phonenumbers does not find possible is dropped. Names are lower-cased
without punctuation, inner whitespace collapsed. A value that is not a string, or that normalizes
to nothing, is dropped and counted in ``GoogleBuilder.dropped`` as ``(key, reason)``; an event
whose shared properties are withheld because ``adUserData`` is denied counts
``("userData", "ad_user_data_denied")``.

Hot path: what is sent for a raw e-mail, phone (per region) or name is remembered
(``digester``), so ``skip_reason`` and the builder of one event normalize it once; usual North
American numbers skip phonenumbers (``_nanp``: the same answer, property-tested).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, Final

from reconciler.core.capi import event_id
from reconciler.core.crm import Contact, FormSubmission, StageChange
from reconciler.core.live import LiveEvent
from reconciler.core.models import AccountSpec, Google, SecretRef
from reconciler.core.networks import BuilderMemo, NetworkRules
from reconciler.core.networks.google_checks import (
    CLICK_ID,
    DENIED,
    GRANTED,
    MAX_AGE,
    SKIP_NO_IDENTIFIER,
    is_map,
    parse_timestamp,
    postal_code,
    validate,
)
from reconciler.core.networks.google_normalize import (
    _phone_region,
    _region,
    digester,
    norm_email,
    norm_name,
    norm_phone,
    rfc3339,
)
from reconciler.core.normalize import clean
from reconciler.core.vocabulary import PROPERTY_KEYS

BATCH_LIMIT: Final = 2000
# user_data keys (vocabulary.PROPERTY_KEYS and `as`) Google takes, and where they go
_KEYS: Final = frozenset({"em", "ph", "fn", "ln", "zp", "country"})

__all__ = ["RULES", "GoogleBuilder", "GoogleRules", "norm_email", "norm_name", "norm_phone"]


# -- the builder -------------------------------------------------------------------------------

def _google(account: AccountSpec) -> Google:
    if account.google is None:
        raise ValueError("the account has no google block")
    return account.google


def _shared(live: LiveEvent) -> tuple[tuple[str, str], ...]:
    """(CRM property, key) of the event's shared properties (R15) Google takes, in order."""
    out: list[tuple[str, str]] = []
    for item in live.spec.data_sharing.properties:
        prop, key = (item, PROPERTY_KEYS.get(item)) if isinstance(item, str) else (
            item.property, item.as_)
        if key in _KEYS:
            out.append((prop, key))
    return tuple(out)


class GoogleBuilder:
    """The Data Manager ``Event`` objects of one live conversion event of one account."""

    __slots__ = ("_action", "_clicks", "_consent", "_digest", "_shares", "_value", "account",
                 "dropped", "live")

    def __init__(self, live: LiveEvent, account: AccountSpec) -> None:
        google = _google(account)
        self.live, self.account = live, account
        self._action = live.spec.conversion_action or ""
        self._shares = _shared(live)
        ids = google.click_id_properties
        self._clicks = (("gclid", ids.gclid), ("gbraid", ids.gbraid), ("wbraid", ids.wbraid))
        self._consent = google.consent
        region = _phone_region(account.default_country_code)
        self._digest = {key: digester(key, region) for key in ("em", "ph", "fn", "ln")}
        self._value: dict[str, Any] = {}
        form = live.spec.trigger.form_submission
        if form is not None and form.value is not None:
            self._value = {"conversionValue": form.value.amount,
                           "currency": form.value.currency.upper()}
        self.dropped: Counter[tuple[str, str]] = Counter()

    def consent(self, crm_event: FormSubmission | StageChange) -> dict[str, str]:
        """R14: a form event fires only with the visitor's consent, which grants adUserData."""
        user = (self._consent.ad_user_data == "granted"
                or isinstance(crm_event, FormSubmission))
        personal = self._consent.ad_personalization == "granted"
        return {"adUserData": GRANTED if user else DENIED,
                "adPersonalization": GRANTED if personal else DENIED}

    def build(self, crm_event: FormSubmission | StageChange,
              contact: Contact | None) -> dict[str, Any]:
        at = (crm_event.submitted_at if isinstance(crm_event, FormSubmission)
              else crm_event.occurred_at)
        consent = self.consent(crm_event)
        event: dict[str, Any] = {
            "destinationReferences": [self._action],
            "transactionId": event_id(self.live.id, crm_event.source_id),
            "eventTimestamp": rfc3339(at),
            "eventSource": "WEB",
            "consent": consent,
        }
        click = self.click_id(contact)
        if click is not None:
            event["adIdentifiers"] = {click[0]: click[1]}
        if consent["adUserData"] == GRANTED:
            identifiers = self.identifiers(contact)
            if identifiers:
                event["userData"] = {"userIdentifiers": identifiers}
        elif self._shares:  # denied: no user identifiers at all, and counted as such
            self.dropped[("userData", "ad_user_data_denied")] += 1
        event.update(self._value)
        return event

    def click_id(self, contact: Contact | None) -> tuple[str, str] | None:
        """The first usable click id (gclid, gbraid, wbraid); bad ones are dropped."""
        if contact is None:
            return None
        for name, prop in self._clicks:
            value = contact.properties.get(prop)
            if not value:
                continue
            if type(value) is not str:
                self.dropped[(name, "not_a_string")] += 1
            elif CLICK_ID.fullmatch(value.strip()):
                return name, value.strip()
            elif value.strip():
                self.dropped[(name, "unusable")] += 1
        return None

    def _values(self, contact: Contact) -> dict[str, str]:
        """key -> the first shared property's string value (others counted as dropped)."""
        out: dict[str, str] = {}
        for prop, key in self._shares:
            value = contact.properties.get(prop)
            if key in out or not value:
                continue
            if type(value) is not str:
                self.dropped[(key, "not_a_string")] += 1
            elif value.strip():
                out[key] = value
        return out

    def identifiers(self, contact: Contact | None) -> list[dict[str, Any]]:
        """Hashed ``userIdentifiers`` from the shared properties (R15)."""
        if contact is None:
            return []
        values = self._values(contact)
        out: list[dict[str, Any]] = []
        for key, field in (("em", "emailAddress"), ("ph", "phoneNumber")):
            if key in values:
                digest = self._digest[key](values[key])
                if digest:
                    out.append({field: digest})
                else:
                    self.dropped[(key, "unusable")] += 1
        address = self._address(values)
        if address is not None:
            out.append({"address": address})
        return out

    def _address(self, values: Mapping[str, str]) -> dict[str, str] | None:
        if not {"fn", "ln", "country", "zp"} <= values.keys():
            return None
        parts = {"givenName": self._digest["fn"](values["fn"]),
                 "familyName": self._digest["ln"](values["ln"]),
                 "regionCode": _region(values["country"]),
                 "postalCode": postal_code(clean(values["zp"]))}
        if not all(parts.values()):
            self.dropped[("address", "unusable")] += 1
            return None
        return {k: v for k, v in parts.items() if v}

    def has_identifier(self, contact: Contact, crm_event: FormSubmission | StageChange) -> bool:
        """A click id, or (adUserData granted) a usable shared email or phone."""
        if self.click_id(contact) is not None:
            return True
        if self.consent(crm_event)["adUserData"] != GRANTED:
            return False
        values = self._values(contact)
        return any(self._digest[key](values[key]) for key in ("em", "ph") if key in values)


# -- the rules ----------------------------------------------------------------------------------

_MATCH_KEYS: Final = {"emailAddress": ("em",), "phoneNumber": ("ph",),
                      "address": ("fn", "ln", "zp", "country")}
_MATCH_ORDER: Final = ("em", "ph", "fn", "ln", "zp", "country")


# skip_reason's builder per (live event, account): its ``dropped`` counts are never reported
# (the queued payload's builder counts them).
_builder_for: Final = BuilderMemo(GoogleBuilder)


class GoogleRules:
    """``NetworkRules`` for Google Ads (docs/networks/google.md)."""

    name: str = "google"
    label: str = "Google Ads"
    batch_limit: int = BATCH_LIMIT
    max_age: timedelta = MAX_AGE

    def target(self, live: LiveEvent, account: AccountSpec) -> str:
        if not live.spec.conversion_action:
            raise ValueError(f"conversion event {live.id} has no conversionAction")
        return f"{_google(account).customer_id}/{live.spec.conversion_action}"

    def token_ref(self, account: AccountSpec) -> SecretRef:
        return _google(account).access_token

    def properties(self, live: LiveEvent, account: AccountSpec) -> set[str]:
        ids = _google(account).click_id_properties
        return {ids.gclid, ids.gbraid, ids.wbraid}

    def skip_reason(self, live: LiveEvent, account: AccountSpec,
                    crm_event: FormSubmission | StageChange, contact: Contact) -> str | None:
        """A lifecycle event needs a click id or a shared email/phone Google may use."""
        if isinstance(crm_event, FormSubmission):
            return None
        builder = _builder_for(live, account)
        return None if builder.has_identifier(contact, crm_event) else SKIP_NO_IDENTIFIER

    def builder(self, live: LiveEvent, account: AccountSpec) -> GoogleBuilder:
        return GoogleBuilder(live, account)

    def validate(self, payload: Mapping[str, Any], now: datetime) -> str | None:
        """None or why Google would refuse the event (``google_checks``)."""
        return validate(payload, now)

    def event_time(self, payload: Mapping[str, Any]) -> int:
        """Epoch seconds; 0 for a payload ``validate`` refuses (``bad_timestamp``)."""
        return parse_timestamp(payload.get("eventTimestamp")) or 0

    def event_name(self, payload: Mapping[str, Any]) -> str:
        refs = payload.get("destinationReferences")
        action = refs[0] if isinstance(refs, list) and refs and type(refs[0]) is str else "?"
        return f"conversion action {action}"

    def match_keys(self, payload: Mapping[str, Any]) -> tuple[str, ...]:
        user = payload.get("userData")
        ids = user.get("userIdentifiers") if is_map(user) else None
        keys: set[str] = set()
        for item in ids if isinstance(ids, list) else ():
            if is_map(item):
                for field in item:
                    keys.update(_MATCH_KEYS.get(field, ()))
        return tuple(k for k in _MATCH_ORDER if k in keys)


RULES: Final[NetworkRules] = GoogleRules()  # mypy checks the protocol is met
