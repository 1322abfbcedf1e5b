"""Which live conversion events a CRM event fires, and why the others do not (pure).

``match(event, contact, live_events, account, seen)`` looks at the account's conversion events
whose trigger kind fits the CRM event (form events for a submission, lifecycle events for a stage
change) and returns a ``Fire`` for each that fires and a ``Skip`` with a stable reason code for
each that does not. Checks run in this order and the first failing one is the reason:

    disabled (R19) -> before_creation (R4) ->
      lifecycle: stage_not_selected (R6) -> no_contact -> no_lead_id (R5) -> no_ad_interaction (R8)
      form:      other_form (R12) -> no_contact -> no_consent (R14)
    -> duplicate (R16)

``no_conversion_event`` (one skip, no live event) means the account has no event of that kind.
A contact is known to have interacted with ads (R8) when its ad-interaction flag is set or it
carries a Meta click id (``fbc``). A lead id that is not 15-17 digits counts as none (R5).
``duplicate`` asks the caller's ``seen`` (a container or predicate) about ``dedup_key``, which is
the Meta ``event_id`` of the pair, so a re-delivered submission or stage change syncs once (R16).
"""

from __future__ import annotations

from collections.abc import Callable, Container, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from reconciler.core.capi import LEAD_ID, event_id
from reconciler.core.crm import Contact, FormSubmission, StageChange
from reconciler.core.live import LiveAccount, LiveEvent

SkipReason = Literal[
    "no_conversion_event", "disabled", "before_creation", "stage_not_selected", "no_contact",
    "no_lead_id", "no_ad_interaction", "other_form", "no_consent", "duplicate",
]
RULES: dict[str, str] = {
    "no_conversion_event": "R1", "disabled": "R19", "before_creation": "R4",
    "stage_not_selected": "R6", "no_contact": "R5", "no_lead_id": "R5",
    "no_ad_interaction": "R8", "other_form": "R12", "no_consent": "R14", "duplicate": "R16",
}

Seen = Container[str] | Callable[[str], bool]


@dataclass(frozen=True, slots=True)
class Fire:
    """``live_event`` fires for the CRM event; ``dedup_key`` is also the Meta ``event_id``."""

    live_event: LiveEvent
    dedup_key: str


@dataclass(frozen=True, slots=True)
class Skip:
    """``live_event`` (None for ``no_conversion_event``) does not fire, for ``reason``."""

    reason: SkipReason
    live_event: LiveEvent | None = None

    @property
    def rule(self) -> str:
        return RULES[self.reason]


@dataclass(frozen=True, slots=True)
class MatchResult:
    fires: tuple[Fire, ...]
    skips: tuple[Skip, ...]

    @property
    def fired(self) -> bool:
        return bool(self.fires)


def dedup_key(live_event: LiveEvent, crm_event: FormSubmission | StageChange) -> str:
    return event_id(live_event.id, crm_event.source_id)


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def _is_seen(seen: Seen, key: str) -> bool:
    if isinstance(seen, Container):
        return key in seen
    return seen(key)


def has_lead_id(contact: Contact) -> bool:
    return contact.meta_lead_id is not None and LEAD_ID.fullmatch(
        contact.meta_lead_id.strip()) is not None


def _lifecycle_reason(live: LiveEvent, change: StageChange,
                      contact: Contact | None) -> SkipReason | None:
    trigger = live.spec.trigger.lifecycle_stage_change
    assert trigger is not None
    if change.stage.strip() not in {s.strip() for s in trigger.stages}:
        return "stage_not_selected"
    if contact is None:
        return "no_contact"
    if not has_lead_id(contact):
        return "no_lead_id"
    if trigger.contacts == "adInteractions" and not (contact.ad_interaction or contact.fbc):
        return "no_ad_interaction"
    return None


def _form_reason(live: LiveEvent, submission: FormSubmission,
                 contact: Contact | None) -> SkipReason | None:
    trigger = live.spec.trigger.form_submission
    assert trigger is not None
    if trigger.form_id != submission.form_id:
        return "other_form"
    if contact is None:
        return "no_contact"
    consent = trigger.consent
    if consent is None:  # R14 requires one; without it consent cannot be established
        return "no_consent"
    given = contact.properties.get(consent.property)
    if given is None or given.strip() != consent.value:
        return "no_consent"
    return None


def _reason(live: LiveEvent, event: FormSubmission | StageChange, contact: Contact | None,
            seen: Seen) -> SkipReason | None:
    if not live.spec.enabled:
        return "disabled"
    at = event.submitted_at if isinstance(event, FormSubmission) else event.occurred_at
    if _utc(at) <= _utc(live.created_at):
        return "before_creation"
    if isinstance(event, FormSubmission):
        reason = _form_reason(live, event, contact)
    else:
        reason = _lifecycle_reason(live, event, contact)
    if reason is None and _is_seen(seen, dedup_key(live, event)):
        return "duplicate"
    return reason


def candidates(event: FormSubmission | StageChange, live_events: Iterable[LiveEvent],
               account: LiveAccount) -> list[LiveEvent]:
    """The account's live events whose trigger kind fits the CRM event."""
    kind = "formSubmission" if isinstance(event, FormSubmission) else "lifecycleStageChange"
    return [e for e in live_events
            if e.account == account.name and e.spec.trigger.kind == kind]


def match(event: FormSubmission | StageChange, contact: Contact | None,
          live_events: Iterable[LiveEvent], account: LiveAccount,
          seen: Seen = frozenset()) -> MatchResult:
    """Fires and skips of one CRM event against the account's live conversion events.

    ``seen`` holds (or answers for) the dedup keys already synced (R16).
    """
    if event.portal_id != account.spec.portal_id:
        raise ValueError("the CRM event's portal is not the account's portal")
    fires: list[Fire] = []
    skips: list[Skip] = []
    pool = sorted(candidates(event, live_events, account), key=lambda e: e.id)
    for live in pool:
        reason = _reason(live, event, contact, seen)
        if reason is None:
            fires.append(Fire(live, dedup_key(live, event)))
        else:
            skips.append(Skip(reason, live))
    if not pool:
        skips.append(Skip("no_conversion_event"))
    return MatchResult(tuple(fires), tuple(skips))
