"""One inbox chunk's work, for ``services.agent``: match, build, check, queue (pure of I/O).

A ``Matcher`` per account and, per live event, its network's rules (``core.networks``), the
network's ``Builder`` and the event's target are made on first use and shared by every row of
the chunk. Each payload is checked by the network's ``validate`` and queued (or dead-lettered
at once with the reason) as a ``NewOutbox`` row carrying what the network's rules say of it:
destination, target, event name and time, match-key mask (``queue_row``).
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any, NamedTuple

from reconciler.adapters.agentrows import NewOutbox
from reconciler.core.coverage import mask_of
from reconciler.core.crm import Contact, FormSubmission, Ignored, StageChange
from reconciler.core.live import LiveAccount, LiveEvent
from reconciler.core.matching import Matcher, MatchResult
from reconciler.core.networks import Builder, NetworkRules, rules_for


def queue_row(conversion_event_id: str, event_id: str, account: str, target: str,
              payload: dict[str, Any], status: str = "queued", reason: str | None = None,
              error: str | None = None, *, network: str = "meta") -> NewOutbox:
    """An outbox row for ``payload`` of ``network``, with what its rules say of it."""
    return outbox_row(rules_for(network), conversion_event_id, event_id, account, target,
                      payload, status, reason, error)


def outbox_row(rules: NetworkRules, conversion_event_id: str, event_id: str, account: str,
               target: str, payload: dict[str, Any], status: str, reason: str | None,
               error: str | None) -> NewOutbox:
    return NewOutbox(conversion_event_id, event_id, account, rules.name, target,
                     rules.event_name(payload), rules.event_time(payload),
                     mask_of(rules.match_keys(payload)), payload, status, reason, error)


class _Route(NamedTuple):
    """A live event's network, builder and target in this chunk."""

    rules: NetworkRules
    builder: Builder
    target: str


class Chunk:
    """The outbox rows and the skip counts of one inbox chunk."""

    def __init__(self, accounts: dict[int, LiveAccount], live: list[LiveEvent],
                 contacts: dict[tuple[int, str], Contact]) -> None:
        self.accounts, self._live, self._contacts = accounts, live, contacts
        self._matchers: dict[str, Matcher] = {}
        self._routes: dict[str, _Route | None] = {}
        self.queued: list[NewOutbox] = []
        self.skips: Counter[tuple[str, str]] = Counter()

    def match(self, event: StageChange | FormSubmission | Ignored
              ) -> tuple[LiveAccount, Contact | None, MatchResult] | None:
        """The event's account, contact and match, duplicates not yet checked; None (counted)
        for an ignored event or an unknown portal."""
        if isinstance(event, Ignored):
            self.skips[("ignored", "")] += 1
            return None
        account = self.accounts.get(event.portal_id)
        if account is None:
            self.skips[("unknown_portal", "")] += 1
            return None
        matcher = self._matchers.get(account.name)
        if matcher is None:
            matcher = self._matchers[account.name] = Matcher(self._live, account)
        contact = self._contacts.get((event.portal_id, event.contact_id))
        return account, contact, matcher.match(event, contact)

    def enqueue(self, event: StageChange | FormSubmission | Ignored, account: LiveAccount,
                contact: Contact | None, result: MatchResult, seen: set[str],
                now: datetime) -> None:
        """Count the skips; queue (or dead-letter) the payload of each event fired and not
        seen before (R16)."""
        assert not isinstance(event, Ignored)
        skips = self.skips
        for skip in result.skips:
            skips[(skip.reason, skip.live_event.id if skip.live_event else "")] += 1
        for fire in result.fires:
            live = fire.live_event
            if fire.dedup_key in seen:
                skips[("duplicate", live.id)] += 1
                continue
            seen.add(fire.dedup_key)
            route = self._route(live, account)
            try:
                if route is None:
                    raise ValueError("the account has no block for the event's network")
                payload = route.builder.build(event, contact)
            except ValueError:  # garbage the core could not shape: counted, never a crash
                skips[("invalid_event", live.id)] += 1
                continue
            rules = route.rules
            reason = rules.validate(payload, now)
            self.queued.append(outbox_row(
                rules, live.id, fire.dedup_key, account.name, route.target, payload,
                "dead" if reason else "queued", reason,
                f"not sent: the payload breaks the {_contract(rules)} contract ({reason})"
                if reason else None))

    def _route(self, live: LiveEvent, account: LiveAccount) -> _Route | None:
        if live.id in self._routes:
            return self._routes[live.id]
        rules = rules_for(live.spec.destination)
        try:
            route: _Route | None = _Route(rules, rules.builder(live, account.spec),
                                          rules.target(live, account.spec))
        except ValueError:  # no block for the network (validation refuses that: E202)
            route = None
        self._routes[live.id] = route
        return route


def _contract(rules: NetworkRules) -> str:
    return "Conversions API" if rules.name == "meta" else rules.label


def needed_properties(account: LiveAccount, live: list[LiveEvent]) -> set[str]:
    """Contact properties the account's events read: shared ones (R15), consent (R14) and
    those their network reads (``NetworkRules.properties``)."""
    props: set[str] = set()
    for event in live:
        if event.account != account.name:
            continue
        props.update(event.spec.data_sharing.property_names())
        form = event.spec.trigger.form_submission
        if form is not None and form.consent is not None:
            props.add(form.consent.property)
        try:
            props.update(rules_for(event.spec.destination).properties(event, account.spec))
        except ValueError:  # no block for the network: its events queue nothing
            continue
    return props
