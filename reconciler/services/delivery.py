"""Outbox -> the networks: one delivery pass over the due outbox rows (capi-contract.md,
product.md §5, docs/networks.md).

A pass pages through the due rows of the targets not held off (each row seen once), drops what
must not be sent, and posts the rest per (destination, target, account) in batches of up to
``min(--batch-size, the network's batch_limit)``. The network's rules (``core.networks``) say
how old an event may be and how a payload is checked; its ``Destination`` (``services.ports``)
answers each request with an ``Outcome``, the only thing read here of a network's answers:

- the conversion event was disabled (R19) or deleted since the row was queued: dead letter
  ``disabled`` / ``deleted`` at once (switching on again does not back-fill);
- the event would be refused now: ``expired`` when it is older than the network's
  ``max_age`` (less ``SAFETY_MARGIN``). A row as it was queued was checked in full then (the
  network's ``validate``; the other checks do not depend on the time), so only its age is
  checked again; a row that failed an attempt or came back from the dead letters
  (``OutboxRow.checked`` false) is checked in full again, and dead-lettered with the
  validation reason if it fails;
- ``sent`` with every event received: the rows sent are marked in one statement per page of
  the pass (not per request: one target per LinkedIn conversion rule or Google action makes
  many small requests; a crash before the mark sends them again under the same ids, which the
  networks deduplicate). The
  request body is the rows' stored JSON (``Destination.send`` takes the bytes). Fewer events
  received than sent: which ones is unknown, so the whole batch is retried as below (the
  network deduplicates the ones it had), and a row still not acknowledged after the policy's
  ``max_attempts`` is dead-lettered ``not_received``.
- ``retry`` (5xx, rate limits, timeouts, ...): every row of the batch is rescheduled with
  exponential backoff and full jitter, never sooner than ``retry_after``, and the target is
  held off until then; a row whose next attempt would come after its expiry is dead-lettered
  ``expired`` instead. Retryable failures are retried until expiry (no attempt cap).
- ``reject``: when the network names the refused events (``Outcome.rejected``), those are
  dead-lettered ``rejected`` with its message; the others count as sent when the network says
  it took them (``received``), else they are sent again at once; otherwise the batch is
  split in halves and each half sent again, so one invalid event cannot sink its neighbours,
  and a single refused event is dead-lettered ``rejected``.
- ``pause`` (a token or permission error): the target is paused, logged and shown in status;
  it resumes by itself when the resolved token changes, or with ``convctl agent resume``.

A target whose token cannot be resolved (variable unset, file unreadable) is paused too, with
reason ``token_unavailable``, and resumes by itself once the token can be read. A paused target
is held off: its rows are left out of the pass (and of the agent's idle wait), and its token is
resolved again every ``RECHECK_SECONDS`` to notice a change; ``agent resume`` ends the hold at
once. Each change of state is logged once, not once per pass. A row of a network the agent has
no destination for is left queued (shown as blocked).

A dry run is a destination that writes (``adapters.networks.dry_run``), not a flag.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from reconciler.adapters.agentrows import OutboxRow, PausedTarget
from reconciler.adapters.secrets import SecretUnavailable, describe, fingerprint
from reconciler.core.backoff import BackoffPolicy
from reconciler.core.capi import MAX_BATCH, SAFETY_MARGIN
from reconciler.core.live import LiveAccount, LiveEvent
from reconciler.core.models import SecretRef
from reconciler.core.networks import NetworkRules, Outcome, rules_for
from reconciler.core.provider import StateReader
from reconciler.services.ports import AgentStore, Destination

log = logging.getLogger("reconciler.agent")
PAGE_BATCHES = 5
RECHECK_SECONDS = 30.0  # a paused target's token is resolved again this often
TOKEN_UNAVAILABLE = "token_unavailable"


@dataclass
class DeliveryReport:
    sent: int = 0
    retried: int = 0
    dead: dict[str, int] = field(default_factory=dict)
    requests: int = 0
    paused: list[str] = field(default_factory=list)
    blocked: dict[str, str] = field(default_factory=dict)

    def add_dead(self, reason: str, n: int = 1) -> None:
        self.dead[reason] = self.dead.get(reason, 0) + n


@dataclass
class _Group:
    rules: NetworkRules
    destination: Destination
    target: str
    account: LiveAccount
    token: str
    report: DeliveryReport


def describe_outcome(outcome: Outcome) -> str:
    """``HTTP 400, code 100/2804050: message`` (``no response`` without a status)."""
    parts = [f"HTTP {outcome.status}" if outcome.status is not None else "no response"]
    if outcome.code is not None:
        parts.append(f"code {outcome.code}")
    return ", ".join(parts) + (f": {outcome.message}" if outcome.message else "")


def who(rules: NetworkRules, target: str) -> str:
    """How logs name a target: ``pixel 123...`` for Meta (as before networks), ``LinkedIn
    target urn:...`` for the others."""
    return f"pixel {target}" if rules.name == "meta" else f"{rules.label} target {target}"


def expires_at(rules: NetworkRules, event_time: int) -> float:
    """When an event must be given up locally (epoch seconds): before the network's limit."""
    return event_time + (rules.max_age - SAFETY_MARGIN).total_seconds()


class Deliverer:
    def __init__(self, store: AgentStore, provider: StateReader,
                 destinations: Mapping[str, Destination], *,
                 clock: Callable[[], datetime], rand: Callable[[], float],
                 policy: BackoffPolicy, resolve: Callable[[SecretRef], str],
                 batch_size: int = MAX_BATCH) -> None:
        if batch_size < 1:
            raise ValueError("batch size must be at least 1")
        self._store, self._provider, self._destinations = store, provider, destinations
        self._clock, self._rand, self._policy, self._resolve = clock, rand, policy, resolve
        self._batch = batch_size
        self.holdoff: dict[str, float] = {}  # target -> epoch before which it is not tried
        self.networks: dict[str, str] = {}  # target -> its network (for status)
        self.live_networks: set[str] | None = None  # of the live events the last pass read
        self._recheck: dict[str, float] = {}  # paused target -> when its token is read again
        self._settled: list[int] = []  # rows sent in this page, marked together (``_settle``)

    # -- holds ------------------------------------------------------------------------------

    def held(self, now: float) -> set[str]:
        """Targets not to try now: waiting out a backoff, or paused and not due for a check of
        their token (a target resumed by ``agent resume`` is no longer paused: not held)."""
        held = {target for target, until in self.holdoff.items() if until > now}
        held.update(target for target in self._store.paused_targets()
                    if self._recheck.get(target, 0.0) > now)
        return held

    def held_off(self, now: float) -> dict[str, float]:
        """Targets waiting out a backoff or ``Retry-After``, and until when (epoch seconds)."""
        return {target: until for target, until in self.holdoff.items() if until > now}

    # -- one pass ---------------------------------------------------------------------------

    def deliver_once(self) -> DeliveryReport:
        report = DeliveryReport()
        now = self._clock().timestamp()
        held = self.held(now)
        page = self._store.due(now, self._batch * PAGE_BATCHES, 0, held)
        if not page:  # an idle pass costs two queries, not a read of the live state
            return report
        try:
            live = {e.id: e for e in self._provider.list_events()}
            self.live_networks = {e.spec.destination for e in live.values()}
            accounts = {a.name: a for a in self._provider.list_accounts()}
            while True:
                after = page[-1].seq
                sendable = self._screen(page, live, accounts, report)
                for (network, target, name), rows in _grouped(sendable).items():
                    if target not in held:
                        self._deliver_group(network, target, accounts[name], rows, report, held)
                self._settle()
                if len(page) < self._batch * PAGE_BATCHES:
                    break
                page = self._store.due(now, self._batch * PAGE_BATCHES, after, held)
                if not page:
                    break
        finally:
            self._settle()  # what was sent before a failure is marked, not sent again
            # The rest goes back to the others (rows of targets held off); on a shared store
            # this also commits the page's settlements, whatever ended the pass.
            self._store.release_claims("outbox")
        return report

    def _settle(self) -> None:
        """Mark the rows sent since the last call, in one transaction."""
        if self._settled:
            seqs, self._settled = self._settled, []
            self._store.mark_sent(seqs)

    def _screen(self, rows: list[OutboxRow], live: dict[str, LiveEvent],
                accounts: dict[str, LiveAccount], report: DeliveryReport) -> list[OutboxRow]:
        """Rows still worth sending; the others become dead letters."""
        now = self._clock()
        oldest: dict[str, int] = {}  # per network: the earliest event time still sent
        keep: list[OutboxRow] = []
        dead: dict[tuple[str, str], list[int]] = {}
        for row in rows:
            event = live.get(row.conversion_event_id)
            reason = _unsendable(row, event, accounts, now, oldest)
            if reason is None:
                keep.append(row)
            else:
                dead.setdefault((reason, row.destination), []).append(row.seq)
        for (reason, network), seqs in dead.items():
            report.add_dead(reason, len(seqs))
            self._store.dead(seqs, reason, _dead_message(reason, rules_for(network)))
            log.info("dead-lettered %d event(s): %s", len(seqs), reason)
        return keep

    def _deliver_group(self, network: str, target: str, account: LiveAccount,
                       rows: list[OutboxRow], report: DeliveryReport, held: set[str]) -> None:
        destination = self._destinations.get(network)
        rules = rules_for(network)
        self.networks[target] = network
        if destination is None:
            report.blocked[target] = f"no {rules.label} destination is set up in this agent"
            held.add(target)
            return
        token = self._token(rules, target, account, report)
        if token is None:
            held.add(target)
            return
        group = _Group(rules, destination, target, account, token, report)
        size = min(self._batch, rules.batch_limit)
        for start in range(0, len(rows), size):
            if not self._send(group, rows[start:start + size]):
                held.add(target)
                return

    # -- tokens and pauses ------------------------------------------------------------------

    def _token(self, rules: NetworkRules, target: str, account: LiveAccount,
               report: DeliveryReport) -> str | None:
        """The target's token, or None (the target is paused: why is in the store and
        report)."""
        ref = rules.token_ref(account.spec)
        paused = self._store.paused_targets().get(target)
        try:
            token = self._resolve(ref)
        except SecretUnavailable as exc:
            self._unavailable(rules, target, ref, exc, paused, report)
            return None
        if paused is None:
            return token
        if paused.reason != TOKEN_UNAVAILABLE and paused.token_fingerprint == fingerprint(token):
            report.blocked[target] = f"paused: {paused.message}"
            self._recheck[target] = self._clock().timestamp() + RECHECK_SECONDS
            return None
        self._store.resume_target(target)
        self._recheck.pop(target, None)
        if paused.reason == TOKEN_UNAVAILABLE:
            log.info("%s: the token from %s is available; sending again",
                     who(rules, target), describe(ref))
        else:
            log.warning("%s: the token from %s changed; resuming", who(rules, target),
                        describe(ref))
        return token

    def _unavailable(self, rules: NetworkRules, target: str, ref: SecretRef,
                     exc: SecretUnavailable, paused: PausedTarget | None,
                     report: DeliveryReport) -> None:
        """No token: pause the target (logged once), check again in ``RECHECK_SECONDS``."""
        self._recheck[target] = self._clock().timestamp() + RECHECK_SECONDS
        message = (f"the token from {describe(ref)} is unavailable ({exc}); sending resumes "
                   f"by itself once it can be read (checked every {RECHECK_SECONDS:g} s)")
        report.blocked[target] = message
        if paused is None:  # a target paused for its token stays paused for that reason
            self._store.pause_target(rules.name, target, TOKEN_UNAVAILABLE, message, None)
            report.paused.append(target)
            log.warning("%s paused (%s): %s", who(rules, target), TOKEN_UNAVAILABLE, message)

    def _pause(self, group: _Group, outcome: Outcome) -> None:
        reason = outcome.pause_reason or "token"
        ref = group.rules.token_ref(group.account.spec)
        if reason in ("token", "permission"):  # a new token (or its grant) is the fix
            message = (f"{group.rules.label} refused the token from {describe(ref)} "
                       f"({describe_outcome(outcome)}); fix it: sending resumes when it "
                       f"changes, or `convctl agent resume {group.target}`")
        else:  # the outcome's message says the fix (e.g. an API version no longer served)
            message = (f"{group.rules.label} refused the request ({describe_outcome(outcome)}); "
                       f"then `convctl agent resume {group.target}`")
        self._store.pause_target(group.rules.name, group.target, reason, message,
                                 fingerprint(group.token))
        self._recheck[group.target] = self._clock().timestamp() + RECHECK_SECONDS
        group.report.paused.append(group.target)
        log.error("%s paused (%s): %s", who(group.rules, group.target), reason, message)

    # -- sending ----------------------------------------------------------------------------

    def _send(self, group: _Group, rows: list[OutboxRow]) -> bool:
        """Send one batch (splitting on a refusal); False: stop this target now."""
        outcome = group.destination.send(group.target, group.account.spec,
                                         [r.body for r in rows], group.token)
        group.report.requests += 1
        if outcome.kind == "sent":
            received = outcome.received
            if received is not None and received < len(rows):
                self._backoff(group, rows, f"{group.rules.label} received {received} of "
                              f"{len(rows)} events ({describe_outcome(outcome)})", None,
                              budget=True)
                return False
            self._sent(group, rows)
            return True
        if outcome.kind == "retry":
            self._backoff(group, rows, describe_outcome(outcome), outcome.retry_after)
            return False
        if outcome.kind == "pause":
            self._pause(group, outcome)
            return False
        if outcome.rejected is not None:
            return self._rejected(group, rows, outcome)
        if len(rows) == 1:
            self._reject(group, rows[0], describe_outcome(outcome))
            return True
        half = math.ceil(len(rows) / 2)
        return self._send(group, rows[:half]) and self._send(group, rows[half:])

    def _sent(self, group: _Group, rows: list[OutboxRow]) -> None:
        self._settled.extend(r.seq for r in rows)
        group.report.sent += len(rows)

    def _rejected(self, group: _Group, rows: list[OutboxRow], outcome: Outcome) -> bool:
        """The network named the refused events: those are dead. The others were taken when
        the network says it took them (``received``: LinkedIn answers each element); else it
        took none (Google refuses the whole request) and they are sent again at once."""
        refused = outcome.rejected or {}
        for index, why in sorted(refused.items()):
            if 0 <= index < len(rows):
                self._reject(group, rows[index], f"{describe_outcome(outcome)} ({why})")
        others = [r for i, r in enumerate(rows) if i not in refused]
        if outcome.received is not None and outcome.received >= len(others):
            self._sent(group, others)
            return True
        return not others or self._send(group, others)

    def _reject(self, group: _Group, row: OutboxRow, message: str) -> None:
        self._store.dead([row.seq], "rejected", message)
        group.report.add_dead("rejected")
        log.warning("%s: event %s rejected by %s: %s", who(group.rules, group.target),
                    row.event_id, group.rules.label, message)

    def _backoff(self, group: _Group, rows: list[OutboxRow], error: str,
                 retry_after: float | None, *, budget: bool = False) -> None:
        """Reschedule the rows (held off until then); dead-letter those that would expire
        first and, with ``budget``, those out of attempts (``not_received``)."""
        now = self._clock().timestamp()
        attempt = max(r.attempts for r in rows)
        next_at = now + self._policy.delay(attempt, self._rand, retry_after)
        dead: dict[str, list[int]] = {}
        retry: list[int] = []
        for row in rows:
            if next_at >= expires_at(group.rules, row.event_time):
                dead.setdefault("expired", []).append(row.seq)
            elif budget and self._policy.gives_up(row.attempts + 1):
                dead.setdefault("not_received", []).append(row.seq)
            else:
                retry.append(row.seq)
        self._store.reschedule(retry, next_at, error)
        for reason, seqs in dead.items():
            message = _dead_message("expired", group.rules) if reason == "expired" else (
                f"{error}, {self._policy.max_attempts} times; {group.rules.label} "
                "deduplicates, so `convctl agent retry-dead --reason not_received` can send "
                "them again")
            self._store.dead(seqs, reason, message)
            group.report.add_dead(reason, len(seqs))
            log.warning("%s: dead-lettered %d event(s) (%s): %s",
                        who(group.rules, group.target), len(seqs), reason, message)
        group.report.retried += len(retry)
        self.holdoff[group.target] = next_at
        if retry:
            log.warning("%s: %d event(s) to retry in %.1fs (%s)", who(group.rules, group.target),
                        len(retry), next_at - now, error)


def _dead_message(reason: str, rules: NetworkRules) -> str:
    if reason == "disabled":
        return "the conversion event was switched off (R19)"
    if reason == "deleted":
        return "the conversion event no longer exists"
    if reason == "expired":
        return f"not delivered before {rules.label}'s {rules.max_age.days}-day limit"
    return reason


def _unsendable(row: OutboxRow, event: LiveEvent | None, accounts: dict[str, LiveAccount],
                now: datetime, oldest: dict[str, int]) -> str | None:
    if event is None or row.account not in accounts:
        return "deleted"
    if not event.spec.enabled:
        return "disabled"
    if row.checked:
        bound = oldest.get(row.destination)
        if bound is None:
            rules = rules_for(row.destination)
            bound = oldest[row.destination] = int(
                (now - (rules.max_age - SAFETY_MARGIN)).timestamp())
        return "expired" if row.event_time < bound else None
    reason = rules_for(row.destination).validate(row.payload, now)
    if reason == "too_old":
        return "expired"
    return reason


def _grouped(rows: list[OutboxRow]) -> dict[tuple[str, str, str], list[OutboxRow]]:
    groups: dict[tuple[str, str, str], list[OutboxRow]] = {}
    for row in rows:
        groups.setdefault((row.destination, row.target, row.account), []).append(row)
    return groups

