"""The sync agent: CRM events in, the ad networks' APIs out, nothing lost (product.md §5).

    ingest (JSONL / webhook / form) -> inbox -> process_inbox -> outbox -> deliver_once
        -> a Destination per network (Meta, LinkedIn, Google Ads: ``services.ports``)

- ``ingest_*``: durable before acknowledged, duplicates acknowledged and dropped: see
  ``services.agent_ingest`` (importable from here too).
- ``process_inbox``: per chunk of inbox rows (1,000: a full Meta batch), one transaction (the
  live events and accounts are read once per chunk, a ``Matcher`` per account and a builder
  per live event made once: ``services.agent_chunk``): match each event against the live
  conversion events (``core.matching``, then the event's network's own rules), settle
  duplicates (R16) with one outbox query for the chunk, build and check the payloads (the
  network's rules, ``core.networks``), queue them keyed by network and target (or dead-letter
  them with the validation reason), count the skip reasons and move the inbox cursor past the
  rows. A crash before the commit leaves the rows pending; the outbox's unique (event_id,
  conversion event) pair makes reprocessing harmless. When the contact source or the state
  fails, processing is held off a while with a reason (``services.agent_holds``) instead of
  retried at once.
- ``deliver_once``: see ``services.delivery``.
- ``run``: both, in a loop, sleeping (injected ``sleep``) until the next due row of a target not
  held off, or the poll interval: work that is held off never makes the agent spin; ``stop()``
  ends it after the current cycle. In a running agent the two halves of a cycle overlap: a
  worker thread delivers what earlier cycles queued while this one processes the inbox (the
  waits for the network and the state overlap with the matching), as a ``process`` and a
  ``deliver`` agent on one store would; the cycle ends when both have. With ``role``
  ``process`` or ``deliver`` it does one half, so two processes can split the work on one store.

``clock`` (aware datetimes), ``sleep`` and ``rand`` are injected so tests run in zero time.
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from concurrent import futures
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

from reconciler.adapters.agentrows import AgentStatus, InboxRow, IngestResult
from reconciler.adapters.contacts import ContactSource
from reconciler.adapters.secrets import resolve_secret
from reconciler.core.backoff import BackoffPolicy
from reconciler.core.capi import MAX_BATCH
from reconciler.core.crm import Contact, FormIngest, Ignored, WebhookRecord
from reconciler.core.live import LiveAccount, LiveEvent
from reconciler.core.models import SecretRef
from reconciler.core.networks import rules_for
from reconciler.core.provider import StateReader
from reconciler.errors import ConvctlError, TransientError, UsageError
from reconciler.services.agent_chunk import Chunk, needed_properties
from reconciler.services.agent_holds import ContactSourceFailed, InboxHold, Outage
from reconciler.services.agent_ingest import IngestReport as IngestReport  # re-exported
from reconciler.services.agent_ingest import ingest_forms as ingest_forms
from reconciler.services.agent_ingest import ingest_jsonl as ingest_jsonl
from reconciler.services.agent_ingest import ingest_webhook as ingest_webhook
from reconciler.services.coverage import event_coverage, live_events_or_none
from reconciler.services.delivery import Deliverer, DeliveryReport
from reconciler.services.ports import AgentStore, Destination

log = logging.getLogger("reconciler.agent")
DEFAULT_POLICY = BackoffPolicy(base=1.0, factor=2.0, cap=300.0)
ROWS_PER_CYCLE = 10_000  # inbox rows processed before a delivery pass, in a running agent
# What a running agent does: both halves, or one, so two processes can share the work (and
# the machine's cores) on one store: ``process`` matches and queues, ``deliver`` sends (and
# applies the retention). Each is crash-safe on its own, as the whole is.
Role = Literal["all", "process", "deliver"]
DEFAULT_RETENTION_DAYS = 30
MIN_RETENTION_DAYS = 8  # Meta refuses events older than 7 days: beyond that R16 cannot break
PRUNE_EVERY = 3600.0  # seconds between retention passes of a running agent


@dataclass(frozen=True)
class AgentConfig:
    batch_size: int = MAX_BATCH
    inbox_chunk: int = 1000
    poll_interval: float = 1.0
    policy: BackoffPolicy = DEFAULT_POLICY
    retention_days: int = DEFAULT_RETENTION_DAYS  # 0: keep every row
    role: Role = "all"

    def __post_init__(self) -> None:
        if 0 < self.retention_days < MIN_RETENTION_DAYS:
            raise UsageError(f"retention must be 0 (keep everything) or at least "
                             f"{MIN_RETENTION_DAYS} days: sent events are remembered while Meta "
                             "still takes them, so none is sent twice (R16)")


@dataclass
class ProcessReport:
    processed: int = 0
    queued: int = 0
    dead: int = 0
    skips: Counter[str] = field(default_factory=Counter)


def _utc_now() -> datetime:
    return datetime.now(UTC)


class Agent:
    def __init__(self, provider: StateReader, store: AgentStore, contacts: ContactSource,
                 destinations: Mapping[str, Destination], config: AgentConfig | None = None, *,
                 clock: Callable[[], datetime] = _utc_now,
                 sleep: Callable[[float], None] = time.sleep,
                 rand: Callable[[], float] = random.random,
                 resolve: Callable[[SecretRef], str] = resolve_secret) -> None:
        self.config = config or AgentConfig()
        self._provider, self._store, self._contacts = provider, store, contacts
        self._clock, self._sleep = clock, sleep
        self._stop = threading.Event()
        self._next_prune = 0.0
        self._worker: ThreadPoolExecutor | None = None  # delivers while a running agent processes
        self.inbox_hold = InboxHold(store, self.config.policy)
        self._outage = Outage(self.config.policy)
        self.deliverer = Deliverer(
            store, provider, destinations, clock=clock, rand=rand, policy=self.config.policy,
            resolve=resolve, batch_size=self.config.batch_size)

    # -- ingest -----------------------------------------------------------------------------

    def ingest_jsonl(self, path: str | Path, chunk: int = 5000) -> IngestReport:
        return ingest_jsonl(self._store, path, chunk)

    def ingest_webhook(self, records: Iterable[WebhookRecord]) -> IngestResult:
        """Parsed HubSpot webhook records (``core.crm_hubspot.parse_webhook``), keyed by
        HubSpot's key."""
        return ingest_webhook(self._store, records)

    def ingest_form(self, form: FormIngest) -> IngestResult:
        """A parsed form submission and the contact fields it carried, in one transaction."""
        return ingest_forms(self._store, [form])

    # -- processing -------------------------------------------------------------------------

    def process_inbox(self, max_rows: int | None = None) -> ProcessReport:
        """Match, build, check and queue new inbox rows, one transaction per chunk; nothing
        while the inbox is held off (``InboxHold``: the contact source or the state failed)."""
        total = ProcessReport()
        hold = self.inbox_hold
        if hold.active(self._clock().timestamp()):
            return total
        while max_rows is None or total.processed < max_rows:
            rows = self._store.pending(self.config.inbox_chunk)
            if not rows:
                break
            try:
                self._process_chunk(rows, total)
            except ConvctlError as exc:  # contact source down, state busy: held off a while
                hold.failed(exc, self._clock().timestamp())
                with contextlib.suppress(ConvctlError):  # else their lease ends by itself
                    self._store.release_claims("inbox")  # back to the other agents
                break
            hold.ok()
            if len(rows) < self.config.inbox_chunk:
                break
        return total

    def _process_chunk(self, rows: list[InboxRow], total: ProcessReport) -> None:
        now = self._clock()
        accounts = {a.spec.portal_id: a for a in self._provider.list_accounts()}
        live = self._provider.list_events()
        self.deliverer.live_networks = {e.spec.destination for e in live}
        contacts = self._fetch_contacts(rows, accounts, live)
        work = Chunk(accounts, live, contacts)
        matched = [work.match(row.event) for row in rows]
        # Duplicates (R16) are the last check of matching, so they are settled after it, for
        # the whole chunk at once: one outbox query for the ids the chunk fires, then in inbox
        # order (the second of two rows firing one id in this chunk is a duplicate too).
        seen = self._store.known_event_ids(
            fire.dedup_key for m in matched if m is not None for fire in m[2].fires)
        for row, m in zip(rows, matched, strict=True):
            if m is not None:
                work.enqueue(row.event, *m, seen, now)
        self._store.commit_processed([r.seq for r in rows], work.queued, work.skips)
        total.processed += len(rows)
        total.queued += sum(1 for q in work.queued if q.status == "queued")
        total.dead += sum(1 for q in work.queued if q.status == "dead")
        for (reason, _), n in work.skips.items():
            total.skips[reason] += n

    def _fetch_contacts(self, rows: list[InboxRow], accounts: dict[int, LiveAccount],
                        live: list[LiveEvent]) -> dict[tuple[int, str], Contact]:
        wanted: dict[int, set[str]] = {}
        for row in rows:
            if not isinstance(row.event, Ignored) and row.event.portal_id in accounts:
                wanted.setdefault(row.event.portal_id, set()).add(row.event.contact_id)
        found: dict[tuple[int, str], Contact] = {}
        for portal, ids in wanted.items():
            account = accounts[portal]
            props = needed_properties(account, live)
            try:
                fetched = self._contacts.fetch(account, sorted(ids), props)
            except ConvctlError as exc:
                raise ContactSourceFailed(exc) from exc
            for cid, contact in fetched.items():
                found[(portal, cid)] = contact
        return found

    # -- delivery and the loop --------------------------------------------------------------

    def deliver_once(self) -> DeliveryReport:
        return self.deliverer.deliver_once()

    def run(self, once: bool = False, max_cycles: int | None = None) -> None:
        """Process and deliver until ``stop()`` (or once, or ``max_cycles`` cycles); a
        ``process`` or ``deliver`` role does its half only (``AgentConfig.role``)."""
        cycles = 0
        while not self._stop.is_set():
            if once:
                return self._cycle(None)
            try:
                self._cycle(ROWS_PER_CYCLE)
                delay = self._idle_delay()
            except TransientError as exc:  # the database restarts, a connection was lost
                delay = self._outage.failed(exc)
            else:
                self._outage.ok()
            cycles += 1
            if max_cycles is not None and cycles >= max_cycles:
                return None
            self._sleep(delay)
        return None

    def _cycle(self, max_rows: int | None) -> None:
        if self.config.role == "all" and max_rows is not None:
            return self._overlapped(max_rows)
        if self.config.role != "deliver":
            self.process_inbox(max_rows)
        if self.config.role != "process":
            self._deliver_half()
        return None

    def _deliver_half(self) -> None:
        self.deliver_once()
        self.prune_if_due()

    def _overlapped(self, max_rows: int) -> None:
        """Deliver what is queued (a worker thread) while processing the inbox; both are done
        when this returns, and an error of either is raised here (processing's first)."""
        if self._worker is None:
            self._worker = ThreadPoolExecutor(1, thread_name_prefix="convctl-deliver")
        delivering = self._worker.submit(self._deliver_half)
        try:
            self.process_inbox(max_rows)
        finally:
            futures.wait([delivering])
        delivering.result()

    def prune_if_due(self) -> tuple[int, int]:
        """Once an hour (and on the first cycle), drop processed inbox rows and sent outbox
        rows older than the retention (``AgentStore.prune``). Rows are kept at least as long as
        the network of a live event takes its events, and a day more (LinkedIn and Google Ads:
        90 days), so a re-delivered CRM event is still known and never sent twice (R16)."""
        now = self._clock()
        days = self.config.retention_days
        if not days or now.timestamp() < self._next_prune:
            return 0, 0
        self._next_prune = now.timestamp() + PRUNE_EVERY
        try:
            days = max([days, *(rules_for(n).max_age.days + 1 for n in self._live_networks())])
            inbox, outbox = self._store.prune(now - timedelta(days=days))
        except ConvctlError as exc:  # busy state: the next pass tries again
            log.warning("retention pass skipped: %s", exc)
            return 0, 0
        if inbox or outbox:
            log.info("retention: removed %d processed inbox row(s) and %d sent outbox row(s) "
                     "older than %d days", inbox, outbox, days)
        return inbox, outbox

    def _live_networks(self) -> set[str]:
        """The networks of the live events this agent read last (processing or delivering),
        or read now when it has read none yet."""
        networks = self.deliverer.live_networks
        if networks is None:
            networks = {e.spec.destination for e in self._provider.list_events()}
        return networks

    def _idle_delay(self) -> float:
        """0 while there is work this agent can do now; else until the next due row of a
        target not held off, at most the poll interval. Held-off work (a paused target, a
        refused contact source) never makes it 0: an agent that can send nothing idles."""
        now = self._clock().timestamp()
        if (self.config.role != "deliver" and not self.inbox_hold.active(now)
                and self._store.has_pending()):
            return 0.0
        if self.config.role == "process":
            return self.config.poll_interval
        due = self._store.next_due(self.deliverer.held(now))
        wait = self.config.poll_interval if due is None else max(0.0, due - now)
        return min(wait, self.config.poll_interval)

    def stop(self) -> None:
        self._stop.set()

    # -- status -----------------------------------------------------------------------------

    def status(self) -> AgentStatus:
        now = self._clock()
        return agent_status(self._store, self.deliverer.held_off(now.timestamp()),
                            live_events_or_none(self._provider.list_events), now,
                            self.deliverer.networks)

    def retry_dead(self, reason: str | None = None) -> int:
        return self._store.retry_dead(reason)


def agent_status(store: AgentStore, holdoff: dict[str, float] | None = None,
                 events: list[LiveEvent] | None = None, now: datetime | None = None,
                 networks: Mapping[str, str] | None = None) -> AgentStatus:
    """The store's counts plus paused targets and held-off work (and, in a running agent,
    targets waiting out a backoff, with their ``networks``), and the match-key coverage per
    event (named from ``events``, the live events, when given); ``as_json()`` is what
    ``agent status`` prints."""
    held_off = dict(holdoff or {})
    return AgentStatus(store.status(), store.paused_targets(), store.holds(), held_off,
                       {t: (networks or {}).get(t, "meta") for t in held_off},
                       event_coverage(store, events, now))
