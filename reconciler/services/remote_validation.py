"""``plan --validate-remote``: ask Google Ads whether the plan's conversion events would be taken.

For every Google Ads conversion event the plan creates, updates or replaces, one synthetic
event (a made-up person: ``convctl.validate@example.com``, a placeholder click id, the event's
own consent, value, currency and conversion action) is built with the event's real rules and
sent with ``validateOnly: true``: Google checks it as it would a real one and records nothing.
A refusal becomes an error diagnostic (E601-E609) at the event's manifest; the token comes from
the account's reference and never appears in a message.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import orjson

from reconciler.core.crm import Contact, FormSubmission, StageChange
from reconciler.core.live import LiveEvent
from reconciler.core.models import Account, AccountSpec, ConversionEvent, SecretRef
from reconciler.core.networks import Outcome
from reconciler.core.networks.google import RULES
from reconciler.core.plan import Action, Plan
from reconciler.core.source import Located
from reconciler.core.validate import ManifestSet
from reconciler.core.vocabulary import PROPERTY_KEYS
from reconciler.diagnostics import Diagnostics
from reconciler.errors import PermanentError

CHECKED = frozenset({Action.CREATE, Action.UPDATE, Action.DELETE_CREATE, Action.CREATE_DELETE})
PLACEHOLDER_CLICK_ID = "convctl-validate-remote-click-id"
# key -> a made-up value for every property an event may share
SYNTHETIC = {"em": "convctl.validate@example.com", "ph": "+16505550100", "fn": "Convctl",
             "ln": "Validate", "zp": "94035", "country": "US"}
# Google's ErrorInfo reason -> our code (E601: any other refusal)
REASON_CODES = {
    "INVALID_CONVERSION_ACTION_ID": "E602", "INVALID_CONVERSION_ACTION_TYPE": "E602",
    "NOT_FOUND": "E602", "INVALID_CURRENCY_CODE": "E607",
    "TERMS_AND_CONDITIONS_NOT_SIGNED": "E608",
    "DESTINATION_ACCOUNT_NOT_ENABLED_ENHANCED_CONVERSIONS_FOR_LEADS": "E608",
    "DESTINATION_ACCOUNT_DATA_POLICY_PROHIBITS_ENHANCED_CONVERSIONS": "E608",
    "DESTINATION_ACCOUNT_ENHANCED_CONVERSIONS_TERMS_NOT_SIGNED": "E608",
    "INVALID_DESTINATION": "E609", "DIFFERENT_LOGIN_ACCOUNTS_NOT_ALLOWED_FOR_DATA_PARTNER": "E609",
}


class Sender(Protocol):
    def send(self, target: str, account: AccountSpec, events: list[bytes],
             token: str) -> Outcome: ...


@dataclass(frozen=True)
class RemoteReport:
    checked: int
    diagnostics: Diagnostics


def _changed_google_events(plan: Plan, manifests: ManifestSet
                           ) -> Iterator[tuple[Located[ConversionEvent], Located[Account]]]:
    wanted = {(c.account, c.name) for c in plan.changes
              if c.kind == "event" and c.action in CHECKED}
    for located in manifests.events:
        event = located.model
        account = manifests.account(event.spec.account)
        if (event.spec.account, event.name) in wanted and event.spec.destination == "google" \
                and account is not None and account.model.spec.google is not None:
            yield located, account


def _crm_event(event: ConversionEvent, portal: int, at: datetime
               ) -> FormSubmission | StageChange:
    who, trigger = "validate-remote", event.spec.trigger
    if trigger.lifecycle_stage_change is not None:
        stage = trigger.lifecycle_stage_change.stages[0]
        return StageChange(portal, who, stage, at, who)
    form = trigger.form_submission.form_id if trigger.form_submission else ""
    return FormSubmission(portal, form, who, who, at)


def synthetic_payload(event: ConversionEvent, account: AccountSpec,
                      now: datetime) -> dict[str, Any]:
    """The event's rules applied to a made-up contact, one minute ago. The contact has a value
    for every property the event shares; it gets a placeholder click id only when the event
    would carry no user identifier otherwise (Google may check a click id more closely than
    its format)."""
    live = _live(event, now)
    props: dict[str, str] = {}
    for item in event.spec.data_sharing.properties:
        prop, key = (item, PROPERTY_KEYS.get(item)) if isinstance(item, str) else (
            item.property, item.as_)
        if key in SYNTHETIC:
            props[prop] = SYNTHETIC[key]
    builder = RULES.builder(live, account)
    crm_event = _crm_event(event, account.portal_id, now - timedelta(minutes=1))
    payload = builder.build(crm_event, Contact(account.portal_id, "validate-remote", props))
    if "userData" not in payload:
        props.update(dict.fromkeys(RULES.properties(live, account), PLACEHOLDER_CLICK_ID))
        payload = builder.build(crm_event, Contact(account.portal_id, "validate-remote", props))
    return payload


def _code(outcome: Outcome, reason: str | None) -> str:
    if outcome.kind == "pause":
        return "E603" if outcome.pause_reason == "token" else "E604"
    if outcome.kind == "retry":
        return "E606"
    return REASON_CODES.get(reason or "", "E601")


def validate_remote(plan: Plan, manifests: ManifestSet, sender: Sender,
                    resolve: Callable[[SecretRef], str], reason_of: Callable[[Outcome], str | None],
                    now: datetime | None = None) -> RemoteReport:
    """Send one ``validateOnly`` event per changed Google Ads conversion event; every refusal
    is an error diagnostic at the event's manifest."""
    moment = now or datetime.now(UTC).replace(microsecond=0)
    diags, checked = Diagnostics(), 0
    for located, account in _changed_google_events(plan, manifests):
        event, spec = located.model, account.model.spec
        google = spec.google
        assert google is not None
        target = RULES.target(_live(event, moment), spec)
        try:
            token = resolve(google.access_token)
        except PermanentError as exc:  # SecretUnavailable: names the reference, never a value
            diags.error("E605", f"cannot validate {event.key} with Google Ads: the account's "
                        f"access token is unavailable ({exc})", account.at("spec", "google"))
            continue
        payload = orjson.dumps(synthetic_payload(event, spec, moment))
        outcome = sender.send(target, spec, [payload], token)
        checked += 1
        if outcome.kind != "sent":
            code = _code(outcome, reason_of(outcome))
            diags.error(code, _message(code, event, google.customer_id, outcome, token),
                        located.at("spec", "conversionAction"))
    return RemoteReport(checked, diags)


def _message(code: str, event: ConversionEvent, customer: str, outcome: Outcome,
             token: str) -> str:
    what = (f"conversion action {event.spec.conversion_action} of customer {customer}")
    said = outcome.message or outcome.kind
    if len(token) >= 8:  # Google never echoes it; should it ever, it is not printed
        said = said.replace(token, "(token not shown)")
    if code == "E606":
        return f"could not ask Google Ads about {event.key} ({what}): {said}"
    return f"Google Ads refused a test event of {event.key} ({what}): {said}"


def _live(event: ConversionEvent, now: datetime) -> LiveEvent:
    return LiveEvent(id=f"validate-remote:{event.key}", account=event.spec.account,
                     name=event.name, spec=event.spec, created_at=now, updated_at=now)
