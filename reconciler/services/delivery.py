"""Outbox -> Meta: one delivery pass over the due outbox rows (capi-contract.md, product.md §5).

A pass pages through the due rows (each row seen once), drops what must not be sent, and posts
the rest per (pixel, account) in batches of up to 1,000:

- the conversion event was disabled (R19) or deleted since the row was queued: dead letter
  ``disabled`` / ``deleted`` at once (switching on again does not back-fill);
- the event would be refused now: ``expired`` when it is too old. A row as it was queued was
  checked in full then (``validate_payload``; the other checks do not depend on the time), so
  only its age is checked again; a row that failed an attempt or came back from the dead
  letters (``OutboxRow.checked`` false) is checked in full again, and dead-lettered with the
  validation reason if it fails;
- ``ok``: sent (the batch's rows are marked in one statement). The request body is the rows'
  stored JSON joined (``send_encoded``), not parsed and encoded again.
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

In dry-run mode nothing changes in the store: requests are written to the dry-run file, each
row at most once per process.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, runtime_checkable

from reconciler.adapters.agentstore import AgentStore, OutboxRow
from reconciler.adapters.meta import DryRunWriter, SendResult
from reconciler.adapters.secrets import SecretUnavailable, describe, fingerprint
from reconciler.core.backoff import PERMISSION_CODES, BackoffPolicy
from reconciler.core.capi import MAX_BATCH, expires_at, is_expired, validate_payload
from reconciler.core.live import LiveAccount, LiveEvent
from reconciler.core.models import SecretRef
from reconciler.core.provider import StateReader

log = logging.getLogger("reconciler.agent")
PAGE_BATCHES = 5


class Sender(Protocol):
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
    def __init__(self, store: AgentStore, provider: StateReader, sender: Sender | None, *,
                 clock: Callable[[], datetime], rand: Callable[[], float],
                 policy: BackoffPolicy, resolve: Callable[[SecretRef], str],
                 batch_size: int = MAX_BATCH, test_event_code: str | None = None,
                 dry_run: DryRunWriter | None = None) -> None:
        if not 1 <= batch_size <= MAX_BATCH:
            raise ValueError(f"batch size must be between 1 and {MAX_BATCH}")
        self._store, self._provider, self._sender = store, provider, sender
        self._encoded = sender if isinstance(sender, EncodedSender) else None
        self._clock, self._rand, self._policy, self._resolve = clock, rand, policy, resolve
        self._batch, self._test_code, self._dry = batch_size, test_event_code, dry_run
        self.holdoff: dict[str, float] = {}  # pixel -> epoch before which it is not tried
        self._written: set[int] = set()  # dry run: rows already written by this process

    # -- one pass ---------------------------------------------------------------------------

    def deliver_once(self) -> DeliveryReport:
        report = DeliveryReport()
        now = self._clock().timestamp()
        page = self._store.due(now, self._batch * PAGE_BATCHES, 0)
        if not page:  # an idle pass costs one query, not a read of the live state
            return report
        live = {e.id: e for e in self._provider.list_events()}
        accounts = {a.name: a for a in self._provider.list_accounts()}
        while True:
            after = page[-1].seq
            sendable = self._screen(page, live, accounts, report)
            for (pixel, name), rows in _grouped(sendable).items():
                self._deliver_group(pixel, accounts[name], rows, report)
            if len(page) < self._batch * PAGE_BATCHES:
                break
            page = self._store.due(now, self._batch * PAGE_BATCHES, after)
            if not page:
                break
        return report

    def _screen(self, rows: list[OutboxRow], live: dict[str, LiveEvent],
                accounts: dict[str, LiveAccount], report: DeliveryReport) -> list[OutboxRow]:
        """Rows still worth sending; the others become dead letters (unless dry run)."""
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
            if self._dry is None:
                self._store.dead(seqs, reason, _DEAD_MESSAGES.get(reason, reason))
                log.info("dead-lettered %d event(s): %s", len(seqs), reason)
        return keep

    def _deliver_group(self, pixel: str, account: LiveAccount, rows: list[OutboxRow],
                       report: DeliveryReport) -> None:
        if self._dry is not None:
            self._write_dry(pixel, rows, report)
            return
        if self.holdoff.get(pixel, 0.0) > self._clock().timestamp():
            return
        token = self._token(pixel, account, report)
        if token is None:
            return
        group = _Group(pixel, account, token, report)
        for start in range(0, len(rows), self._batch):
            if not self._send(group, rows[start:start + self._batch]):
                return

    def _write_dry(self, pixel: str, rows: list[OutboxRow], report: DeliveryReport) -> None:
        assert self._dry is not None
        fresh = [r for r in rows if r.seq not in self._written]
        for start in range(0, len(fresh), self._batch):
            batch = fresh[start:start + self._batch]
            self._dry.write(pixel, [r.payload for r in batch], self._test_code)
            self._written.update(r.seq for r in batch)
            report.requests += 1
            report.sent += len(batch)

    # -- tokens and pauses ------------------------------------------------------------------

    def _token(self, pixel: str, account: LiveAccount, report: DeliveryReport) -> str | None:
        ref = account.spec.facebook.access_token
        try:
            token = self._resolve(ref)
        except SecretUnavailable as exc:
            report.blocked[pixel] = str(exc)
            log.warning("pixel %s: not sending, token unavailable (%s)", pixel, exc)
            return None
        paused = self._store.paused_pixels().get(pixel)
        if paused is None:
            return token
        if paused.token_fingerprint == fingerprint(token):
            report.blocked[pixel] = f"paused: {paused.message}"
            return None
        self._store.resume_pixel(pixel)
        log.warning("pixel %s: the token from %s changed; resuming", pixel, describe(ref))
        return token

    def _pause(self, group: _Group, result: SendResult, reason: str) -> None:
        ref = group.account.spec.facebook.access_token
        message = (f"Meta refused the token from {describe(ref)} ({result.describe()}); "
                   f"fix it: sending resumes when it changes, or `convctl agent resume "
                   f"{group.pixel_id}`")
        self._store.pause_pixel(group.pixel_id, reason, message, fingerprint(group.token))
        group.report.paused.append(group.pixel_id)
        log.error("pixel %s paused (%s): %s", group.pixel_id, reason, message)

    # -- sending ----------------------------------------------------------------------------

    def _send(self, group: _Group, rows: list[OutboxRow]) -> bool:
        """Send one batch (splitting on a permanent refusal); False: stop this pixel now."""
        assert self._sender is not None
        if self._encoded is not None:
            result = self._encoded.send_encoded(group.pixel_id, [r.body for r in rows],
                                                group.token, self._test_code)
        else:
            result = self._sender.send(group.pixel_id, [r.payload for r in rows], group.token,
                                       self._test_code)
        group.report.requests += 1
        if result.verdict == "ok":
            self._store.mark_sent([r.seq for r in rows])
            group.report.sent += len(rows)
            return True
        if result.verdict == "retry":
            self._backoff(group, rows, result)
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

    def _backoff(self, group: _Group, rows: list[OutboxRow], result: SendResult) -> None:
        now = self._clock().timestamp()
        attempt = max(r.attempts for r in rows)
        next_at = now + self._policy.delay(attempt, self._rand, result.retry_after)
        expired = [r.seq for r in rows if next_at >= expires_at(r.event_time).timestamp()]
        retry = [r.seq for r in rows if r.seq not in set(expired)]
        self._store.reschedule(retry, next_at, result.describe())
        if expired:
            self._store.dead(expired, "expired", _DEAD_MESSAGES["expired"])
            group.report.add_dead("expired", len(expired))
        group.report.retried += len(retry)
        self.holdoff[group.pixel_id] = next_at
        log.warning("pixel %s: %d event(s) to retry in %.1fs (%s)", group.pixel_id, len(rows),
                    next_at - now, result.describe())


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
