"""LinkedIn Conversions API rules (pure): targets, matching, payloads and checks.

One payload per CRM event, as LinkedIn's ``conversionEvents`` documents it (docs/networks/
linkedin.md): ``conversion`` (the event's conversion rule urn, also the outbox target),
``conversionHappenedAt`` (epoch **milliseconds**), ``eventId`` (``capi.event_id``: the Insight
Tag's id for the same conversion deduplicates against it), ``user.userIds`` and
``user.userInfo``, and ``conversionValue`` ``{currencyCode, amount}`` with the amount a string.
Choices where LinkedIn's documentation leaves room (the stricter reading each time):

- Only shared properties leave (R15): ``dataSharing.properties`` names them (standard names in
  ``STANDARD_PROPERTIES``; ``{property, as}`` targets one of ``SHARE_KEYS``). An e-mail is sent
  as ``SHA256_EMAIL`` (trimmed, lower-cased, SHA-256 hex; a 64-hex digest passes through). The
  account's ``firstPartyIdProperty`` (li_fat_id) is sent as
  ``LINKEDIN_FIRST_PARTY_ADS_TRACKING_UUID`` when the contact has one: it identifies the ad
  click, not the person (as Meta's fbc). ``ACXIOM_ID`` and ``ORACLE_MOAT_ID`` are never sent.
- At least one user id on every event; a contact without one is skipped (``no_user_id``).
- ``userInfo`` is plain text (trimmed, inner whitespace collapsed; ``countryCode`` ISO 3166
  alpha-2, upper case) and only sent with both ``firstName`` and ``lastName``.
- LinkedIn's event has no IP address or user agent field: neither is ever sent to LinkedIn,
  whatever ``dataSharing.ipAddress`` says.
- A lifecycle event with ``contacts: adInteractions`` (R8) fires only for contacts with a
  li_fat_id (``no_ad_interaction``). LinkedIn events need no Meta lead id (R5 is Meta's).
- ``validate`` gives up an event an hour before LinkedIn's 90 days (``too_old``) and refuses
  any time after ``now`` (``in_future``: LinkedIn takes no future conversions).
- Values of the wrong type, or that normalize to nothing, are dropped and counted per
  ``(field, reason)`` in ``LinkedInBuilder.dropped``; nothing here raises on a contact's data.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any, Final, TypeGuard

from reconciler.core.capi import event_id
from reconciler.core.crm import Contact, FormSubmission, StageChange, to_epoch_ms
from reconciler.core.live import LiveEvent
from reconciler.core.models import LINKEDIN_CONVERSION_RULE_PATTERN, AccountSpec, SecretRef
from reconciler.core.models import LinkedIn as LinkedInSetup
from reconciler.core.networks import BuilderMemo, NetworkRules
from reconciler.core.normalize import clean, is_hashed, sha256_hex
from reconciler.core.places import country_code

NAME: Final = "linkedin"
LABEL: Final = "LinkedIn"
BATCH_LIMIT: Final = 5000
MAX_AGE: Final = timedelta(days=90)
SAFETY_MARGIN: Final = timedelta(hours=1)
SHA256_EMAIL: Final = "SHA256_EMAIL"
FIRST_PARTY_ID: Final = "LINKEDIN_FIRST_PARTY_ADS_TRACKING_UUID"
ID_TYPES: Final = frozenset({SHA256_EMAIL, FIRST_PARTY_ID, "ACXIOM_ID", "ORACLE_MOAT_ID"})
USER_INFO_FIELDS: Final = ("firstName", "lastName", "companyName", "title", "countryCode")
# R15: the CRM's standard contact properties LinkedIn takes, and the field each is sent as.
STANDARD_PROPERTIES: Final = {"email": "email", "firstname": "firstName",
                              "lastname": "lastName", "company": "companyName",
                              "jobtitle": "title", "country": "countryCode"}
# What ``{property: X, as: KEY}`` may target: LinkedIn's own names, or Meta's key for the same.
SHARE_KEYS: Final = {"email": "email", "em": "email", "firstName": "firstName",
                     "fn": "firstName", "lastName": "lastName", "ln": "lastName",
                     "companyName": "companyName", "title": "title",
                     "countryCode": "countryCode", "country": "countryCode"}
# coverage.MATCH_KEYS each LinkedIn field counts as.
_MATCH_KEYS: Final = {"firstName": "fn", "lastName": "ln", "countryCode": "country"}
CONVERSION_RULE: Final = re.compile(LINKEDIN_CONVERSION_RULE_PATTERN, re.ASCII)
CURRENCY: Final = re.compile(r"[A-Z]{3}", re.ASCII)
AMOUNT: Final = re.compile(r"[0-9]+(\.[0-9]+)?", re.ASCII)
HEX64: Final = re.compile(r"[0-9a-f]{64}", re.ASCII)
FIRST_PARTY_VALUE: Final = re.compile(r"[\x21-\x7e]{1,255}", re.ASCII)  # printable, no spaces
_MAX_AGE_MS: Final = (MAX_AGE - SAFETY_MARGIN) // timedelta(milliseconds=1)


# -- normalizers: any object in, a value or None out (never raises) ----------------------------

# What ``norm_email`` gives per raw value (``skip_reason`` and the builder read the same e-mail
# of an event): a pure function of the value, so the answer is the same either way.
CACHE_SIZE: Final = 16384
_EMAILS: Final[dict[str, str | None]] = {}


def norm_email(value: object) -> str | None:
    """SHA256_EMAIL: trimmed, lower-cased, SHA-256 hex; a 64-hex digest is kept (lower-cased)."""
    if type(value) is not str:
        return None
    found = _EMAILS.get(value, "")  # "" is never an answer: it marks a value not seen yet
    if found != "":
        return found
    if len(_EMAILS) >= CACHE_SIZE:
        _EMAILS.clear()
    found = _EMAILS[value] = norm_email_uncached(value)
    return found


def norm_email_uncached(value: str) -> str | None:
    """``norm_email`` worked out (no cache)."""
    text = value.strip().lower()
    if is_hashed(text):
        return text
    local, at, domain = text.partition("@")
    if not (at and local and domain) or len(text.split()) != 1:  # no whitespace inside
        return None
    return sha256_hex(text)


def clear_caches() -> None:
    """Forget every remembered value (a cold start, for benchmarks and tests)."""
    _EMAILS.clear()


def norm_text(value: object) -> str | None:
    """userInfo text: format characters removed, trimmed, inner whitespace collapsed."""
    if type(value) is not str:
        return None
    return " ".join(clean(value).split()) or None


def norm_country(value: object) -> str | None:
    """countryCode: ISO 3166-1 alpha-2, upper case (``United States`` -> ``US``)."""
    if type(value) is not str:
        return None
    code = country_code(value)
    return code.upper() if code else None


def norm_first_party_id(value: object) -> str | None:
    """li_fat_id as LinkedIn set it: trimmed printable ASCII without spaces."""
    if type(value) is not str:
        return None
    text = value.strip()
    return text if FIRST_PARTY_VALUE.fullmatch(text) else None


_NORMALIZERS: Final = {"email": norm_email, "firstName": norm_text, "lastName": norm_text,
                       "companyName": norm_text, "title": norm_text,
                       "countryCode": norm_country}


def amount_text(amount: float) -> str | None:
    """conversionValue.amount: a plain decimal string (``1500.0``), never an exponent."""
    try:
        number = Decimal(repr(float(amount)))
    except (InvalidOperation, TypeError, ValueError, OverflowError):
        return None
    if not number.is_finite() or number <= 0:
        return None
    return format(number, "f")


# -- the builder -----------------------------------------------------------------------------

def setup(account: AccountSpec) -> LinkedInSetup:
    if account.linkedin is None:
        raise ValueError("the account has no linkedin block")
    return account.linkedin


def shares(live: LiveEvent) -> tuple[tuple[str, str], ...]:
    """The event's shared properties (R15) as (CRM property, LinkedIn field), in order;
    properties LinkedIn has no field for are not shared."""
    out: list[tuple[str, str]] = []
    for item in live.spec.data_sharing.properties:
        prop, target = ((item, STANDARD_PROPERTIES.get(item)) if isinstance(item, str)
                        else (item.property, SHARE_KEYS.get(item.as_)))
        if target is not None:
            out.append((prop, target))
    return tuple(out)


class LinkedInBuilder:
    """The payloads of one live LinkedIn event of one account (worked out once per event)."""

    __slots__ = ("_first_party", "_rule", "_shares", "_value", "dropped", "live")

    def __init__(self, live: LiveEvent, account: AccountSpec) -> None:
        self.live = live
        self._rule = RULES.target(live, account)
        self._first_party = setup(account).first_party_id_property
        self._shares = shares(live)
        self.dropped: Counter[tuple[str, str]] = Counter()  # (field, reason) -> values dropped
        self._value: dict[str, str] | None = None
        form = live.spec.trigger.form_submission
        if form is not None and form.value is not None:
            amount = amount_text(form.value.amount)
            if amount is not None and CURRENCY.fullmatch(form.value.currency):
                self._value = {"currencyCode": form.value.currency, "amount": amount}
            else:
                self.dropped[("conversionValue", "unusable")] += 1

    def build(self, crm_event: FormSubmission | StageChange,
              contact: Contact | None) -> dict[str, Any]:
        """The ``conversionEvents`` element; ``ValueError`` when the CRM event does not fit
        the event's trigger."""
        if isinstance(crm_event, FormSubmission):
            if self.live.spec.trigger.form_submission is None:
                raise ValueError(f"conversion event {self.live.id} has no formSubmission trigger")
            at = crm_event.submitted_at
        else:
            if self.live.spec.trigger.lifecycle_stage_change is None:
                raise ValueError(
                    f"conversion event {self.live.id} has no lifecycleStageChange trigger")
            at = crm_event.occurred_at
        payload: dict[str, Any] = {
            "conversion": self._rule,
            "conversionHappenedAt": to_epoch_ms(at),
            "eventId": event_id(self.live.id, crm_event.source_id),
            "user": self.user(contact),
        }
        if self._value is not None:
            payload["conversionValue"] = dict(self._value)
        return payload

    def user(self, contact: Contact | None) -> dict[str, Any]:
        """``user``: the ids and the plain-text info of the contact, shared properties only."""
        fields = self.fields(contact, count=True)
        ids: list[dict[str, str]] = []
        if "email" in fields:
            ids.append({"idType": SHA256_EMAIL, "idValue": fields["email"]})
        first_party = self.first_party_id(contact, count=True)
        if first_party is not None:
            ids.append({"idType": FIRST_PARTY_ID, "idValue": first_party})
        user: dict[str, Any] = {"userIds": ids}
        info = {name: fields[name] for name in USER_INFO_FIELDS if name in fields}
        if info and "firstName" in info and "lastName" in info:
            user["userInfo"] = info
        elif info:
            self.dropped[("userInfo", "needs_first_and_last_name")] += 1
        return user

    def fields(self, contact: Contact | None, *, count: bool = False) -> dict[str, str]:
        """Normalized shared fields; when two properties give one field the first with a
        usable value wins."""
        out: dict[str, str] = {}
        if contact is None:
            return out
        for prop, target in self._shares:
            if target in out:
                continue
            raw = contact.properties.get(prop)
            if raw is None or raw == "":
                continue
            value = _NORMALIZERS[target](raw)
            if value is not None:
                out[target] = value
            elif count:
                reason = "not_a_string" if type(raw) is not str else "unusable"
                if reason == "not_a_string" or raw.strip():
                    self.dropped[(target, reason)] += 1
        return out

    def has_email(self, contact: Contact) -> bool:
        """``"email" in fields(contact)``, normalizing the e-mail properties only."""
        for prop, target in self._shares:
            if target == "email":
                raw = contact.properties.get(prop)
                if raw is not None and raw != "" and norm_email(raw) is not None:
                    return True
        return False

    def first_party_id(self, contact: Contact | None, *, count: bool = False) -> str | None:
        if contact is None:
            return None
        raw = contact.properties.get(self._first_party)
        if raw is None or raw == "":
            return None
        value = norm_first_party_id(raw)
        if value is None and count:
            reason = "not_a_string" if type(raw) is not str else "unusable"
            if reason == "not_a_string" or raw.strip():
                self.dropped[("firstPartyId", reason)] += 1
        return value


# -- the rules -------------------------------------------------------------------------------

# skip_reason's builder per (live event, account): its ``dropped`` counts are never reported
# (the queued payload's builder counts them).
_builder_for: Final = BuilderMemo(LinkedInBuilder)


class LinkedInRules:
    """``NetworkRules`` for LinkedIn (core/networks/__init__.py)."""

    name = NAME
    label = LABEL
    batch_limit = BATCH_LIMIT
    max_age = MAX_AGE

    def target(self, live: LiveEvent, account: AccountSpec) -> str:
        rule = live.spec.conversion_rule
        if rule is None:
            raise ValueError(f"conversion event {live.id} has no conversionRule")
        return rule

    def token_ref(self, account: AccountSpec) -> SecretRef:
        return setup(account).access_token

    def properties(self, live: LiveEvent, account: AccountSpec) -> set[str]:
        return {setup(account).first_party_id_property}

    def skip_reason(self, live: LiveEvent, account: AccountSpec,
                    crm_event: FormSubmission | StageChange, contact: Contact) -> str | None:
        """``no_user_id`` (neither a shared usable e-mail nor a li_fat_id), then R8's
        ``no_ad_interaction`` (adInteractions: only contacts with a li_fat_id)."""
        builder = _builder_for(live, account)
        first_party = builder.first_party_id(contact)
        if first_party is None and not builder.has_email(contact):
            return "no_user_id"
        stage = live.spec.trigger.lifecycle_stage_change
        if (isinstance(crm_event, StageChange) and stage is not None
                and stage.contacts == "adInteractions" and first_party is None):
            return "no_ad_interaction"
        return None

    def builder(self, live: LiveEvent, account: AccountSpec) -> LinkedInBuilder:
        return LinkedInBuilder(live, account)

    def validate(self, payload: Mapping[str, Any], now: datetime) -> str | None:
        """Why LinkedIn would refuse this element (None: it is fine)."""
        at = payload.get("conversionHappenedAt")
        user = payload.get("user")
        if (type(at) is not int or not isinstance(payload.get("eventId"), str)
                or not payload["eventId"] or not _is_map(user)):
            return "missing_field"
        conversion = payload.get("conversion")
        if not isinstance(conversion, str) or not _is_rule(conversion):
            return "bad_conversion_rule"
        now_ms = to_epoch_ms(now if now.tzinfo else now.replace(tzinfo=UTC))
        if at < now_ms - _MAX_AGE_MS:
            return "too_old"
        if at > now_ms:
            return "in_future"
        if not _has_user_id(user.get("userIds")):
            return "no_user_id"
        if "conversionValue" in payload and not _is_value(payload["conversionValue"]):
            return "bad_value"
        return None

    def event_time(self, payload: Mapping[str, Any]) -> int:
        return int(payload["conversionHappenedAt"]) // 1000

    def event_name(self, payload: Mapping[str, Any]) -> str:
        return str(payload["conversion"])

    def match_keys(self, payload: Mapping[str, Any]) -> tuple[str, ...]:
        user = payload.get("user") or {}
        keys: list[str] = []
        for item in user.get("userIds") or ():
            if item.get("idType") == SHA256_EMAIL:
                keys.append("em")
                break
        info = user.get("userInfo")
        if info:
            keys.extend(key for name, key in _MATCH_KEYS.items() if info.get(name))
        return tuple(keys)


def _is_map(value: object) -> TypeGuard[Mapping[str, Any]]:
    """A JSON object (``dict`` first: ``isinstance`` of an ABC costs more)."""
    return type(value) is dict or isinstance(value, Mapping)


@lru_cache(maxsize=256)
def _is_rule(conversion: str) -> bool:
    """A conversion rule urn (an event's few rules are checked once each)."""
    return CONVERSION_RULE.fullmatch(conversion) is not None


def _has_user_id(ids: object) -> bool:
    if not isinstance(ids, list) or not ids:
        return False
    for item in ids:
        if not _is_map(item) or item.get("idType") not in ID_TYPES:
            return False
        value = item.get("idValue")
        if not isinstance(value, str) or not value:
            return False
        if item["idType"] == SHA256_EMAIL and not HEX64.fullmatch(value):
            return False
    return True


def _is_value(value: object) -> bool:
    return (isinstance(value, Mapping) and isinstance(value.get("currencyCode"), str)
            and CURRENCY.fullmatch(value["currencyCode"]) is not None
            and isinstance(value.get("amount"), str)
            and AMOUNT.fullmatch(value["amount"]) is not None)


RULES: Final = LinkedInRules()
_CHECKED: Final[NetworkRules] = RULES  # mypy proves here that RULES is a NetworkRules
