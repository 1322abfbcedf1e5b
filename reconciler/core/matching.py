"""Which live conversion events a CRM event fires, and why the others do not (pure).

``match(event, contact, live_events, account, seen)`` (or ``Matcher(live_events,
account).match(event, contact, seen)`` for many events) looks at the account's conversion events
whose trigger kind fits the CRM event (form events for a submission, lifecycle events for a stage
change) and returns a ``Fire`` for each that fires and a ``Skip`` with a stable reason code for
each that does not. Checks run in this order and the first failing one is the reason:

    disabled (R19) -> before_creation (R4) ->
      lifecycle: stage_not_selected (R6) -> no_contact
      form:      other_form (R12) -> no_contact -> no_consent (R14)
    -> the event's network's own rules (``core.networks``: ``NetworkRules.skip_reason``; Meta:
       lifecycle no_lead_id (R5) -> no_ad_interaction (R8)) -> duplicate (R16)

``no_conversion_event`` (one skip, no live event) means the account has no event of that kind.
``duplicate`` asks the caller's ``seen`` (a container or predicate) about ``dedup_key``, which is
the Meta ``event_id`` of the pair, so a re-delivered submission or stage change syncs once (R16).
"""

from __future__ import annotations

from collections.abc import Callable, Container, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import NamedTuple

from reconciler.core.capi import event_id
from reconciler.core.crm import Contact, FormSubmission, StageChange
from reconciler.core.live import LiveAccount, LiveEvent
from reconciler.core.models import AccountSpec
from reconciler.core.networks import NetworkRules, rules_for

# The shared reasons; a network's own (``NetworkRules.skip_reason``) are strings too.
SkipReason = str
RULES: dict[str, str] = {
    "no_conversion_event": "R1", "disabled": "R19", "before_creation": "R4",
    "stage_not_selected": "R6", "no_contact": "R5", "no_lead_id": "R5",
    "no_ad_interaction": "R8", "other_form": "R12", "no_consent": "R14", "duplicate": "R16",
    # the networks' own (core.networks): no identifier the network can match on is shared
    "no_user_id": "R15", "no_click_id_or_identifier": "R15",
}

Seen = Container[str] | Callable[[str], bool]


# Results are named tuples: made once per CRM event and conversion event, at a third of a
# frozen dataclass's cost.
class Fire(NamedTuple):
    """``live_event`` fires for the CRM event; ``dedup_key`` is also the Meta ``event_id``."""

    live_event: LiveEvent
    dedup_key: str


class Skip(NamedTuple):
    """``live_event`` (None for ``no_conversion_event``) does not fire, for ``reason``."""

    reason: SkipReason
    live_event: LiveEvent | None = None

    @property
    def rule(self) -> str:
        return RULES.get(self.reason, "R1")


class MatchResult(NamedTuple):
    fires: tuple[Fire, ...]
    skips: tuple[Skip, ...]

    @property
    def fired(self) -> bool:
        return bool(self.fires)


def dedup_key(live_event: LiveEvent, crm_event: FormSubmission | StageChange) -> str:
    return event_id(live_event.id, crm_event.source_id)


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def _contains(seen: Seen | None) -> Callable[[str], bool] | None:
    if seen is None or isinstance(seen, set | frozenset):
        return None if not seen else seen.__contains__
    if isinstance(seen, Container):
        return seen.__contains__
    return seen


@dataclass(frozen=True, slots=True)
class _Rule:
    """One live event's trigger, read once: what ``Matcher`` checks per CRM event."""

    live: LiveEvent
    enabled: bool
    created_at: datetime  # aware
    network: NetworkRules  # the event's network: its own rules come after the shared ones
    account: AccountSpec
    stages: frozenset[str] = frozenset()  # lifecycle: the selected stages, trimmed
    form_id: str | None = None  # form
    consent: tuple[str, str] | None = None  # form: (property, value) (R14)

    @classmethod
    def of(cls, live: LiveEvent, account: AccountSpec) -> _Rule:
        common = (live, live.spec.enabled, _utc(live.created_at),
                  rules_for(live.spec.destination), account)
        stage = live.spec.trigger.lifecycle_stage_change
        if stage is not None:
            return cls(*common, stages=frozenset(s.strip() for s in stage.stages))
        form = live.spec.trigger.form_submission
        assert form is not None
        consent = (form.consent.property, form.consent.value) if form.consent else None
        return cls(*common, form_id=form.form_id, consent=consent)

    def lifecycle_reason(self, change: StageChange,
                         contact: Contact | None) -> SkipReason | None:
        if change.stage.strip() not in self.stages:
            return "stage_not_selected"
        if contact is None:
            return "no_contact"
        return self.network.skip_reason(self.live, self.account, change, contact)

    def form_reason(self, submission: FormSubmission,
                    contact: Contact | None) -> SkipReason | None:
        if self.form_id != submission.form_id:
            return "other_form"
        if contact is None:
            return "no_contact"
        if self.consent is None:  # R14 requires one; without it consent cannot be established
            return "no_consent"
        prop, value = self.consent
        given = contact.properties.get(prop)
        if given is None or given.strip() != value:
            return "no_consent"
        return self.network.skip_reason(self.live, self.account, submission, contact)


class Matcher:
    """``match`` for the CRM events of one account: its live events are read, split by trigger
    kind and sorted once (the agent builds one per account and inbox chunk), not per event."""

    def __init__(self, live_events: Iterable[LiveEvent], account: LiveAccount) -> None:
        self.account = account
        self._portal = account.spec.portal_id
        mine = sorted((e for e in live_events if e.account == account.name),
                      key=lambda e: e.id)
        spec = account.spec
        self._forms = tuple(_Rule.of(e, spec) for e in mine
                            if e.spec.trigger.kind == "formSubmission")
        self._stages = tuple(_Rule.of(e, spec) for e in mine
                             if e.spec.trigger.kind == "lifecycleStageChange")

    def match(self, event: FormSubmission | StageChange, contact: Contact | None,
              seen: Seen | None = None) -> MatchResult:
        """Fires and skips of one CRM event; ``seen`` holds (or answers for) the dedup keys
        already synced (R16); without it no duplicate is reported (the caller settles them)."""
        if event.portal_id != self._portal:
            raise ValueError("the CRM event's portal is not the account's portal")
        is_form = isinstance(event, FormSubmission)
        rules = self._forms if is_form else self._stages
        if not rules:
            return MatchResult((), (Skip("no_conversion_event"),))
        at = _utc(event.submitted_at if isinstance(event, FormSubmission)
                  else event.occurred_at)
        source = event.source_id
        is_seen = _contains(seen)
        fires: list[Fire] = []
        skips: list[Skip] = []
        for rule in rules:
            reason: SkipReason | None
            if not rule.enabled:
                reason = "disabled"
            elif at <= rule.created_at:
                reason = "before_creation"
            elif isinstance(event, FormSubmission):
                reason = rule.form_reason(event, contact)
            else:
                reason = rule.lifecycle_reason(event, contact)
            if reason is None:
                key = event_id(rule.live.id, source)
                if is_seen is not None and is_seen(key):
                    reason = "duplicate"
                else:
                    fires.append(Fire(rule.live, key))
                    continue
            skips.append(Skip(reason, rule.live))
        return MatchResult(tuple(fires), tuple(skips))


def match(event: FormSubmission | StageChange, contact: Contact | None,
          live_events: Iterable[LiveEvent], account: LiveAccount,
          seen: Seen = frozenset()) -> MatchResult:
    """Fires and skips of one CRM event against the account's live conversion events.

    ``seen`` holds (or answers for) the dedup keys already synced (R16).
    """
    return Matcher(live_events, account).match(event, contact, seen)
