"""The agent's stores as protocols: what services, the server and the CLI rely on, whatever the
backend (``adapters.agentstore``: a SQLite file, one writer at a time; ``adapters.agentstore_pg``:
a shared PostgreSQL database, several agents at once).

- ``Inbox``: CRM events in (durable before acknowledged, duplicates dropped by their dedup key),
  then **claimed** a chunk at a time (``pending``) and **acknowledged** with the chunk's outbox
  rows (``commit_processed``). On SQLite a claim is the cursor's prefix (one writer); on
  PostgreSQL it is a row lock held by the store's open transaction (``FOR UPDATE SKIP
  LOCKED``), so a dead agent's rows go back to the others at once and a stalled one's when its
  lease ends (on the database clock). ``release_claims`` gives back what this store claimed
  and did not settle.
- ``Outbox``: one row per (``event_id``, conversion event), unique, so processing a row
  twice never queues twice (R16), keyed for delivery by destination (network) and target;
  ``due`` claims the rows to send like ``pending`` does, a page at a time. ``mark_sent``,
  ``reschedule`` and ``dead`` settle claimed rows; on a shared store they are committed with
  the page, by the next ``due`` or by ``release_claims("outbox")`` (delivery ends every pass
  with it), so no row of a page is free to another agent while it is being sent.
  ``replay_dead`` queues chosen dead letters again (``agent retry-dead``).
- ``ContactStore``, ``TargetPauses``, ``Holds``: the embedded contacts, paused targets and the
  parts of the work held off, with why.
- ``Coverage``: match-key coverage buckets, counted as rows are marked sent (each outbox row
  keeps its user_data key mask from when it was queued); ``ActivityReads``: the dashboard's.
- ``AgentStore``: all of them, plus retention, dead letters and the counts (``QueueStatus``).

A backend adds a method here when services need it (e.g. match-key coverage), and the contract
suite (``tests/agent/contract``) runs it over every backend.

``Destination``: one network's sender (``adapters.networks``), answering every request with
an ``Outcome`` (``core.networks``): delivery reads nothing else of the network's answers.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from reconciler.adapters.agentcodec import InboxEvent
from reconciler.adapters.agentquality import DeadSelection, Oldest, Replay
from reconciler.adapters.agentrows import (
    Hold,
    InboxRow,
    IngestResult,
    NewOutbox,
    OutboxRow,
    PausedTarget,
    Queue,
    QueueStatus,
)
from reconciler.core.coverage import Bucket
from reconciler.core.crm import Contact
from reconciler.core.models import AccountSpec
from reconciler.core.networks import Outcome


class Destination(Protocol):
    """One network's sender: one request with these events (each the orjson bytes of a
    ``Builder.build`` object, as the outbox stores them), joined into the body without
    re-parsing when it can; every answer, and every failure to get one, as an ``Outcome``."""

    network: str

    def send(self, target: str, account: AccountSpec, events: Sequence[bytes],
             token: str) -> Outcome: ...

    def close(self) -> None: ...


class ContactStore(Protocol):
    def upsert_contacts(self, contacts: Iterable[Contact]) -> int: ...

    def contacts(self, portal_id: int, contact_ids: Iterable[str]) -> dict[str, Contact]: ...


class Inbox(Protocol):
    def ingest(self, items: Sequence[tuple[str, InboxEvent]], contacts: Sequence[Contact] = (),
               drops: Mapping[str, int] | None = None) -> IngestResult: ...

    def pending(self, limit: int) -> list[InboxRow]:
        """Claim up to ``limit`` unprocessed rows, oldest first."""

    def has_pending(self) -> bool:
        """Whether a row waits that this store could claim now (claims nothing)."""

    def known_event_ids(self, event_ids: Iterable[str]) -> set[str]: ...

    def commit_processed(self, seqs: Sequence[int], rows: Sequence[NewOutbox],
                         skips: Mapping[tuple[str, str], int]) -> int:
        """Queue ``rows`` (pairs already queued ignored), count ``skips`` and acknowledge the
        claimed inbox rows ``seqs``, atomically; how many outbox rows were new."""

    def release_claims(self, queue: Queue | None = None) -> None:
        """Give back what this store claimed and did not settle: of one queue (processing and
        delivery may run at once, each gives back only its own), or of both."""


class Outbox(Protocol):
    def due(self, now: float, limit: int, after_seq: int = 0,
            exclude: Collection[str] = ()) -> list[OutboxRow]:
        """Claim queued rows due at ``now``, oldest first, after ``after_seq``, leaving out the
        targets in ``exclude``."""

    def next_due(self, exclude: Collection[str] = ()) -> float | None: ...

    def mark_sent(self, seqs: Sequence[int]) -> None:
        """Settle the rows as sent and count their key masks (given when they were queued)
        into the match-key coverage of the current hour, in one transaction (on a shared
        store, the claimed page's: committed with it)."""

    def reschedule(self, seqs: Sequence[int], next_attempt_at: float, error: str) -> None: ...

    def dead(self, seqs: Sequence[int], reason: str, error: str) -> None: ...

    def retry_dead(self, reason: str | None = None) -> int: ...

    def dead_letters(self, limit: int = 100) -> list[dict[str, Any]]: ...

    def replay_dead(self, selection: DeadSelection, oldest_sendable: Oldest, *,
                    dry_run: bool = False, listed: int = 1000) -> Replay:
        """Queue again the selected dead letters whose event time is at or after
        ``oldest_sendable`` (one bound, or one per network); the older ones stay dead and are
        counted."""


class Coverage(Protocol):
    def coverage_buckets(self, since_hour: int) -> list[Bucket]:
        """The match-key coverage buckets from ``since_hour`` on (hours since the epoch)."""


class ActivityReads(Protocol):
    """The dashboard's reads (never a payload)."""

    def sent_per_minute(self, since: datetime) -> dict[str, int]: ...

    def event_activity(self, since: datetime) -> dict[str, dict[str, Any]]: ...

    def deliveries(self, conversion_event_id: str, limit: int = 20) -> list[dict[str, Any]]: ...

    def dead_letter_groups(self) -> list[dict[str, Any]]: ...


class TargetPauses(Protocol):
    def pause_target(self, destination: str, target: str, reason: str, message: str,
                     token_fingerprint: str | None) -> None: ...

    def resume_target(self, target: str) -> bool: ...

    def paused_targets(self) -> dict[str, PausedTarget]: ...


class Holds(Protocol):
    def hold(self, target: str, reason: str, message: str) -> None: ...

    def release(self, target: str) -> bool: ...

    def holds(self) -> dict[str, Hold]: ...


class AgentStore(Inbox, Outbox, ContactStore, TargetPauses, Holds, Coverage, ActivityReads,
                 Protocol):
    """Every agent table of one backend; ``close`` when done."""

    def prune(self, before: datetime, batch: int = ...) -> tuple[int, int]: ...

    def status(self) -> QueueStatus: ...

    def close(self) -> None: ...
