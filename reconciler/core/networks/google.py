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
to nothing, is dropped and counted in ``GoogleBuilder.dropped`` as ``(key, reason)``.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import phonenumbers

from reconciler.core.capi import event_id
from reconciler.core.crm import Contact, FormSubmission, StageChange
from reconciler.core.live import LiveEvent
from reconciler.core.models import AccountSpec, Google, SecretRef
from reconciler.core.normalize import clean, is_hashed
from reconciler.core.places import country_code
from reconciler.core.vocabulary import PROPERTY_KEYS

BATCH_LIMIT: Final = 2000
MAX_AGE: Final = timedelta(days=90)
SAFETY_MARGIN: Final = timedelta(hours=1)  # expire locally before Google's limit
MAX_FUTURE: Final = timedelta(seconds=60)
MAX_IDENTIFIERS: Final = 10
GRANTED: Final = "CONSENT_GRANTED"
DENIED: Final = "CONSENT_DENIED"
CONSENT_VALUES: Final = frozenset({GRANTED, DENIED})
CLICK_IDS: Final = ("gclid", "gbraid", "wbraid")
# Google's click ids are URL-safe base64 text; the stricter reading: 10 to 512 such characters.
CLICK_ID: Final = re.compile(r"[A-Za-z0-9_-]{10,512}")
CURRENCY: Final = re.compile(r"[A-Z]{3}")
HEX64: Final = re.compile(r"[0-9a-f]{64}")
TIMESTAMP: Final = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?Z")
GMAIL_DOMAINS: Final = frozenset({"gmail.com", "googlemail.com"})
SKIP_NO_IDENTIFIER: Final = "no_click_id_or_identifier"
# user_data keys (vocabulary.PROPERTY_KEYS and `as`) Google takes, and where they go
_KEYS: Final = frozenset({"em", "ph", "fn", "ln", "zp", "country"})
_SPACE = re.compile(r"\s+")

__all__ = ["RULES", "GoogleBuilder", "GoogleRules", "norm_email", "norm_name", "norm_phone"]


# -- normalization (pure, never raises) ------------------------------------------------------

def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def norm_email(value: str) -> str | None:
    """Google's email form: no whitespace, lower-cased; gmail.com/googlemail.com without dots
    or ``+suffix`` in the local part. None when it is not ``local@domain``."""
    text = _SPACE.sub("", clean(value)).lower()
    local, at, domain = text.partition("@")
    if not at or not local or not domain or "@" in domain:
        return None
    if domain in GMAIL_DOMAINS:
        local = local.split("+", 1)[0].replace(".", "")
        if not local:
            return None
    return f"{local}@{domain}"


def norm_phone(value: str, default_country_code: str | None) -> str | None:
    """E.164 with ``+`` (``(800) 555-0100`` + ``1`` -> ``+18005550100``); None when
    phonenumbers does not find it a possible number."""
    region = None
    if default_country_code and default_country_code.isdigit():
        code = phonenumbers.region_code_for_country_code(int(default_country_code))
        region = None if code == "ZZ" else code
    try:
        parsed = phonenumbers.parse(clean(value).strip(), region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def norm_name(value: str) -> str | None:
    """Lower-case letters, marks, digits and single spaces (``  O'Brien `` -> ``obrien``)."""
    text = "".join(c for c in clean(value).lower()
                   if c.isspace() or unicodedata.category(c)[0] in "LMN")
    return _SPACE.sub(" ", text).strip() or None


def _hashed(normalized: str | None) -> str | None:
    return sha256_hex(normalized) if normalized else None


def _as_hash(value: str) -> str | None:
    """A value that already is a SHA-256 hex digest, lower-cased (never hashed again)."""
    stripped = value.strip()
    return stripped.lower() if is_hashed(stripped) else None


def _postal(value: str) -> str | None:
    text = _SPACE.sub(" ", clean(value)).strip()
    return text if 0 < len(text) <= 16 and all(c.isalnum() or c in " -" for c in text) else None


def _region(value: str) -> str | None:
    code = country_code(value)
    return code.upper() if code else None


def rfc3339(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_timestamp(value: object) -> int | None:
    """Epoch seconds of an RFC 3339 UTC timestamp as we write it; None otherwise."""
    if type(value) is not str or TIMESTAMP.fullmatch(value) is None:
        return None
    try:
        moment = datetime.fromisoformat(value[:19]).replace(tzinfo=UTC)
    except ValueError:
        return None
    return int(moment.timestamp())


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

    __slots__ = ("_action", "_clicks", "_consent", "_shares", "_value", "account", "dropped",
                 "live")

    def __init__(self, live: LiveEvent, account: AccountSpec) -> None:
        google = _google(account)
        self.live, self.account = live, account
        self._action = live.spec.conversion_action or ""
        self._shares = _shared(live)
        ids = google.click_id_properties
        self._clicks = (("gclid", ids.gclid), ("gbraid", ids.gbraid), ("wbraid", ids.wbraid))
        self._consent = google.consent
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
        if consent["adUserData"] == GRANTED:  # denied: no user identifiers at all
            identifiers = self.identifiers(contact)
            if identifiers:
                event["userData"] = {"userIdentifiers": identifiers}
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
        dcc = self.account.default_country_code
        out: list[dict[str, Any]] = []
        norms = {"em": lambda v: _as_hash(v) or _hashed(norm_email(v)),
                 "ph": lambda v: _as_hash(v) or _hashed(norm_phone(v, dcc))}
        for key, field in (("em", "emailAddress"), ("ph", "phoneNumber")):
            if key in values:
                digest = norms[key](values[key])
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
        parts = {"givenName": _as_hash(values["fn"]) or _hashed(norm_name(values["fn"])),
                 "familyName": _as_hash(values["ln"]) or _hashed(norm_name(values["ln"])),
                 "regionCode": _region(values["country"]),
                 "postalCode": _postal(values["zp"])}
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
        return any(("emailAddress" in i or "phoneNumber" in i)
                   for i in self.identifiers(contact))


# -- checks before queueing and before a retry --------------------------------------------------

def _identifier_reason(item: object) -> str | None:
    if not isinstance(item, Mapping) or len(item) != 1:
        return "bad_identifier"
    (field, value), = item.items()
    if field in ("emailAddress", "phoneNumber"):
        return None if type(value) is str and HEX64.fullmatch(value) else "bad_identifier"
    if field != "address" or not isinstance(value, Mapping):
        return "bad_identifier"
    names = [value.get("givenName"), value.get("familyName")]
    if not all(type(n) is str and HEX64.fullmatch(n) for n in names):
        return "bad_identifier"
    region, postal = value.get("regionCode"), value.get("postalCode")
    if type(region) is not str or not re.fullmatch(r"[A-Z]{2}", region):
        return "bad_identifier"
    return None if type(postal) is str and _postal(postal) == postal else "bad_identifier"


def _user_reason(payload: Mapping[str, Any]) -> tuple[str | None, bool]:
    """(reason, has identifiers) of ``userData``."""
    user = payload.get("userData")
    if user is None:
        return None, False
    ids = user.get("userIdentifiers") if isinstance(user, Mapping) else None
    if not isinstance(ids, list) or not ids or len(ids) > MAX_IDENTIFIERS:
        return "bad_identifier", False
    for item in ids:
        reason = _identifier_reason(item)
        if reason:
            return reason, False
    return None, True


def _click_reason(payload: Mapping[str, Any]) -> tuple[str | None, bool]:
    ads = payload.get("adIdentifiers")
    if ads is None:
        return None, False
    if not isinstance(ads, Mapping) or len(ads) != 1:
        return "bad_click_id", False
    (name, value), = ads.items()
    ok = name in CLICK_IDS and type(value) is str and CLICK_ID.fullmatch(value) is not None
    return (None, True) if ok else ("bad_click_id", False)


def _consent_reason(payload: Mapping[str, Any]) -> str | None:
    consent = payload.get("consent")
    if not isinstance(consent, Mapping) or set(consent) != {"adUserData", "adPersonalization"}:
        return "bad_consent"
    if not all(v in CONSENT_VALUES for v in consent.values()):
        return "bad_consent"
    if consent["adUserData"] == DENIED and "userData" in payload:
        return "bad_consent"  # never send user data the user did not consent to share
    return None


def _value_reason(payload: Mapping[str, Any]) -> str | None:
    has_value, has_currency = "conversionValue" in payload, "currency" in payload
    if has_value != has_currency:
        return "bad_value"
    if not has_value:
        return None
    value, currency = payload["conversionValue"], payload["currency"]
    if type(value) not in (int, float) or not 0 <= value < 10**13:
        return "bad_value"
    return None if type(currency) is str and CURRENCY.fullmatch(currency) else "bad_value"


def validate(payload: Mapping[str, Any], now: datetime, *,
             safety_margin: timedelta = SAFETY_MARGIN) -> str | None:
    """Why Google would refuse this event (None: fine); never raises, whatever the payload."""
    if not isinstance(payload, Mapping):
        return "missing_field"
    tid = payload.get("transactionId")
    if type(tid) is not str or not tid:
        return "missing_field"
    at = parse_timestamp(payload.get("eventTimestamp"))
    if at is None:
        return "bad_timestamp"
    now_s = int((now if now.tzinfo else now.replace(tzinfo=UTC)).timestamp())
    if at < now_s - int((MAX_AGE - safety_margin).total_seconds()):
        return "too_old"
    if at > now_s + int(MAX_FUTURE.total_seconds()):
        return "in_future"
    reason = _consent_reason(payload) or _value_reason(payload)
    if reason:
        return reason
    user_reason, has_user = _user_reason(payload)
    click_reason, has_click = _click_reason(payload)
    if user_reason or click_reason:
        return user_reason or click_reason
    return None if has_user or has_click else SKIP_NO_IDENTIFIER


# -- the rules ----------------------------------------------------------------------------------

_MATCH_KEYS: Final = {"emailAddress": ("em",), "phoneNumber": ("ph",),
                      "address": ("fn", "ln", "zp", "country")}
_MATCH_ORDER: Final = ("em", "ph", "fn", "ln", "zp", "country")


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
        builder = GoogleBuilder(live, account)
        return None if builder.has_identifier(contact, crm_event) else SKIP_NO_IDENTIFIER

    def builder(self, live: LiveEvent, account: AccountSpec) -> GoogleBuilder:
        return GoogleBuilder(live, account)

    def validate(self, payload: Mapping[str, Any], now: datetime) -> str | None:
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
        ids = user.get("userIdentifiers") if isinstance(user, Mapping) else None
        keys: set[str] = set()
        for item in ids if isinstance(ids, list) else ():
            if isinstance(item, Mapping):
                for field in item:
                    keys.update(_MATCH_KEYS.get(field, ()))
        return tuple(k for k in _MATCH_ORDER if k in keys)


RULES: Final = GoogleRules()
