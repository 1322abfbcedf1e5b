"""Meta's rules (capi-contract.md): the first network, over ``core.capi`` (pure).

The target is the account's pixel; the token is the Facebook block's. Meta's own matching rules
come after the shared ones, for lifecycle events only: a contact without a valid Meta lead id
is skipped ``no_lead_id`` (R5; a lead id that is not 15-17 digits counts as none), and when the
event syncs only contacts who interacted with ads, one with neither the ad-interaction flag nor
a Meta click id (``fbc``) is skipped ``no_ad_interaction`` (R8). Payloads are built, checked and
expire as ``core.capi`` says (7 days, less its safety margin).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, Final

from reconciler.core.capi import LEAD_ID, MAX_AGE, MAX_BATCH, PayloadBuilder, validate_payload
from reconciler.core.coverage import MATCH_KEYS
from reconciler.core.crm import Contact, FormSubmission, StageChange
from reconciler.core.live import LiveEvent
from reconciler.core.models import AccountSpec, SecretRef

_MATCH_KEYS: Final = frozenset(MATCH_KEYS)
_KEYS: dict[tuple[str, ...], tuple[str, ...]] = {}  # user_data keys -> the match keys among them
_KEYS_MAX: Final = 4096


def has_lead_id(contact: Contact) -> bool:
    """R5: the contact has a Meta lead id of 15-17 digits."""
    return contact.meta_lead_id is not None and LEAD_ID.fullmatch(
        contact.meta_lead_id.strip()) is not None


class MetaRules:
    """``NetworkRules`` for Meta's Conversions API."""

    name: str = "meta"
    label: str = "Meta"
    batch_limit: int = MAX_BATCH
    max_age: timedelta = MAX_AGE

    def target(self, live: LiveEvent, account: AccountSpec) -> str:
        return account.meta.pixel_id

    def token_ref(self, account: AccountSpec) -> SecretRef:
        return account.meta.access_token

    def properties(self, live: LiveEvent, account: AccountSpec) -> set[str]:
        return set()  # the lead id and ad interaction come with the contact itself

    def skip_reason(self, live: LiveEvent, account: AccountSpec,
                    crm_event: FormSubmission | StageChange, contact: Contact) -> str | None:
        if isinstance(crm_event, FormSubmission):
            return None
        if not has_lead_id(contact):
            return "no_lead_id"
        stage = live.spec.trigger.lifecycle_stage_change
        if (stage is not None and stage.contacts == "adInteractions"
                and not (contact.ad_interaction or contact.fbc)):
            return "no_ad_interaction"
        return None

    def builder(self, live: LiveEvent, account: AccountSpec) -> PayloadBuilder:
        return PayloadBuilder(live, account)

    def validate(self, payload: Mapping[str, Any], now: datetime) -> str | None:
        return validate_payload(payload, now)

    def event_time(self, payload: Mapping[str, Any]) -> int:
        return int(payload.get("event_time") or 0)

    def event_name(self, payload: Mapping[str, Any]) -> str:
        return str(payload.get("event_name", ""))

    def match_keys(self, payload: Mapping[str, Any]) -> tuple[str, ...]:
        """The user_data keys that are match keys (cached by the keys in their order: the
        payloads of one event share a handful of key sets)."""
        user_data = payload.get("user_data")
        if not user_data:
            return ()
        keys = tuple(user_data)
        found = _KEYS.get(keys)
        if found is None:
            if len(_KEYS) >= _KEYS_MAX:
                _KEYS.clear()
            found = _KEYS[keys] = tuple(k for k in keys if k in _MATCH_KEYS)
        return found


RULES: Final = MetaRules()
