"""The seam between planning/applying and a live-state backend (product.md §2).

Backends: ``adapters.state.sqlite`` (embedded, default), ``adapters.state.memory`` (a real fake
for tests), later HTTP. Every backend enforces the tier limit (R9) itself, atomically with the
write, and raises only errors from ``reconciler.errors``:

- ``ConflictError``: quota overflow (message names account, limit and count), stale
  ``expected_version``, an (account, name) clash;
- ``RuleViolationError``: a write whose manifest ``validate`` would refuse, with validate's code
  and R-rule (``adapters.state._rules.check_event_rules`` / ``check_account_rules``);
- ``NotFoundError``: unknown account, event or lock (also a lock renewed after it was lost);
- ``LockedError``: the lock is held (message names holder, pid, host, expiry);
- ``StateError``: the store itself failed (corrupt, newer schema, unreachable).

One contract test suite (``tests/contract``) runs against every backend. ``RunHistory`` (the
apply runs in the journal, for the dashboard) is optional: SQLite, PostgreSQL and memory
have it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict

from reconciler.core.live import EventWrite, LiveAccount, LiveEvent
from reconciler.core.models import AccountSpec, EventSpec


class LockInfo(BaseModel):
    """Who holds (or asks for) a state lock: of the whole state (``accounts`` None) or of
    some accounts. Two locks conflict unless both name accounts and share none (issue 14)."""

    model_config = ConfigDict(frozen=True)

    id: str
    holder: str
    pid: int
    host: str
    operation: str
    created_at: datetime
    expires_at: datetime
    accounts: tuple[str, ...] | None = None

    def overlaps(self, accounts: Sequence[str] | None) -> bool:
        """Whether a lock on ``accounts`` (None: the whole state) conflicts with this one."""
        return self.accounts is None or accounts is None or not set(self.accounts).isdisjoint(
            accounts)

    @property
    def scope(self) -> str:
        return ("the whole state" if self.accounts is None
                else "account" + ("s " if len(self.accounts) > 1 else " ")
                + ", ".join(self.accounts))

    def describe(self) -> str:
        return (f"lock {self.id} held by {self.holder} (pid {self.pid} on {self.host}, "
                f"{self.operation} of {self.scope}) since {self.created_at:%Y-%m-%d %H:%M:%S} "
                f"UTC, expires {self.expires_at:%Y-%m-%d %H:%M:%S} UTC")


class AuditRecord(BaseModel):
    """One append-only audit record (issue 14 item 4): who did what, when, with what outcome.

    An apply writes two with its run id: ``started`` before its first step, then its outcome
    (``done``, ``failed``, ``stopped``); a run with only ``started`` was cut off (a crash).
    ``actor`` is the OS user (``user@host``) or, through the control plane, ``token:NAME``."""

    model_config = ConfigDict(frozen=True)

    id: str
    at: datetime
    actor: str
    action: str  # apply, import, enable, disable, delete, unlock, token-create, token-revoke
    outcome: str  # started, done, failed, stopped, ok
    target: str = ""
    accounts: tuple[str, ...] | None = None  # None: the whole state (or not about accounts)
    plan_hash: str | None = None
    git_sha: str | None = None
    detail: str = ""


class StateReader(Protocol):
    def list_accounts(self) -> list[LiveAccount]: ...

    def list_events(self, account: str | None = None) -> list[LiveEvent]: ...

    def get_event(self, event_id: str) -> LiveEvent: ...


@runtime_checkable
class SharesSpecs(Protocol):
    """Optional: a plan's listing that reuses the manifests' spec objects (SQLite has it).

    ``list_events_sharing(specs)`` is ``list_events()`` (same events, fields, order,
    fingerprints and errors), except that an event whose stored spec is exactly what the spec
    given for its ``(account, name)`` serializes to holds that very object instead of an equal
    one validated again from the store: most events of a large plan are unchanged, and the
    planner then compares them by identity."""

    def list_events_sharing(self, specs: Mapping[tuple[str, str], EventSpec],
                            ) -> list[LiveEvent]: ...


class StateWriter(Protocol):
    def put_account(self, name: str, spec: AccountSpec, labels: dict[str, str],
                    expected_version: int | None) -> LiveAccount:
        """Create (``expected_version=None``) or update an account; refuses a tier change that
        leaves more lifecycle-stage slots in use than the new limit (R9)."""
        ...

    def create_event(self, event: EventWrite) -> LiveEvent: ...

    def update_event(self, event_id: str, event: EventWrite, expected_version: int) -> LiveEvent:
        """Replace the event's name, spec, labels and marker; ``account`` cannot change."""
        ...

    def delete_event(self, event_id: str, expected_version: int | None = None) -> None: ...


class Locker(Protocol):
    """State locks: one of the whole state, or any number of account locks on disjoint sets of
    accounts (``LockInfo.overlaps``): applies on different accounts run side by side."""

    def acquire_lock(self, holder: str, operation: str, ttl_seconds: float, *,
                     pid: int | None = None, host: str | None = None,
                     accounts: Sequence[str] | None = None) -> LockInfo:
        """Take a lock on ``accounts`` (None: the whole state, conflicting with every lock) or
        raise ``LockedError`` naming a live lock it conflicts with. Expired conflicting locks
        are taken over. ``pid``/``host`` name the holder's process (default: the caller's; a
        control plane passes its client's)."""
        ...

    def renew_lock(self, lock_id: str, ttl_seconds: float) -> LockInfo:
        """Extend the lock ``lock_id`` to expire ``ttl_seconds`` from now and return it. Raise
        ``NotFoundError`` (naming the current holder, if any) when the lock is no longer this
        one: released (``convctl unlock``) or, after expiring, taken by another holder. A lock
        that expired but was not taken over is renewed: nobody else held the state meanwhile."""
        ...

    def release_lock(self, lock_id: str) -> None: ...

    def current_lock(self) -> LockInfo | None:
        """The whole-state lock if one holds, else the oldest live account lock, else None."""
        ...

    def current_locks(self) -> list[LockInfo]:
        """Every live (unexpired) lock, oldest first."""
        ...


class Journal(Protocol):
    def record_step(self, run_id: str, index: int, description: str, status: str,
                    detail: str = "") -> None:
        """Append one apply step's outcome (``done`` / ``failed`` / ``pending``)."""
        ...

    def journal(self, run_id: str) -> list[dict[str, Any]]:
        """The steps recorded for ``run_id`` in the order they were recorded: dicts with
        ``run_id``, ``index``, ``description``, ``status``, ``detail`` and ``at`` (datetime)."""
        ...


@runtime_checkable
class RunHistory(Protocol):
    """The apply runs a journal holds (the dashboard's Runs page); optional for a backend."""

    def runs(self, limit: int = 20) -> list[dict[str, Any]]:
        """The latest ``limit`` runs, newest first: dicts with ``run_id``, ``started_at`` and
        ``finished_at`` (datetimes), ``steps`` and the count per status (``done``, ``failed``,
        ``pending``)."""
        ...


class Audit(Protocol):
    def record_audit(self, record: AuditRecord) -> None:
        """Append one audit record (never updated or deleted)."""
        ...

    def audit_log(self, limit: int = 100) -> list[AuditRecord]:
        """The latest ``limit`` records, newest first."""
        ...


class Provider(StateReader, StateWriter, Locker, Journal, Audit, Protocol):
    """Everything plan and apply need from a live-state backend."""

    def close(self) -> None: ...
