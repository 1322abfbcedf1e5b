"""Outbox -> Meta: one delivery pass over the due outbox rows (capi-contract.md, product.md §5).

A pass pages through the due rows of the pixels not held off (each row seen once), drops what
must not be sent, and posts the rest per (pixel, account) in batches of up to 1,000:

- the conversion event was disabled (R19) or deleted since the row was queued: dead letter
  ``disabled`` / ``deleted`` at once (switching on again does not back-fill);
- the event would be refused now: ``expired`` when it is too old. A row as it was queued was
  checked in full then (``validate_payload``; the other checks do not depend on the time), so
  only its age is checked again; a row that failed an attempt or came back from the dead
  letters (``OutboxRow.checked`` false) is checked in full again, and dead-lettered with the
  validation reason if it fails;
- ``ok`` with ``events_received`` equal to the batch size: sent (the batch's rows are marked in
  one statement). The request body is the rows' stored JSON joined (``send_encoded``), not
  parsed and encoded again. Fewer events received than sent: which ones is unknown, so the
  whole batch is retried as below (Meta deduplicates the ones it had), and a row still not
  acknowledged after the policy's ``max_attempts`` is dead-lettered ``not_received``.
- ``retry`` (5xx, 613, timeouts, ...): every row of the batch is rescheduled with
  exponential backoff and full jitter, never sooner than ``Retry-After``, and the pixel is held
  off until then; a row whose next attempt would come after its expiry is dead-lettered
  ``expired`` instead. Retryable failures are retried until expiry (no attempt cap: the 7-day
  limit is the bound).
- ``permanent``: the batch is split in halves and each half sent again, so one invalid event
  cannot sink its neighbours; a single refused event is dead-lettered ``rejected`` with Meta's
  message. Permission errors (10, 200-299) pause the pixel instead, as
- ``token`` (190/102) does: the pixel is paused, logged and shown in status; it resumes by itself
  when the resolved token changes, or with ``convctl agent resume``.

A pixel whose token cannot be resolved (variable unset, file unreadable) is paused too, with
reason ``token_unavailable``, and resumes by itself once the token can be read. A paused pixel
is held off: its rows are left out of the pass (and of the agent's idle wait), and its token is
resolved again every ``RECHECK_SECONDS`` to notice a change; ``agent resume`` ends the hold at
once. Each change of state is logged once, not once per pass.

A dry run is a ``DryRunSender`` destination (``adapters.meta``): it writes instead of sending.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, runtime_checkable

from reconciler.adapters.agentrows import OutboxRow, PausedPixel
from reconciler.adapters.meta import SendResult
from reconciler.adapters.secrets import SecretUnavailable, describe, fingerprint
from reconciler.core.backoff import PERMISSION_CODES, BackoffPolicy
from reconciler.core.capi import MAX_BATCH, expires_at, is_expired, validate_payload
from reconciler.core.live import LiveAccount, LiveEvent
from reconciler.core.models import SecretRef
from reconciler.core.provider import StateReader
from reconciler.services.ports import AgentStore

log = logging.getLogger("reconciler.agent")
PAGE_BATCHES = 5
RECHECK_SECONDS = 30.0  # a paused pixel's token is resolved again this often
TOKEN_UNAVAILABLE = "token_unavailable"
# Why a pixel can be paused (the ``reason`` of a paused pixel: a bounded set, for metrics).
PAUSE_REASONS = ("permission", "token", TOKEN_UNAVAILABLE)


class Sender(Protocol):
    """A destination for one pixel's batches: Meta (``GraphSender``) or a dry-run file."""

    def send(self, pixel_id: str, events: Sequence[dict[str, object]], token: str,
             test_event_code: str | None = None) -> SendResult: ...


@runtime_checkable
class EncodedSender(Protocol):
    """A sender that also takes the events as JSON bytes (``GraphSender``): used when there."""

    def send_encoded(self, pixel_id: str, events: Sequence[bytes], token: str,
                     test_event_code: str | None = None) -> SendResult: ...


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
    pixel_id: str
    account: LiveAccount
    token: str
    report: DeliveryReport


class Deliverer:
    def __init__(self, store: AgentStore, provider: StateReader, sender: Sender, *,
                 clock: Callable[[], datetime], rand: Callable[[], float],
                 policy: BackoffPolicy, resolve: Callable[[SecretRef], str],
                 batch_size: int = MAX_BATCH, test_event_code: str | None = None) -> None:
        if not 1 <= batch_size <= MAX_BATCH:
            raise ValueError(f"batch size must be between 1 and {MAX_BATCH}")
        self._store, self._provider, self._sender = store, provider, sender
        self._encoded = sender if isinstance(sender, EncodedSender) else None
        self._clock, self._rand, self._policy, self._resolve = clock, rand, policy, resolve
        self._batch, self._test_code = batch_size, test_event_code
        self.holdoff: dict[str, float] = {}  # pixel -> epoch before which it is not tried
        self._recheck: dict[str, float] = {}  # paused pixel -> when its token is read again

    # -- holds ------------------------------------------------------------------------------

    def held(self, now: float) -> set[str]:
        """Pixels not to try now: waiting out a backoff, or paused and not due for a check of
        their token (a pixel resumed by ``agent resume`` is no longer paused: not held)."""
        held = {pixel for pixel, until in self.holdoff.items() if until > now}
        held.update(pixel for pixel in self._store.paused_pixels()
                    if self._recheck.get(pixel, 0.0) > now)
        return held

    def held_off(self, now: float) -> dict[str, float]:
        """Pixels waiting out a backoff or ``Retry-After``, and until when (epoch seconds)."""
        return {pixel: until for pixel, until in self.holdoff.items() if until > now}

    # -- one pass ---------------------------------------------------------------------------

    def deliver_once(self) -> DeliveryReport:
        report = DeliveryReport()
        now = self._clock().timestamp()
        held = self.held(now)
        page = self._store.due(now, self._batch * PAGE_BATCHES, 0, held)
        if not page:  # an idle pass costs two queries, not a read of the live state
            return report
        live = {e.id: e for e in self._provider.list_events()}
        accounts = {a.name: a for a in self._provider.list_accounts()}
        while True:
            after = page[-1].seq
            sendable = self._screen(page, live, accounts, report)
            for (pixel, name), rows in _grouped(sendable).items():
                if pixel not in held:
                    self._deliver_group(pixel, accounts[name], rows, report, held)
            if len(page) < self._batch * PAGE_BATCHES:
                break
            page = self._store.due(now, self._batch * PAGE_BATCHES, after, held)
            if not page:
                break
        self._store.release_claims()  # rows of pixels held off during the pass, for others
        return report

    def _screen(self, rows: list[OutboxRow], live: dict[str, LiveEvent],
                accounts: dict[str, LiveAccount], report: DeliveryReport) -> list[OutboxRow]:
        """Rows still worth sending; the others become dead letters."""
        now = self._clock()
        keep: list[OutboxRow] = []
        dead: dict[str, list[int]] = {}
        for row in rows:
            event = live.get(row.conversion_event_id)
            reason = _unsendable(row, event, accounts, now)
            if reason is None:
                keep.append(row)
            else:
                dead.setdefault(reason, []).append(row.seq)
        for reason, seqs in dead.items():
            report.add_dead(reason, len(seqs))
            self._store.dead(seqs, reason, _DEAD_MESSAGES.get(reason, reason))
            log.info("dead-lettered %d event(s): %s", len(seqs), reason)
        return keep

    def _deliver_group(self, pixel: str, account: LiveAccount, rows: list[OutboxRow],
                       report: DeliveryReport, held: set[str]) -> None:
        token = self._token(pixel, account, report)
        if token is None:
            held.add(pixel)
            return
        group = _Group(pixel, account, token, report)
        for start in range(0, len(rows), self._batch):
            if not self._send(group, rows[start:start + self._batch]):
                held.add(pixel)
                return

    # -- tokens and pauses ------------------------------------------------------------------

    def _token(self, pixel: str, account: LiveAccount, report: DeliveryReport) -> str | None:
        """The pixel's token, or None (the pixel is paused: why is in the store and report)."""
        ref = account.spec.meta.access_token
        paused = self._store.paused_pixels().get(pixel)
        try:
            token = self._resolve(ref)
        except SecretUnavailable as exc:
            self._unavailable(pixel, ref, exc, paused, report)
            return None
        if paused is None:
            return token
        if paused.reason != TOKEN_UNAVAILABLE and paused.token_fingerprint == fingerprint(token):
            report.blocked[pixel] = f"paused: {paused.message}"
            self._recheck[pixel] = self._clock().timestamp() + RECHECK_SECONDS
            return None
        self._store.resume_pixel(pixel)
        self._recheck.pop(pixel, None)
        if paused.reason == TOKEN_UNAVAILABLE:
            log.info("pixel %s: the token from %s is available; sending again", pixel,
                     describe(ref))
        else:
            log.warning("pixel %s: the token from %s changed; resuming", pixel, describe(ref))
        return token

    def _unavailable(self, pixel: str, ref: SecretRef, exc: SecretUnavailable,
                     paused: PausedPixel | None, report: DeliveryReport) -> None:
        """No token: pause the pixel (logged once), check again in ``RECHECK_SECONDS``."""
        self._recheck[pixel] = self._clock().timestamp() + RECHECK_SECONDS
        message = (f"the token from {describe(ref)} is unavailable ({exc}); sending resumes "
                   f"by itself once it can be read (checked every {RECHECK_SECONDS:g} s)")
        report.blocked[pixel] = message
        if paused is None:  # a pixel paused for its token stays paused for that reason
            self._store.pause_pixel(pixel, TOKEN_UNAVAILABLE, message, None)
            report.paused.append(pixel)
            log.warning("pixel %s paused (%s): %s", pixel, TOKEN_UNAVAILABLE, message)

    def _pause(self, group: _Group, result: SendResult, reason: str) -> None:
        ref = group.account.spec.meta.access_token
        message = (f"Meta refused the token from {describe(ref)} ({result.describe()}); "
                   f"fix it: sending resumes when it changes, or `convctl agent resume "
                   f"{group.pixel_id}`")
        self._store.pause_pixel(group.pixel_id, reason, message, fingerprint(group.token))
        self._recheck[group.pixel_id] = self._clock().timestamp() + RECHECK_SECONDS
        group.report.paused.append(group.pixel_id)
        log.error("pixel %s paused (%s): %s", group.pixel_id, reason, message)

    # -- sending ----------------------------------------------------------------------------

    def _send(self, group: _Group, rows: list[OutboxRow]) -> bool:
        """Send one batch (splitting on a permanent refusal); False: stop this pixel now."""
        if self._encoded is not None:
            result = self._encoded.send_encoded(group.pixel_id, [r.body for r in rows],
                                                group.token, self._test_code)
        else:
            result = self._sender.send(group.pixel_id, [r.payload for r in rows], group.token,
                                       self._test_code)
        group.report.requests += 1
        if result.verdict == "ok":
            received = result.events_received
            if received is not None and received < len(rows):
                self._backoff(group, rows, f"Meta received {received} of {len(rows)} events "
                              f"({result.describe()})", None, budget=True)
                return False
            self._store.mark_sent([r.seq for r in rows])
            group.report.sent += len(rows)
            return True
        if result.verdict == "retry":
            self._backoff(group, rows, result.describe(), result.retry_after)
            return False
        if result.verdict == "token" or result.code in PERMISSION_CODES:
            self._pause(group, result, "token" if result.verdict == "token" else "permission")
            return False
        if len(rows) == 1:
            self._store.dead([rows[0].seq], "rejected", result.describe())
            group.report.add_dead("rejected")
            log.warning("pixel %s: event %s rejected by Meta: %s", group.pixel_id,
                        rows[0].event_id, result.describe())
            return True
        half = math.ceil(len(rows) / 2)
        return self._send(group, rows[:half]) and self._send(group, rows[half:])

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
            if next_at >= expires_at(row.event_time).timestamp():
                dead.setdefault("expired", []).append(row.seq)
            elif budget and self._policy.gives_up(row.attempts + 1):
                dead.setdefault("not_received", []).append(row.seq)
            else:
                retry.append(row.seq)
        self._store.reschedule(retry, next_at, error)
        for reason, seqs in dead.items():
            message = _DEAD_MESSAGES["expired"] if reason == "expired" else (
                f"{error}, {self._policy.max_attempts} times; Meta deduplicates, so "
                "`convctl agent retry-dead --reason not_received` can send them again")
            self._store.dead(seqs, reason, message)
            group.report.add_dead(reason, len(seqs))
            log.warning("pixel %s: dead-lettered %d event(s) (%s): %s", group.pixel_id,
                        len(seqs), reason, message)
        group.report.retried += len(retry)
        self.holdoff[group.pixel_id] = next_at
        if retry:
            log.warning("pixel %s: %d event(s) to retry in %.1fs (%s)", group.pixel_id,
                        len(retry), next_at - now, error)


_DEAD_MESSAGES = {
    "disabled": "the conversion event was switched off (R19)",
    "deleted": "the conversion event no longer exists",
    "expired": "not delivered before Meta's 7-day limit",
}


def _unsendable(row: OutboxRow, event: LiveEvent | None, accounts: dict[str, LiveAccount],
                now: datetime) -> str | None:
    if event is None or row.account not in accounts:
        return "deleted"
    if not event.spec.enabled:
        return "disabled"
    if row.checked:
        return "expired" if is_expired(row.event_time, now) else None
    reason = validate_payload(row.payload, now)
    if reason == "too_old":
        return "expired"
    return reason


def _grouped(rows: list[OutboxRow]) -> dict[tuple[str, str], list[OutboxRow]]:
    groups: dict[tuple[str, str], list[OutboxRow]] = {}
    for row in rows:
        groups.setdefault((row.pixel_id, row.account), []).append(row)
    return groups
